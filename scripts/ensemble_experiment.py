"""How much does an ensemble add? Score every subset of some checkpoints on a fold's test videos.

Each checkpoint runs once per flip of each test frame; every subset of them (of the sizes in
``--sizes``) is then fused the way ``active eval --weights A B ...`` fuses
(:class:`active.inference.ensemble.Ensemble`), without and with flip TTA, and its AP50 per class
printed. Every subset, not a chosen one: which runs to combine is not picked on the test video.

    python scripts/ensemble_experiment.py --data ../shared/data/svia-sample \\
        --split runs/exp-2s/split.json --fold 2 --weights runs/exp-2s/active-i/fold2/best.pt \\
        runs/exp-2s-seed1/fold2/best.pt runs/exp-2s-e240/active-i/fold2/best.pt

Prints a Markdown table (one row per subset, then the mean and range per subset size) and
writes ``--out`` JSON. The checkpoints must share classes and input size.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

from active.data.classes import DEFAULT_CLASSES
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan, apply_fold
from active.evaluation.ap import ImageResult, evaluate_ap
from active.inference.ensemble import load_ensemble
from active.inference.postprocess import PostProcessConfig
from active.inference.predict import preprocess
from active.inference.tta import fuse_views
from active.utils.io import write_json


def member_views(weights: str, records, cfg: PostProcessConfig, batch: int = 8
                 ) -> tuple[list[list[torch.Tensor]], list, tuple[int, int]]:
    """One checkpoint's four flipped views of every record (rows in network-input pixels), each
    record's letterbox, and the input size."""
    ens, _ = load_ensemble([weights], tta=True)
    size = tuple(ens.config.imgsz)
    views, metas = [], []
    for start in range(0, len(records), batch):
        x, m = preprocess([r.image for r in records[start:start + batch]], size)
        with torch.inference_mode():
            views += ens.views(x, cfg.score_threshold)
        metas += m
    return views, metas, size


def score(records, views_per_image, metas, cfg, names) -> dict[str, float]:
    results = []
    for rec, views, meta in zip(records, views_per_image, metas, strict=True):
        d = fuse_views(views, cfg)
        results.append(ImageResult(rec.boxes, rec.labels, meta.undo(d.boxes.numpy()),
                                   d.scores.numpy(), d.classes.numpy()))
    return {n: c.ap for n, c in evaluate_ap(results, names).items()}


def print_tables(rows: list[dict], weights: list[str], where: str) -> None:
    """A row per subset, then the mean and range of each subset size (sperm AP50, %)."""
    short = {w: f"#{i + 1}" for i, w in enumerate(weights)}
    print(f"\nAP50 sperm (%), {where}; "
          + ", ".join(f"{s} = {w}" for w, s in short.items()))
    print("| members | fused | + flip TTA |\n|---|---|---|")
    for r in rows:
        print(f"| {' + '.join(short[w] for w in r['members'])} | "
              f"{100 * r['fused']['sperm']:.1f} | {100 * r['TTA']['sperm']:.1f} |")
    print("\n| members | subsets | fused mean (min-max) | + flip TTA mean (min-max) |")
    print("|---|---|---|---|")
    for k in sorted({len(r["members"]) for r in rows}):
        cells = []
        for label in ("fused", "TTA"):
            v = 100 * np.array([r[label]["sperm"] for r in rows if len(r["members"]) == k])
            cells.append(f"{v.mean():.1f} ({v.min():.1f}-{v.max():.1f})")
        n = sum(len(r["members"]) == k for r in rows)
        print(f"| {k} | {n} | " + " | ".join(cells) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--part", default="test", choices=("val", "test"))
    ap.add_argument("--sizes", type=int, nargs="+", default=None,
                    help="subset sizes (default: all, 1 to the number of checkpoints)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=None, help="JSON of the numbers")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    t0 = time.time()
    records = load_dataset(args.data, "auto", DEFAULT_CLASSES)
    records = apply_fold(records, SplitPlan.load(args.split).folds[args.fold],
                         Path(args.split))[args.part]
    cfg = PostProcessConfig.for_evaluation()
    names = DEFAULT_CLASSES.names
    views, metas, sizes = {}, None, set()
    for w in args.weights:
        views[w], metas, size = member_views(w, records, cfg)
        sizes.add(size)
        print(f"{w}: {len(records)} frames at {size[0]}x{size[1]}", flush=True)
    if len(sizes) > 1:
        print(f"the checkpoints were trained at different sizes {sorted(sizes)}", file=sys.stderr)
        return 2
    rows = []
    for k in args.sizes or range(1, len(args.weights) + 1):
        for subset in itertools.combinations(args.weights, k):
            row = {"members": list(subset)}
            for label, flips in (("fused", [0]), ("TTA", [0, 1, 2, 3])):
                per_image = [[views[w][i][f] for w in subset for f in flips]
                             for i in range(len(records))]
                row[label] = score(records, per_image, metas, cfg, names)
            rows.append(row)
            print(f"{k}: " + " + ".join(subset) + f": sperm {100 * row['fused']['sperm']:.1f}"
                  f" / {100 * row['TTA']['sperm']:.1f} (TTA)", flush=True)
    print_tables(rows, args.weights, f"fold {args.fold} {args.part}")
    if args.out:
        write_json(args.out, rows, indent=1)
        print(f"wrote {args.out}")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
