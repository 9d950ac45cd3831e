"""Thread settings of `active detect`, on an idle machine and on a busy one (issue 31).

    python scripts/bench_threads.py VIDEO [--repeats 3] [--settings default 1 2] [--load 2]

Each setting runs ``active detect VIDEO --threads N --quiet --no-annotated`` as its own process
(start-up included, as a user runs it), round robin, ``--repeats`` times, first on the idle
machine, then while ``--load`` processes each keep a core busy (a pure-Python loop: the kind of
neighbour a lab PC has, another analysis or a browser). Prints wall seconds (median, best) and
frames/s per setting and condition, and each setting's ratio to the default.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spin(stop: mp.Event) -> None:  # type: ignore[valid-type]
    x = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        for _ in range(100_000):
            x += 1


def run_once(video: Path, setting: str, out: Path) -> float:
    out = out.with_name(f"{out.name}-{time.perf_counter_ns()}")  # a new folder every run
    cmd = [sys.executable, "-m", "active", "detect", str(video), "--quiet", "--no-annotated",
           "--out", str(out)]
    if setting != "default":
        cmd += ["--threads", setting]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(video: Path, settings: list[str], repeats: int, work: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {s: [] for s in settings}
    for _ in range(repeats):
        for s in settings:
            times[s].append(run_once(video, s, work / f"t{s}"))
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--settings", nargs="+", default=["default", "1", "2"])
    ap.add_argument("--load", type=int, default=2, help="busy processes for the loaded runs")
    args = ap.parse_args(argv)
    from active.data.video import VideoReader

    with VideoReader(args.video) as r:
        frames = len(r)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for s in args.settings:  # warm the file cache once
            run_once(args.video, s, work / f"t{s}")
        idle = measure(args.video, args.settings, args.repeats, work)
        stop = mp.Event()
        spinners = [mp.Process(target=_spin, args=(stop,)) for _ in range(args.load)]
        for p in spinners:
            p.start()
        try:
            busy = measure(args.video, args.settings, args.repeats, work)
        finally:
            stop.set()
            for p in spinners:
                p.join()
    base = {c: statistics.median(t["default"]) for c, t in (("idle", idle), ("busy", busy))
            if "default" in t}
    print(f"Video: {args.video.name}, {frames} frames; `active detect --no-annotated`, a process "
          f"per run (start-up included); {args.repeats} round-robin repeats; busy = "
          f"{args.load} pure-Python loops beside it.")
    print("| --threads | condition | wall s (median) | best | frames/s (median) | "
          "default's time / this |")
    print("|---|---|---|---|---|---|")
    for cond, times in (("idle", idle), ("busy", busy)):
        for s in args.settings:
            med = statistics.median(times[s])
            ratio = f"{base[cond] / med:.2f}x" if cond in base else "-"
            print(f"| {s} | {cond} | {med:.2f} | {min(times[s]):.2f} | {frames / med:.1f} | "
                  f"{ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
