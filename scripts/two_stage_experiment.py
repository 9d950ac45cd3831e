"""What does the second stage add? Score a two-stage checkpoint's held-out videos three ways.

For a checkpoint trained with ``model.second_stage: true`` (src/active/models/two_stage.py) this
evaluates, on the fold's validation and test videos, sperm and impurity AP50 of

- the first stage alone (the one-stage network inside it, its usual post-processing),
- the second stage's detections with the first-stage score mixed in: each row's score is
  ``p2 * s1 ** w`` for w in ``--weights`` (w = 0: the second stage alone, the default),

each with plain DIoU-NMS and with merging (and flip TTA with ``--tta``):

    python scripts/two_stage_experiment.py --weights runs/exp-2s/active-i/fold2/best.pt \\
        --data ../shared/data/svia-sample --split runs/exp-2s/split.json --fold 2

Prints a Markdown table and writes ``--out`` JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from active.data.ap import evaluate_ap
from active.data.classes import DEFAULT_CLASSES
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan, apply_fold
from active.models.checkpoint import load_model
from active.models.postprocess import PostProcessConfig
from active.models.predict import predict_records
from active.training.loss import LossConfig
from active.training.trainer import resolve_device
from active.utils.io import write_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--mix", type=float, nargs="+", default=[0.0, 0.5, 1.0],
                    help="exponents w of the first-stage score")
    ap.add_argument("--tta", action="store_true", help="also with flip TTA")
    ap.add_argument("--out", default=None, help="JSON of the numbers")
    args = ap.parse_args(argv)

    t0 = time.time()
    dev = resolve_device("cpu")
    model, ckpt = load_model(args.weights, dev)
    if not model.config.second_stage:
        print(f"{args.weights}: not a two-stage checkpoint", file=sys.stderr)
        return 2
    coder = LossConfig.from_dict(ckpt.get("loss_config") or {}).coder()
    records = load_dataset(args.data, "auto", DEFAULT_CLASSES)
    parts = apply_fold(records, SplitPlan.load(args.split).folds[args.fold], Path(args.split))
    names = DEFAULT_CLASSES.names
    settings = [("plain", False, False), ("merged", True, False)]
    if args.tta:
        settings.append(("TTA", True, True))
    rows: list[dict] = []
    for label, w in [("first stage alone", None)] + [(f"second stage, w = {w:g}", w)
                                                      for w in args.mix]:
        if w is None:
            model.returns_detections = False  # the Detector path: raw outputs -> DIoU-NMS
        else:
            model.returns_detections = True
            model.first_stage_weight = w
        for post_name, merge, tta in settings:
            row = {"scoring": label, "post": post_name}
            for part in ("val", "test"):
                if not parts[part]:
                    continue
                dets = predict_records(model, parts[part], tuple(model.config.imgsz), coder,
                                       PostProcessConfig.for_evaluation(merge=merge), dev,
                                       tta=tta)
                for name, c in evaluate_ap(dets, names).items():
                    row[f"{part} {name}"] = c.ap
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = [k for k in rows[0] if k not in ("scoring", "post")]
    print(f"\nAP50 (%), fold {args.fold}, {args.weights}")
    print("| scoring | post-processing | " + " | ".join(cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{100 * r[c]:.1f}" if r[c] == r[c] else "n/a" for c in cols]
        print(f"| {r['scoring']} | {r['post']} | " + " | ".join(cells) + " |")
    print(f"({time.time() - t0:.0f} s)")
    if args.out:
        write_json(args.out, rows, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
