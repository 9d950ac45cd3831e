"""Does a second look at each detection lift AP50? Measure a rescorer on a fold's test video.

``active rescorer`` trains a crop classifier on a detector's candidates on the fold's training
videos and picks its mixing weight on the validation video (src/active/training/rescore.py);
this script does the same and then reports the test video's AP50 at *every* mixing weight, so
the pick can be checked against what the test video would have preferred:

    python scripts/rescore_experiment.py --weights runs/exp-f2/active-i/fold2/best.pt \\
        --data ../shared/data/svia-sample --split runs/exp-f2/split.json --fold 2 [--tta]

Prints a Markdown table (w = 0 is the detector alone) and writes ``--out`` JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from active.data.classes import DEFAULT_CLASSES
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan, apply_fold
from active.models.checkpoint import load_model
from active.models.postprocess import PostProcessConfig
from active.models.predict import predict_records
from active.training.loss import LossConfig
from active.training.rescore import RescoreConfig, fit_rescorer, weight_table
from active.training.trainer import resolve_device
from active.utils.io import write_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--tta", action="store_true", help="flip TTA for the detections")
    ap.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS (no box merging)")
    ap.add_argument("--min-score", type=float, default=0.01)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--context", type=float, default=2.0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="also save the rescorer here")
    ap.add_argument("--out", default=None, help="JSON of the numbers")
    args = ap.parse_args(argv)

    t0 = time.time()
    cfg = RescoreConfig(crop=args.crop, context=args.context, width=args.width,
                        epochs=args.epochs, min_score=args.min_score, seed=args.seed)
    records = load_dataset(args.data, "auto", DEFAULT_CLASSES)
    rescorer, summary = fit_rescorer(args.weights, args.data, args.split, args.fold, cfg,
                                     tta=args.tta, merge=not args.no_merge, device="cpu",
                                     log=lambda m: print(m, flush=True), records=records)
    if args.save:
        rescorer.save(args.save)
    dev = resolve_device("cpu")
    model, ckpt = load_model(args.weights, dev)
    test = apply_fold(records, SplitPlan.load(args.split).folds[args.fold],
                      Path(args.split))["test"]
    coder = LossConfig.from_dict(ckpt.get("loss_config") or {}).coder()
    post = PostProcessConfig.for_evaluation(merge=not args.no_merge)
    dets = predict_records(model, test, tuple(model.config.imgsz), coder, post, dev,
                           tta=args.tta)
    table = {"val": summary.get("val_ap50", {}),
             "test": {str(w): {n: c.ap for n, c in aps.items()} for w, aps in weight_table(
                 rescorer, dets, [r.image for r in test], cfg.weights).items()}}
    names = rescorer.class_names
    parts = [p for p in ("val", "test") if table[p]]
    print(f"\nAP50 (%) after rescoring, fold {args.fold}, {'TTA' if args.tta else 'no TTA'}, "
          f"{'plain NMS' if args.no_merge else 'merged'}; w = 0 is the detector alone")
    print("| w | " + " | ".join(f"{p} {n}" for p in parts for n in names) + " |")
    print("|---|" + "---|" * (len(parts) * len(names)))
    for w in cfg.weights:
        cells = [table[p][str(w)][n] for p in parts for n in names]
        print(f"| {w} | " + " | ".join("n/a" if np.isnan(c) else f"{100 * c:.1f}"
                                       for c in cells) + " |")
    print(f"w picked on validation: {rescorer.weight}; training crops {summary['crops']}; "
          f"{time.time() - t0:.0f} s")
    if args.out:
        write_json(args.out, {"args": vars(args), "weight": rescorer.weight, "ap50": table},
                   indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
