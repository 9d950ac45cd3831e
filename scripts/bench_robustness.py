"""How detectors hold up on optics they were not trained on: annotated frames of a held-out video,
changed the way another microscope would change them, scored side by side.

    python scripts/bench_robustness.py --data ../shared/data/svia-sample --video S_0004 \
        --model old=runs/old-bundled.pt --model new=runs/shipped/fold0/last.pt

Each change keeps the frame size (698x528 on SVIA) and moves the boxes with the pixels:

- ``zoom 0.5`` / ``zoom 0.7``: the field of view of a lower magnification, heads at half (0.7x)
  their size: a mosaic of frames shrunk by that factor (the same video's frames, so the
  density per field of view rises as it would);
- ``zoom 1.5`` / ``zoom 2``: a higher magnification, the centre of the frame enlarged;
- ``pale``: contrast halved around the mean (a paler preparation or stronger lamp);
- ``gamma 0.6`` / ``gamma 1.8``: a camera's other response curve;
- ``defocus``: a Gaussian blur of sigma 1.5 px;
- ``halo``: the bright rims of phase contrast (the image plus its high-pass);
- ``uneven``: a lamp that lights one corner 35 % more than the other.

Per model and change: sperm AP50 (VOC all-point, the project's default post-processing), and at
the model's own counting threshold (its ``meta["operating_point"]``, else ``--conf``) the count
bias, precision and recall. A model never saw the held-out video; pass fold models whose split
held it out.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np


def _zoom_out(records: list, k: int, f: float):
    """Frame k's field of view at magnification ``f`` < 1: tiles of shrunk frames k, k+1, ..."""
    first = records[k]
    h, w = first.image.shape[:2]
    canvas = np.zeros_like(first.image)
    boxes, labels = [], []
    n = int(np.ceil(1 / f))
    tw, th = round(w * f), round(h * f)
    for j in range(n * n):
        r = records[(k + j) % len(records)]
        x0, y0 = (j % n) * tw, (j // n) * th
        if x0 >= w or y0 >= h:
            continue
        small = cv2.resize(r.image, (tw, th), interpolation=cv2.INTER_AREA)
        cw, ch = min(tw, w - x0), min(th, h - y0)
        canvas[y0:y0 + ch, x0:x0 + cw] = small[:ch, :cw]
        b = r.boxes * f + [x0, y0, x0, y0]
        keep = (b[:, 2] <= x0 + cw + 1) & (b[:, 3] <= y0 + ch + 1)  # whole boxes only
        boxes.append(b[keep])
        labels.append(r.labels[keep])
    return canvas, np.concatenate(boxes).astype(np.float32), np.concatenate(labels)


def _zoom_in(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, f: float):
    h, w = image.shape[:2]
    cw, ch = w / f, h / f
    x0, y0 = (w - cw) / 2, (h - ch) / 2
    m = np.array([[f, 0, -x0 * f], [0, f, -y0 * f]])
    out = cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR)
    b = (boxes - [x0, y0, x0, y0]) * f
    inside = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w) & (b[:, 3] <= h)
    return out, b[inside].astype(np.float32), labels[inside]


def _photo(image: np.ndarray, change: str) -> np.ndarray:
    img = image.astype(np.float32)
    if change == "pale":
        img = (img - img.mean()) * 0.5 + img.mean()
    elif change.startswith("gamma"):
        img = 255.0 * (img / 255.0) ** float(change.split()[1])
    elif change == "defocus":
        img = cv2.GaussianBlur(img, (0, 0), 1.5)
    elif change == "halo":
        img = img + 1.0 * (img - cv2.GaussianBlur(img, (0, 0), 3.0))
    elif change == "uneven":
        h, w = img.shape[:2]
        ramp = np.linspace(0.82, 1.18, w, dtype=np.float32)[None, :] * np.linspace(
            0.9, 1.1, h, dtype=np.float32)[:, None]
        img = img * ramp[..., None]
    return img.clip(0, 255).astype(np.uint8)


CHANGES = ("none", "zoom 0.5", "zoom 0.7", "zoom 1.5", "zoom 2", "pale", "gamma 0.6",
           "gamma 1.8", "defocus", "halo", "uneven")


def changed_frames(records: list, change: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    for k, r in enumerate(records):
        if change.startswith("zoom"):
            f = float(change.split()[1])
            out.append(_zoom_out(records, k, f) if f < 1 else
                       _zoom_in(r.image, r.boxes, r.labels, f))
        else:
            out.append((_photo(r.image, change), r.boxes, r.labels))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--video", action="append", required=True, help="held-out video id(s)")
    ap.add_argument("--model", action="append", required=True, metavar="NAME=WEIGHTS[@T]",
                    help="a model to score; @T sets its counting threshold (default: the one "
                    "it records, else --conf)")
    ap.add_argument("--changes", nargs="*", default=list(CHANGES))
    ap.add_argument("--conf", type=float, default=0.25, help="threshold of a model without an "
                    "operating point")
    ap.add_argument("--every", type=int, default=1, help="every N-th annotated frame (1: all)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args(argv)

    from active.data.ap import ImageResult, evaluate_ap
    from active.data.dataset import load_dataset
    from active.evaluation.counting import count_summary
    from active.inference.predictor import Predictor

    records = [r for r in load_dataset(args.data) if r.video_id in set(args.video)][::args.every]
    if not records:
        sys.exit(f"{args.data}: no annotated frame of {args.video}")
    models = {}
    for spec in args.model:
        name, _, path = spec.partition("=")
        path, _, given = path.partition("@")
        own = Predictor(path, backend="torch")  # its own threshold, if it records one
        t = float(given) if given else own.conf if own.operating_point == "model" else args.conf
        models[name] = (Predictor(path, backend="torch", conf=0.001), t)
    rows = []
    for change in args.changes:
        frames = changed_frames(records, change)
        for name, (pred, t) in models.items():
            sperm = pred.names.index("sperm")
            res = [ImageResult(b, lab, d.xyxy, d.conf, d.cls)
                   for (img, b, lab), d in zip(frames, (pred(f[0]) for f in frames), strict=True)]
            s = count_summary(res, pred.names, sperm, t)
            rows.append({"change": change, "model": name,
                         "ap50": round(evaluate_ap(res, pred.names)["sperm"].ap, 4), **s})
            print(f"{change:10s} {name:8s} AP50 {rows[-1]['ap50']:.3f}  at {t:.3f}: count "
                  f"{s['bias_pct']:+6.1f} %  P {s['precision']}  R {s['recall']}", flush=True)
    names = list(models)
    print(f"\n| change | {' | '.join(f'{n}: AP50 / count bias / recall' for n in names)} |")
    print("|---|" + "---|" * len(names))
    for change in args.changes:
        cells = []
        for n in names:
            r = next(x for x in rows if x["change"] == change and x["model"] == n)
            cells.append(f"{r['ap50']:.3f} / {r['bias_pct']:+.0f} % / {r['recall']:.2f}")
        print(f"| {change} | {' | '.join(cells)} |")
    if args.json:
        from active.utils.io import write_json

        write_json(args.json, {"data": str(args.data), "videos": args.video, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
