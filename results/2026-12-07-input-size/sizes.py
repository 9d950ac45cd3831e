"""Sperm AP50 and the count-unbiased threshold of the 12k LOVO fold models at several input sizes
(HxW; no retraining).

    python results/2026-12-07-input-size/sizes.py 0 1 2 > folds012.jsonl
    python results/2026-12-07-input-size/sizes.py 0 1 2 3 --sizes 384x480 352x448 \
        > folds0123-small.jsonl
"""

import argparse
import json

from active.data.ap import ImageResult, evaluate_ap
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan
from active.evaluation.counting import count_threshold
from active.inference.predictor import Predictor

ap = argparse.ArgumentParser()
ap.add_argument("folds", nargs="+", type=int)
ap.add_argument("--sizes", nargs="+", default=["544x704", "480x640", "480x608", "416x544"])
args = ap.parse_args()
recs = load_dataset("../shared/data/svia-sample")
plan = SplitPlan.load("runs/shipped-plain-12k/lovo.json")
for k in args.folds:
    test = [r for r in recs if r.video_id in set(plan.folds[k].test)]
    for sz in [tuple(map(int, s.split("x"))) for s in args.sizes]:
        p = Predictor(f"runs/shipped-plain-12k/fold{k}/last.pt", backend="torch", conf=0.001,
                      imgsz=sz, threads=1)
        res = [ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls)
               for r, d in zip(test, (p(r.image) for r in test), strict=True)]
        sperm = p.names.index("sperm")
        print(json.dumps({"fold": k, "video": plan.folds[k].test[0], "size": f"{sz[1]}x{sz[0]}",
                          "ap50": round(evaluate_ap(res, p.names)["sperm"].ap, 4),
                          "t": round(count_threshold(res, sperm), 4)}), flush=True)
