"""How much does an ensemble add? Score every subset of some checkpoints on a fold's test videos.

Each checkpoint runs once per flip of each test frame; every subset of them (of the sizes in
``--sizes``) is then fused the way ``active eval --weights A B ...`` fuses
(:class:`active.models.ensemble.Ensemble`), without and with flip TTA, and its AP50 per class
printed. Every subset, not a chosen one: which runs to combine is not picked on the test video.

    python scripts/ensemble_experiment.py --data ../shared/data/svia-sample \\
        --split runs/exp-2s/split.json --fold 2 --weights runs/exp-2s/active-i/fold2/best.pt \\
        runs/exp-2s-seed1/fold2/best.pt runs/exp-2s-e240/active-i/fold2/best.pt

Several folds at once: ``--fold 0 1 2 3`` with ``{fold}`` in the paths
(``--weights 'runs/exp-2s/active-i/fold{fold}/best.pt' 'runs/exp-2s-seed1/fold{fold}/best.pt'``).
Prints a Markdown table per fold (one row per subset, then the mean and range per subset size),
with several folds a summary table, and writes ``--out`` JSON. The checkpoints must share classes
and input size.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np
import torch

from active.data.ap import ImageResult, evaluate_ap
from active.data.classes import DEFAULT_CLASSES
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan, apply_fold
from active.models.ensemble import load_ensemble
from active.models.postprocess import PostProcessConfig
from active.models.predict import preprocess
from active.models.tta import fuse_views
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
        cells = ["{:.1f} ({:.1f}-{:.1f})".format(*size_summary(rows, k, label))
                 for label in ("fused", "TTA")]
        n = sum(len(r["members"]) == k for r in rows)
        print(f"| {k} | {n} | " + " | ".join(cells) + " |")


def fold_rows(weights: list[str], records, sizes: list[int] | None) -> list[dict]:
    """Every subset's AP50 per class, fused and with flip TTA, on ``records``."""
    cfg = PostProcessConfig.for_evaluation()
    views, metas, shapes = {}, None, set()
    for w in weights:
        views[w], metas, size = member_views(w, records, cfg)
        shapes.add(size)
        print(f"{w}: {len(records)} frames at {size[0]}x{size[1]}", flush=True)
    if len(shapes) > 1:
        raise SystemExit(f"the checkpoints were trained at different sizes {sorted(shapes)}")
    rows = []
    for k in sizes or range(1, len(weights) + 1):
        for subset in itertools.combinations(weights, k):
            row = {"members": list(subset)}
            for label, flips in (("fused", [0]), ("TTA", [0, 1, 2, 3])):
                per_image = [[views[w][i][f] for w in subset for f in flips]
                             for i in range(len(records))]
                row[label] = score(records, per_image, metas, cfg, DEFAULT_CLASSES.names)
            rows.append(row)
    return rows


def size_summary(rows: list[dict], k: int, label: str) -> tuple[float, float, float]:
    """Mean, min and max sperm AP50 (%) over the subsets of size ``k``."""
    v = 100 * np.array([r[label]["sperm"] for r in rows if len(r["members"]) == k])
    return float(v.mean()), float(v.min()), float(v.max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", nargs="+", required=True,
                    help="checkpoints; with several --fold, paths with {fold} in them")
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--fold", type=int, nargs="+", default=[0])
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
    plan = SplitPlan.load(args.split)
    result: dict[str, dict] = {}
    for fold in args.fold:
        part = apply_fold(records, plan.folds[fold], Path(args.split))[args.part]
        weights = [w.format(fold=fold) for w in args.weights]
        rows = fold_rows(weights, part, args.sizes)
        videos = sorted({r.video_id for r in part})
        print_tables(rows, weights, f"fold {fold} {args.part} ({', '.join(videos)})")
        result[str(fold)] = {"videos": videos, "rows": rows}
    if len(args.fold) > 1:
        ks = sorted({len(r["members"]) for r in result[str(args.fold[0])]["rows"]})
        print("\nsperm AP50 (%) per fold: mean over the subsets of each size (min), fused / "
              "+ flip TTA")
        print("| fold | videos | " + " | ".join(f"{k} model{'s' * (k > 1)}" for k in ks)
              + " |\n|---|---|" + "---|" * len(ks))
        for fold, r in result.items():
            cells = []
            for k in ks:
                (f, fmin, _), (t, tmin, _) = (size_summary(r["rows"], k, lab)
                                              for lab in ("fused", "TTA"))
                cells.append(f"{f:.1f} ({fmin:.1f}) / {t:.1f} ({tmin:.1f})")
            print(f"| {fold} | {', '.join(r['videos'])} | " + " | ".join(cells) + " |")
    if args.out:
        write_json(args.out, result, indent=1)
        print(f"wrote {args.out}")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
