"""Sperm AP50 and the count-unbiased threshold of the 12k LOVO fold models at two smaller input sizes (480x384, 448x352).

    python results/2026-12-07-input-size/sizes_small.py 0 1 2 3 > folds0123-small.jsonl
"""

import json
import sys

from active.data.ap import ImageResult, evaluate_ap
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan
from active.evaluation.counting import count_threshold
from active.inference.predictor import Predictor

recs = load_dataset("../shared/data/svia-sample")
plan = SplitPlan.load("runs/shipped-plain-12k/lovo.json")
for k in map(int, sys.argv[1:]):
    test = [r for r in recs if r.video_id in set(plan.folds[k].test)]
    for sz in [(384, 480), (352, 448)]:
        p = Predictor(f"runs/shipped-plain-12k/fold{k}/last.pt", backend="torch", conf=0.001,
                      imgsz=sz, threads=1)
        res = [ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls)
               for r, d in zip(test, (p(r.image) for r in test), strict=True)]
        sperm = p.names.index("sperm")
        print(json.dumps({"fold": k, "video": plan.folds[k].test[0], "size": f"{sz[1]}x{sz[0]}",
                          "ap50": round(evaluate_ap(res, p.names)["sperm"].ap, 4),
                          "t": round(count_threshold(res, sperm), 4)}), flush=True)
