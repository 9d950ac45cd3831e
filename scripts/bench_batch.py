"""Batch analysis throughput: ``active analyze`` on Dask with 1 and 2 workers against the shell
loop it replaces (one ``active analyze VIDEO`` process per video), on the same synthetic clips.

For each way the table gives the wall time, videos/min and frames/s; for the batch runs also the
cluster's start-up, and the engine's overhead per video: the time the run took beyond what the
workers spent inside the analysis, ``(run_s * workers - task_s) / videos`` (submitting, moving the
result back, writing the tables and the catalogue rows; the target is under 0.5 s). The last table
extrapolates to an archive of 10,000 such videos (and of 30 s, 900-frame videos, from frames/s)
on N machines like this one, from the faster of the two batch runs.

    python scripts/bench_batch.py --videos 8 --frames 60 --doc docs/batch.md
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from active.analysis import AnalyzeOptions, Calibration
from active.batch import BatchOptions, expand, run_batch
from active.batch.engine import cores
from active.data.video import write_video

UM_PER_PX, DEPTH_UM = 0.35, 20.0


def make_clips(folder: Path, videos: int, frames: int, width: int, height: int) -> list[Path]:
    """``videos`` synthetic clips of ``frames`` frames (SVIA-like crowding)."""
    from active.data.synth import SynthConfig, render_video

    folder.mkdir(parents=True, exist_ok=True)
    cfg = replace(SynthConfig(), width=width, height=height, frames=frames)
    paths = []
    for i in range(videos):
        path = folder / f"clip{i:03d}.mp4"
        write_video(path, render_video(cfg, 100 + i, "B").frames, fps=cfg.fps)
        paths.append(path)
    return paths


def sequential(clips: list[Path], out: Path) -> float:
    """Wall seconds of the shell loop: one ``active analyze`` process per video."""
    t0 = time.perf_counter()
    for i, clip in enumerate(clips):
        subprocess.run([sys.executable, "-m", "active", "analyze", str(clip), "--um-per-px",
                        str(UM_PER_PX), "--chamber-depth", str(DEPTH_UM), "--no-video",
                        "--quiet", "--out", str(out / f"seq{i}")], check=True,
                       stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def batch(folder: Path, out: Path, workers: int) -> dict[str, float]:
    """One batch run over ``folder`` (a fresh catalogue) on a local cluster of ``workers``."""
    jobs = expand([str(folder)], Calibration(um_per_px=UM_PER_PX, chamber_depth_um=DEPTH_UM))
    t0 = time.perf_counter()
    report = run_batch(jobs, out, AnalyzeOptions(), BatchOptions(workers=workers,
                                                                   progress=False))
    wall = time.perf_counter() - t0
    assert report.failed == 0 and report.done == len(jobs), report.format()
    return {"wall": wall, "startup": report.startup_s, "run": report.run_s,
            "task": report.task_s, "frames": report.frames, "threads": report.threads,
            "overhead": (report.run_s * workers - report.task_s) / report.done}


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", type=int, nargs=2, default=(640, 480), metavar=("W", "H"))
    ap.add_argument("--note", default="", help="a sentence about the machine's state (e.g. "
                    "another job running beside the benchmark)")
    ap.add_argument("--doc", type=Path, default=None, help="write the tables between the "
                    "'batch-bench' markers of this Markdown file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        root = Path(tmp)
        clips = make_clips(root / "clips", args.videos, args.frames, *args.size)
        frames = args.videos * args.frames
        seq = sequential(clips, root / "seq")
        runs = {n: batch(root / "clips", root / f"batch{n}", n) for n in (1, 2)}
    rows = [("sequential `active analyze` (one process per video)", seq, None)]
    rows += [(f"batch, {n} worker{'s' * (n > 1)} x {r['threads']} threads", r["wall"], r)
             for n, r in runs.items()]
    lines = [
        f"Clips: {args.videos} synthetic videos of {args.frames} frames at {args.size[0]}x"
        f"{args.size[1]} px, 30 fps ({frames} frames), µm/px {UM_PER_PX}, bundled ONNX model.",
        f"Machine: {platform.processor() or platform.machine()}, {cores()} cores usable, "
        f"Python {platform.python_version()}; date {time.strftime('%Y-%m-%d %H:%M %Z')}."
        + (f" {args.note}" if args.note else ""),
        f"Command: `python scripts/bench_batch.py {' '.join(argv or sys.argv[1:])}`", "",
        "| how | wall s | videos/min | frames/s | cluster start s | engine overhead s/video |",
        "|---|---|---|---|---|---|"]
    for name, wall, r in rows:
        extra = ("- | -" if r is None else f"{r['startup']:.1f} | {r['overhead']:.2f}")
        lines.append(f"| {name} | {wall:.1f} | {60 * args.videos / wall:.1f} | "
                     f"{frames / wall:.1f} | {extra} |")
    n_best, two = min(runs.items(), key=lambda kv: kv[1]["run"])  # the faster layout
    per_video = two["run"] / args.videos  # machine-seconds per video
    fps = two["frames"] / two["run"]
    lines += ["", f"10,000 videos on N machines like this one, from the faster run's "
              f"({n_best} worker{'s' * (n_best > 1)}) {per_video:.2f} s per video "
              f"({fps:.1f} frames/s per machine, the model load included), plus the cluster's "
              "start-up; a 30 s clip is 900 frames:", "",
              "| machines | these clips | 30 s clips (900 frames) |", "|---|---|---|"]
    for n in (1, 4, 16, 64):
        lines.append(f"| {n} | {_hours(10_000 * per_video / n + two['startup'])} | "
                     f"{_hours(10_000 * 900 / fps / n + two['startup'])} |")
    table = "\n".join(lines)
    print(table)
    if args.doc:
        from active.utils.io import write_between

        write_between(args.doc, "<!-- batch-bench -->", "<!-- /batch-bench -->", table)


if __name__ == "__main__":
    main()
