"""``active detect`` and ``active demo``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from active.commands._args import (
    add_overwrite,
    device,
    image_side,
    non_negative_int,
    positive_int,
    probability,
)


def _um_per_px(text: str) -> float:
    from active.analysis.calibration import check_um_per_px
    from active.errors import UsageError

    try:
        return float(check_um_per_px(text, "--um-per-px"))  # type: ignore[arg-type]
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--um-per-px ")) from exc


def checked_profile(profile_path: Path | None, weights: list[str] | str) -> Any:
    """The ``--profile`` file, read once and checked against the model (None without one)."""
    if profile_path is None:
        return None
    from active.errors import CheckpointError
    from active.inference.predictor import resolve_weights
    from active.inference.profile import load_profile
    from active.utils.io import file_sha256

    profile = load_profile(profile_path)
    model = resolve_weights(weights[0] if isinstance(weights, list) else weights)
    if not model.is_file():
        raise CheckpointError(model, "model file not found")
    profile.check_model(file_sha256(model), model, profile_path)
    return profile


def _predictor(args: argparse.Namespace):
    from active.errors import UsageError
    from active.inference.predictor import Predictor

    if args.imgsz is not None and len(args.imgsz) > 2:
        raise UsageError(f"--imgsz {' '.join(map(str, args.imgsz))}: give one value (N for "
                         "N x N) or two (H W)")
    imgsz = None if args.imgsz is None else (args.imgsz * 2 if len(args.imgsz) == 1
                                             else args.imgsz)
    profile = checked_profile(args.profile, args.weights)
    # --conf, else the profile's threshold, else (None) the model's counting operating point
    conf = args.conf if args.conf is not None or profile is None else profile.score_threshold
    predictor = Predictor(args.weights, backend=args.backend, device=args.device, imgsz=imgsz,
                          conf=conf, iou=args.iou, max_det=args.max_det,
                          threads=args.threads, tta=args.tta, merge=not args.no_merge,
                          rescorer=getattr(args, "rescorer", None),
                          um_per_px=getattr(args, "um_per_px", None))
    if args.um_per_px is None and profile is not None:
        scale = profile.um_per_px  # given or estimated from head size
        if scale is not None and predictor.model_um_per_px is not None:
            predictor.set_scale(scale)
    return predictor


def cmd_detect(args: argparse.Namespace) -> int:
    from active.inference.detect import DetectOptions, detect
    from active.inference.sources import FrameSource
    from active.utils.outdir import output_folder

    predictor = _predictor(args)
    default = None
    if args.out is None:
        src = FrameSource(args.source)
        src.close()
        default = Path("runs/detect") / src.stem
    with output_folder(args.out, default, overwrite=args.overwrite, command="detect",
                       inputs=[args.source]) as out:
        opts = DetectOptions(out=out, save_annotated=not args.no_annotated,
                             video={"auto": None, "video": True, "images": False}[args.annotated],
                             save_crops=args.save_crops, labels=args.labels, batch=args.batch,
                             threads=not args.no_threads, progress=not args.quiet)
        summary = detect(predictor, args.source, opts)
    print(f"{predictor}")
    print(summary.format())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from active.demo import format_analysis, format_truth, run_demo
    from active.utils.outdir import output_folder

    with output_folder(args.out, "active-demo", overwrite=args.overwrite, command="demo",
                       inputs=[args.video] if args.video else ()) as out:
        summary, truth = run_demo(args.video, out, args.weights, args.backend, args.frames,
                                  args.seed, args.device, progress=not args.quiet)
    print(summary.format())
    if truth is not None:
        print("\nagainst the synthetic clip's ground truth (IoU 0.5, score >= "
              f"{summary.extra['score_threshold']}):")
        print(format_truth(truth))
        print("\nsemen analysis of the clip (tracks, WHO grades, concentration) against its "
              "truth:")
        print(format_analysis(truth["analysis"]))
    print(f"\nopen {summary.outputs.get('annotated', out)} to see every detection")
    return 0


def add_predict_args(p: argparse.ArgumentParser, weights_default: str = "default") -> None:
    p.add_argument("--weights", nargs="+", default=[weights_default],
                   help="checkpoint .pt, exported .onnx, 'default' (the bundled model) or 'fast' "
                        "(the bundled fast model, 512x384; docs/model-card.md); "
                        "several .pt: an ensemble, their boxes fused (PyTorch)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: ONNX Runtime when the model has an exported .onnx twin, else "
                        "PyTorch (default auto)")
    p.add_argument("--device", type=device, default="cpu",
                   help="cpu, cuda, cuda:1, auto (default cpu)")
    p.add_argument("--imgsz", type=image_side, nargs="+", default=None, metavar="N",
                   help="input size: H W, or one N for N x N (default: the model's)")
    p.add_argument("--conf", type=probability, default=None, help="score threshold, 0 to 1 "
                   "(default: the --profile's, else the model's operating point, else 0.25)")
    p.add_argument("--profile", type=Path, default=None, help="a microscope profile from "
                   "'active calibrate': its counting threshold (--conf overrides it)")
    p.add_argument("--um-per-px", type=_um_per_px, default=None, metavar="X",
                   help="your frames' µm per pixel: each frame is resized so that sperm heads "
                   "reach the model at the scale it was trained at (model card)")
    p.add_argument("--iou", type=probability, default=0.45,
                   help="DIoU-NMS IoU threshold, 0 to 1 (0.45)")
    p.add_argument("--max-det", type=positive_int, default=300,
                   help="detections kept per frame (300)")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all)")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation: 4 passes "
                   "per frame, boxes fused (about 4x slower, more accurate when crowded)")
    p.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS as in the paper "
                   "(default: each kept box is merged with the boxes it suppressed)")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``detect`` and ``demo``."""
    p = sub.add_parser("detect", help="find and count sperm and impurities in a video or images",
                       description="Detect in SOURCE (an image, a folder of images, a glob in "
                       "quotes, or a video) and write an annotated video (or images), "
                       "counts.csv (one row per frame), detections.json (every box) and "
                       "summary.json (count statistics per class, speed per stage).")
    p.add_argument("source", help="image, folder, 'glob/*.png' or video file")
    add_predict_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder, new or empty (default runs/detect/<source name>, "
                   "numbered -2, -3, ... when used)")
    add_overwrite(p)
    p.add_argument("--annotated", choices=("auto", "video", "images"), default="auto",
                   help="annotated output: video for a video source, images otherwise (auto)")
    p.add_argument("--no-annotated", action="store_true", help="skip the annotated output")
    p.add_argument("--save-crops", action="store_true",
                   help="write one PNG per detection into crops/<class>/")
    p.add_argument("--labels", action="store_true", help="class name and score beside boxes")
    p.add_argument("--batch", type=positive_int, default=1, help="frames per network call (1)")
    p.add_argument("--no-threads", action="store_true",
                   help="decode, detect and write in one thread (slower; for timing stages)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--rescorer", type=Path, default=None, help="rescore every detection with "
                   "a crop classifier trained by 'active rescorer' for these weights")
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("demo", help="detect on a synthetic clip with the bundled model",
                       description="Render a short synthetic microscopy clip (or take VIDEO), "
                       "run the bundled model, write the annotated video, counts.csv, "
                       "detections.json and summary.json into --out, and compare the counts "
                       "with the clip's ground truth; then analyse the clip (tracks, WHO grades, "
                       "concentration, report in --out/analysis) and compare with its truth.")
    p.add_argument("video", nargs="?", default=None, help="a video of your own (optional)")
    p.add_argument("--out", type=Path, default=None, help="output folder, new or empty (default "
                   "active-demo, numbered -2, -3, ... when used)")
    add_overwrite(p)
    p.add_argument("--weights", default="default", help="model (default: the bundled one)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    p.add_argument("--device", type=device, default="cpu", help="(default cpu)")
    p.add_argument("--frames", type=positive_int, default=150, help="frames of the synthetic "
                   "clip (150: 5 s, so that tracks of 1 s can be graded)")
    p.add_argument("--seed", type=non_negative_int, default=2024,
                   help="seed of the synthetic clip")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)

