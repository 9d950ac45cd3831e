"""Store a model's counting operating point: the score threshold at which its sperm count per
frame is unbiased on validation frames (``active.evaluation.counting.count_threshold``), in the
checkpoint's ``meta["operating_point"]``, and export the ONNX twin again so that its metadata
carries it too. ``Predictor``, ``active detect`` and ``active analyze`` then use it by default.
With ``--um-per-px``, also the scale the model was trained at (``meta["scale"]``: µm/px and the
median sperm box of the data in px), which ``--um-per-px`` on detect/analyze resizes frames to.

    python scripts/set_operating_point.py src/active/weights/active-i-n-svia.pt \
        --data ../shared/data/svia-sample --videos S_0001 --um-per-px 0.35

Use validation frames the model was not trained on (for the bundled model, its validation video).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("weights", type=Path, help="checkpoint (.pt) to update in place")
    ap.add_argument("--data", type=Path, required=True, help="annotated validation frames")
    ap.add_argument("--videos", nargs="*", default=None, help="only these videos of --data")
    ap.add_argument("--no-onnx", action="store_true", help="do not export the ONNX twin again")
    ap.add_argument("--um-per-px", type=float, default=None, help="the µm/px of the frames the "
                    "model was trained on (stored as its scale)")
    ap.add_argument("--scale-note", default="", help="where that µm/px comes from")
    args = ap.parse_args(argv)

    import torch

    from active.data.ap import ImageResult, evaluate_ap
    from active.data.dataset import load_dataset
    from active.evaluation.counting import count_bias, count_threshold
    from active.inference.predictor import Predictor
    from active.models.checkpoint import read_checkpoint
    from active.models.export import export_onnx
    from active.utils.io import atomic_path

    records = load_dataset(args.data)
    if args.videos:
        records = [r for r in records if r.video_id in set(args.videos)]
    if not records:
        sys.exit(f"{args.data}: no annotated frame (videos {args.videos})")
    pred = Predictor(args.weights, backend="torch", conf=0.001)
    sperm = pred.names.index("sperm")
    results = [ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls)
               for r, d in zip(records, (pred(r.image) for r in records), strict=True)]
    t = round(count_threshold(results, sperm), 4)
    op = {"score_threshold": t, "fitted_on": {"data": str(args.data),
                                              "videos": sorted({r.video_id for r in records}),
                                              "frames": len(records)},
          "count_at_threshold": count_bias(results, sperm, t),
          "count_at_0.25": count_bias(results, sperm, 0.25),
          "sperm_ap50": round(evaluate_ap(results, pred.names)["sperm"].ap, 4)}
    data = read_checkpoint(args.weights)
    data.setdefault("meta", {})["operating_point"] = op
    if args.um_per_px is not None:
        from active.data.scale import records_scale

        data["meta"]["scale"] = {**records_scale(records, data["model_config"]["imgsz"],
                                                 args.um_per_px), "note": args.scale_note}
    with atomic_path(args.weights) as tmp:
        torch.save(data, tmp)
    print(f"{args.weights}: operating point {t} (count bias there "
          f"{op['count_at_threshold']['bias_pct']:+.1f} %, at 0.25 "
          f"{op['count_at_0.25']['bias_pct']:+.1f} %)")
    if not args.no_onnx:
        print(f"exported {export_onnx(args.weights)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
