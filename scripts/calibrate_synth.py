"""Compare the synthetic generator with the real SVIA sample; write the table and a picture.

    python scripts/calibrate_synth.py [--real ../shared/data/svia-sample] [--videos 4]
        [--frames 45] [--seed 0] [--doc docs/synthetic.md] [--image docs/img/synth_vs_real.png]

Measures, on real and synthetic frames alike: box sizes per class (w, h, sqrt area
percentiles), boxes per frame, grey-level statistics, local contrast, fine noise, interlace
combing, frame-to-frame change, how dark sperm heads and how bright their halos are, and how far
sperm move per frame. Prints a Markdown table, puts it between the calibration markers of
``--doc`` and writes real | synthetic side by side to ``--image``.
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from active.data.record import FrameRecord
from active.data.svia import read_svia
from active.data.synth import SynthConfig, render_video, video_seed
from active.utils.io import atomic_path, write_between

REPO = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- calibration:begin -->", "<!-- calibration:end -->"
SPERM, IMPURITY = 0, 1


def grey_of(rec: FrameRecord) -> np.ndarray:
    return cv2.cvtColor(rec.image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def frame_metrics(rgb: np.ndarray) -> dict[str, float]:
    """Grey statistics of one frame (see the table's row names)."""
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(g, (9, 9))
    local = np.sqrt(np.maximum(cv2.blur(g * g, (9, 9)) - mean * mean, 0))
    dy = np.abs(g[1:-1] - 0.5 * (g[:-2] + g[2:]))
    dx = np.abs(g[:, 1:-1] - 0.5 * (g[:, :-2] + g[:, 2:]))
    f = rgb.astype(np.float32)
    return {
        "grey mean": float(g.mean()),
        "grey std": float(g.std()),
        "grey p1": float(np.percentile(g, 1)),
        "grey p99": float(np.percentile(g, 99)),
        "illumination range (blur 25 px)": float(np.ptp(cv2.GaussianBlur(g, (0, 0), 25))),
        "local contrast (mean 9x9 std)": float(local.mean()),
        "fine noise (std of g - blur 1 px)": float((g - cv2.GaussianBlur(g, (0, 0), 1)).std()),
        "combing (vertical / horizontal 2nd diff, p99.9)": float(
            np.percentile(dy, 99.9) / max(np.percentile(dx, 99.9), 1e-6)
        ),
        "green excess (G - (R+B)/2)": float((f[..., 1] - 0.5 * (f[..., 0] + f[..., 2])).mean()),
    }


def head_metrics(rec: FrameRecord, g: np.ndarray) -> tuple[list[float], list[float]]:
    """Per sperm box: darkest pixel and brightest ring pixel (p90), both minus the frame median."""
    med = float(np.median(g))
    h, w = g.shape
    dark, halo = [], []
    for box in rec.boxes[rec.labels == SPERM]:
        x0, y0, x1, y1 = np.rint(box).astype(int)
        if x0 < 4 or y0 < 4 or x1 > w - 4 or y1 > h - 4:
            continue
        inner = g[y0:y1, x0:x1]
        outer = g[y0 - 4 : y1 + 4, x0 - 4 : x1 + 4].copy()
        outer[4:-4, 4:-4] = np.nan
        dark.append(float(inner.min()) - med)
        halo.append(float(np.nanpercentile(outer, 90)) - med)
    return dark, halo


def displacements(records: Sequence[FrameRecord]) -> list[float]:
    """Distance from each sperm centre to the nearest sperm centre of the next frame (< 20 px)."""
    out: list[float] = []
    for a, b in zip(records, records[1:], strict=False):
        if a.video_id != b.video_id or b.frame_index != a.frame_index + 1:
            continue
        ca, cb = (
            0.5 * (r.boxes[r.labels == SPERM, :2] + r.boxes[r.labels == SPERM, 2:]) for r in (a, b)
        )
        if len(ca) and len(cb):
            d = np.linalg.norm(ca[:, None] - cb[None], axis=2).min(axis=1)
            out.extend(d[d < 20].tolist())
    return out


def measure(records: Sequence[FrameRecord]) -> dict[str, float]:
    """Every metric of the table for one set of records (images included)."""
    rows: dict[str, float] = {}
    sizes = {}
    for c, name in ((SPERM, "sperm"), (IMPURITY, "impurity")):
        b = np.concatenate([r.boxes[r.labels == c] for r in records]).reshape(-1, 4)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        sizes[name] = (w, h, np.sqrt(w * h))
        counts = np.array([int((r.labels == c).sum()) for r in records])
        rows[f"{name} boxes per frame, mean"] = float(counts.mean())
        rows[f"{name} boxes per frame, p5 / p95"] = (
            float(np.percentile(counts, 5)),
            float(np.percentile(counts, 95)),
        )
    for name, pcts in (("sperm", (5, 25, 50, 75, 95)), ("impurity", (5, 50, 95))):
        w, h, s = sizes[name]
        for label, v in (("w", w), ("h", h), ("sqrt area", s)):
            key = f"{name} box {label}, p" + " / p".join(map(str, pcts))
            rows[key] = tuple(float(np.percentile(v, p)) if len(v) else float("nan") for p in pcts)
    frame_rows: dict[str, list[float]] = {}
    dark, halo = [], []
    prev = None
    change = []
    for r in records:
        rgb = r.image
        for k, v in frame_metrics(rgb).items():
            frame_rows.setdefault(k, []).append(v)
        g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        d, hl = head_metrics(r, g)
        dark += d
        halo += hl
        if prev is not None and prev[0] == r.video_id:
            change.append(float(np.abs(g - prev[1]).mean()))
        prev = (r.video_id, g)
    rows.update({k: float(np.mean(v)) for k, v in frame_rows.items()})
    rows["frame-to-frame mean abs change"] = float(np.mean(change))
    rows["sperm head darkest pixel - frame median, p50"] = float(np.median(dark))
    rows["sperm halo (ring p90) - frame median, p50"] = float(np.median(halo))
    disp = displacements(records)
    rows["sperm step to nearest next-frame sperm, p25 / p50 / p75 / p90"] = tuple(
        float(np.percentile(disp, p)) for p in (25, 50, 75, 90)
    )
    return rows


def fmt(v: float | tuple) -> str:
    if isinstance(v, tuple):
        return " / ".join(fmt(x) for x in v)
    return f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"


def table(real: dict, synth: dict) -> str:
    lines = ["| metric | real SVIA sample | synthetic |", "|---|---|---|"]
    lines += [f"| {k} | {fmt(real[k])} | {fmt(synth[k])} |" for k in real]
    return "\n".join(lines)


def side_by_side(real: np.ndarray, synth: np.ndarray, names: tuple[str, str]) -> np.ndarray:
    """real | synthetic (RGB, same size), each labelled in its corner."""
    synth = cv2.resize(synth, (real.shape[1], real.shape[0]), interpolation=cv2.INTER_AREA)
    gap = np.full((real.shape[0], 8, 3), 255, np.uint8)
    out = np.ascontiguousarray(np.hstack([real, gap, synth]))
    font = cv2.FONT_HERSHEY_SIMPLEX
    for x, text in ((0, names[0]), (real.shape[1] + 8, names[1])):
        (tw, th), _ = cv2.getTextSize(text, font, 0.6, 1)
        cv2.rectangle(out, (x, 0), (x + tw + 12, th + 12), (0, 0, 0), -1)
        cv2.putText(out, text, (x + 6, th + 6), font, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def pick_pair(
    real: Sequence[FrameRecord], synth: Sequence[FrameRecord]
) -> tuple[FrameRecord, FrameRecord]:
    """The first real frame and the first synthetic frame of a video with as many sperm."""
    target = int((real[0].labels == SPERM).sum())
    firsts = [r for r in synth if r.frame_index == 0]
    best = min(firsts, key=lambda r: abs(int((r.labels == SPERM).sum()) - target))
    return real[0], best


def write_picture(path: Path, rgb: np.ndarray) -> None:
    """Write the comparison as a grey PNG (the frames are grey; a third of the RGB file's size)."""
    with atomic_path(path) as tmp:
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if not cv2.imwrite(str(tmp), grey, [cv2.IMWRITE_PNG_COMPRESSION, 9]):
            raise OSError(f"could not write {path}")


def update_doc(doc: Path, block: str) -> None:
    write_between(doc, BEGIN, END, block, heading="## Calibration")


def synthetic_records(
    cfg: SynthConfig, videos: int, frames: int, seed: int, log: Callable[[str], None]
) -> list[FrameRecord]:
    cfg = replace(cfg, frames=frames)
    records = []
    for i in range(videos):
        records += render_video(cfg, video_seed(seed, i), f"SYN_{i + 1:04d}").records
        log(f"rendered synthetic video {i + 1}/{videos}")
    return records


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", type=Path, default=REPO.parent / "shared/data/svia-sample")
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=45)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--doc", type=Path, default=REPO / "docs/synthetic.md")
    ap.add_argument("--image", type=Path, default=REPO / "docs/img/synth_vs_real.png")
    ap.add_argument("--no-write", action="store_true", help="only print the table")
    args = ap.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    real = read_svia(args.real)
    log(f"read {len(real)} real frames from {args.real}")
    synth = synthetic_records(SynthConfig(), args.videos, args.frames, args.seed, log)
    md = table(measure(real), measure(synth))
    shown = ["python", "scripts/calibrate_synth.py"] + [
        a for a in (argv if argv is not None else sys.argv[1:])
    ]
    block = (
        f"Produced on {datetime.date.today().isoformat()} by `{shlex.join(shown)}` "
        f"({len(real)} real frames; {args.videos} synthetic videos x {args.frames} frames, "
        f"seed {args.seed}, default `SynthConfig`).\n\n{md}"
    )
    print(md)
    if not args.no_write:
        update_doc(args.doc, block)
        r, s = pick_pair(real, synth)
        names = (f"real: SVIA {r.name}", f"synthetic: {s.name} (seed {args.seed})")
        write_picture(args.image, side_by_side(r.image, s.image, names))
        log(f"wrote {args.doc} and {args.image}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
