"""Leave-one-video-out scores of a set of fold models, as the shipped recipe reports them.

Each ``runs/.../<prefix>{k}/last.pt`` is scored on the video its fold held out, at the size it
was trained at (torch, score >= 0.001): sperm AP50, the threshold that makes its count unbiased
there, and the count bias / precision / recall at one shared threshold (the mean of the four
unbiased thresholds, how the shipped model's operating point is chosen) and at the mean of the
*other* folds' thresholds (how that rule counts on a video it was not fitted on).

    python results/2026-12-07-relu/score_folds.py runs/relu-12k/s512-fold \
        --split runs/relu-12k/lovo.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("prefix", help="fold k's weights are PREFIX{k}/last.pt")
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/svia-sample")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan
    from train_shipped_model import at_threshold, score_fold

    records = load_dataset(args.data)
    plan = SplitPlan.load(args.split)
    folds = []
    for k in args.folds:
        test = [r for r in records if r.video_id in set(plan.folds[k].test)]
        s = score_fold(Path(f"{args.prefix}{k}") / "last.pt", test)
        s.update(fold=k, video=",".join(plan.folds[k].test))
        folds.append(s)
        print(f"fold {k} {s['video']}: AP50 {s['ap50']:.4f}, unbiased threshold {s['t_unbiased']}",
              flush=True)
    shared = round(sum(f["t_unbiased"] for f in folds) / len(folds), 4)
    rows = []
    for f in folds:
        others = [x["t_unbiased"] for x in folds if x is not f]
        lofo = round(sum(others) / len(others), 4) if others else shared
        rows.append({"fold": f["fold"], "video": f["video"], "sperm_ap50": f["ap50"],
                     "unbiased_threshold": f["t_unbiased"], "at_shared": at_threshold(f, shared),
                     "at_other_folds_threshold": at_threshold(f, lofo)})
    print(f"\nshared threshold (mean of the folds' unbiased thresholds): {shared}")
    print("| fold | held out | sperm AP50 | unbiased t | bias at shared t | precision / recall "
          "| bias at other folds' t |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        s, o = r["at_shared"], r["at_other_folds_threshold"]
        print(f"| {r['fold']} | {r['video']} | {r['sperm_ap50']:.3f} "
              f"| {r['unbiased_threshold']:.3f} "
              f"| {s['bias_pct']:+.1f} % | {s['precision']:.3f} / {s['recall']:.3f} "
              f"| {o['bias_pct']:+.1f} % |")
    mean = sum(r["sperm_ap50"] for r in rows) / len(rows)
    print(f"mean sperm AP50 {mean:.4f}")
    if args.json:
        args.json.write_text(json.dumps({"prefix": args.prefix, "shared_threshold": shared,
                                         "folds": rows, "mean_ap50": round(mean, 4)}, indent=1))


if __name__ == "__main__":
    main()
