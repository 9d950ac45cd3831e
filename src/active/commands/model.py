"""``active model info|anchors`` and ``active export``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from active.commands._args import device, image_side, non_negative_int, positive_int
from active.commands.data import add_data_args, load_records
from active.errors import UsageError


def cmd_model_info(args: argparse.Namespace) -> int:
    from active.models.device import pick_device
    from active.models.info import format_info, model_info

    pick_device(args.device)  # a device this machine lacks: an error naming --device
    branches = ("b1", "b2") if args.branches == "both" else (args.branches,)
    info = model_info(args.variant, args.scale, tuple(args.imgsz), branches, args.device,
                      runs=args.runs)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_model_anchors(args: argparse.Namespace) -> int:
    import numpy as np

    from active.models.anchors import anchor_fitness
    from active.training.trainer import fit_anchors

    records = load_records(args)
    anchors = fit_anchors(records, tuple(args.imgsz), args.seed)
    wh = np.concatenate([(r.boxes[:, 2:] - r.boxes[:, :2]) * min(args.imgsz[0] / r.height,
                         args.imgsz[1] / r.width) for r in records])
    mean_iou, recall = anchor_fitness(wh, np.array(anchors), 0.25)
    print(f"anchors (w, h) at input {args.imgsz[0]}x{args.imgsz[1]}, 3 per level "
          f"(strides 8, 16, 32), from {len(wh)} boxes:")
    for level in range(3):
        print(f"  stride {8 << level:>2}: {anchors[3 * level: 3 * level + 3]}")
    print(f"mean best IoU {mean_iou:.3f}, recall at IoU>0.25 {recall:.3f}")
    print(f"config: model.anchors={[list(a) for a in anchors]}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from active.inference.predictor import resolve_weights
    from active.models.export import export_onnx, export_stripped

    weights = resolve_weights(args.weights)
    if args.format == "onnx":
        path = export_onnx(weights, args.out, args.opset,
                           tuple(args.imgsz) if args.imgsz else None)
    else:
        if args.out is None:
            raise UsageError("--format pt needs --out (the stripped checkpoint to write)")
        extra = {}
        if args.eval:
            try:
                extra["evaluation"] = json.loads(Path(args.eval).read_text())
            except (OSError, ValueError) as exc:
                raise UsageError(f"{args.eval}: cannot read the evaluation report ({exc})"
                                 ) from None
            extra["evaluation"].pop("text", None)
        path = export_stripped(weights, args.out, extra)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``model`` and ``export``."""
    model = sub.add_parser("model", help="inspect models: size, speed, anchors",
                           description="Inspect the ACTIVE model family.")
    msub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p = msub.add_parser("info", help="parameters, GFLOPs, output shapes and CPU latency",
                        description="Build a variant and report its parameters, GFLOPs, output "
                        "shapes and latency at batch 1.")
    p.add_argument("variant", help="active-i ... active-viii, yolov3, yolov4")
    p.add_argument("--scale", default="n", help="paper, s, n or tiny (default n)")
    p.add_argument("--imgsz", type=image_side, nargs=2, default=(416, 416),
                   metavar=("H", "W"), help="input size, multiples of 32 (default 416 416)")
    p.add_argument("--branches", choices=("both", "b1", "b2"), default="both",
                   help="DBFEN branches (b1/b2 alone: the paper's ablation)")
    p.add_argument("--device", type=device, default="cpu",
                   help="cpu, cuda, cuda:1 ... (default cpu)")
    p.add_argument("--runs", type=non_negative_int, default=20,
                   help="timed runs (0: skip timing)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_model_info)

    p = msub.add_parser("anchors", help="k-means anchors for a dataset",
                        description="Fit nine anchors (k-means, 1 - IoU distance) to a dataset's "
                        "boxes at the training input size, three per level.")
    add_data_args(p)
    p.add_argument("--imgsz", type=image_side, nargs=2, default=(416, 416),
                   metavar=("H", "W"), help="training input size (default 416 416)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="k-means seed (default 0)")
    p.set_defaults(func=cmd_model_anchors)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (or a stripped checkpoint)",
                       description="Export a checkpoint. onnx: the network with a dynamic batch "
                       "axis, class names, anchors, strides, input size and box coder in the "
                       "metadata (default path: beside the checkpoint, .onnx). pt: weights and "
                       "model description without training state, for shipping.")
    p.add_argument("weights", help="checkpoint .pt, or 'default'")
    p.add_argument("--format", choices=("onnx", "pt"), default="onnx", help="(default onnx)")
    p.add_argument("--out", type=Path, default=None,
                   help="file to write (an existing file is replaced)")
    p.add_argument("--imgsz", type=image_side, nargs=2, default=None, metavar=("H", "W"),
                   help="input size (default: the checkpoint's)")
    p.add_argument("--opset", type=positive_int, default=18, help="ONNX opset (18)")
    p.add_argument("--eval", type=Path, default=None,
                   help="(pt) an 'active eval' report.json to keep in the checkpoint's meta")
    p.set_defaults(func=cmd_export)
