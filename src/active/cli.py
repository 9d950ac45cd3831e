"""The ``active`` command line. Each subcommand parses its arguments and calls one library
function; the functions are what the tests call."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from active import __version__
from active.errors import ActiveError, UsageError
from active.utils.config import ConfigError


def _add_data_args(p: argparse.ArgumentParser) -> None:
    from active.data.dataset import FORMATS

    p.add_argument("path", type=Path, help="dataset: SVIA root, VOC/YOLO folder or COCO .json")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="auto",
                   help="annotation format (default: detect from the layout)")
    p.add_argument("--classes", type=Path, default=None,
                   help="class map JSON/YAML {names: [...], aliases: {...}} (default: "
                        "sperm, impurity with SVIA's names S, Impurity)")
    p.add_argument("--strict", action="store_true",
                   help="make repairable problems (boxes outside the image, missing frames) errors")


def _load(args: argparse.Namespace):
    from active.data.classes import DEFAULT_CLASSES, ClassMap
    from active.data.dataset import load_dataset

    classes = ClassMap.from_file(args.classes) if args.classes else DEFAULT_CLASSES
    return load_dataset(args.path, args.fmt, classes, args.strict)


def cmd_synth(args: argparse.Namespace) -> int:
    from active.data.synth import generate_dataset

    summary = generate_dataset(args.out, videos=args.videos, frames=args.frames, seed=args.seed,
                               progress=not args.quiet)
    print(summary)
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from active.data.stats import dataset_stats, format_stats, plot_stats

    records = _load(args)
    stats = dataset_stats(records)
    if args.plot:
        plot_stats(records, args.plot)
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(format_stats(stats))
        if args.plot:
            print(f"histograms: {args.plot}")
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from active.data.stats import show_records

    for path in show_records(_load(args), args.out, count=args.count, seed=args.seed):
        print(path)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from active.data.convert import write_dataset

    records = _load(args)
    target = write_dataset(records, args.out, args.to, images=not args.no_images)
    print(f"wrote {len(records)} frames as {args.to}: {target}")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from active.data.splits import kfold_split, ratio_split

    videos = sorted({r.video_id for r in _load(args)})
    if args.folds:
        plan = kfold_split(videos, k=args.folds, seed=args.seed, val=not args.no_val)
    else:
        plan = ratio_split(videos, ratios=args.ratios, seed=args.seed)
    plan.save(args.out)
    for i, fold in enumerate(plan.folds):
        print(f"fold {i}: train {fold.train}  val {fold.val}  test {fold.test}")
    print(f"saved {args.out}")
    return 0


def cmd_model_info(args: argparse.Namespace) -> int:
    from active.models.info import format_info, model_info

    branches = ("b1", "b2") if args.branches == "both" else (args.branches,)
    info = model_info(args.variant, args.scale, tuple(args.imgsz), branches, args.device,
                      runs=args.runs)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def cmd_model_anchors(args: argparse.Namespace) -> int:
    import numpy as np

    from active.models.anchors import anchor_fitness
    from active.training.trainer import fit_anchors

    records = _load(args)
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


def cmd_train(args: argparse.Namespace) -> int:
    from active.training.config import load_config
    from active.training.trainer import fit

    overrides = list(args.set)
    for flag, key in (("data", "data.path"), ("variant", "model.variant"),
                      ("scale", "model.scale"), ("out", "out"), ("device", "device"),
                      ("weights", "init_weights"), ("seed", "seed"), ("split", "data.split"),
                      ("fold", "data.fold")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    cfg = load_config(args.config, overrides)
    for i, stage in enumerate(cfg.stages if args.epochs else ()):
        stage.epochs = args.epochs[min(i, len(args.epochs) - 1)]
    summary = fit(cfg, resume=args.resume, progress=not args.quiet)
    if summary.get("rank", 0) != 0:  # under torchrun only rank 0 reports
        return 0
    by = "" if summary["best_by"] == "map50" else (
        f" (best.pt by {summary['best_by']}: {summary['best_score']:.4f})")
    print(f"done: {summary['epochs']} epochs in {summary['seconds']} s; best validation mAP50 "
          f"{summary['best_val_map50']:.4f}{by}; weights in {summary['out']}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from active.evaluation.report import evaluate_checkpoint

    report = evaluate_checkpoint(args.weights, args.path, fmt=args.fmt, split=args.split_file,
                                 part=args.part, fold=args.fold, out=args.out,
                                 score_threshold=args.conf, iou_threshold=args.iou,
                                 lenient=args.lenient, device=args.device, strict=args.strict,
                                 imgsz=tuple(args.imgsz) if args.imgsz else None, tta=args.tta,
                                 merge=not args.no_merge, rescorer=args.rescorer)
    print(report["text"])
    return 0


def cmd_rescorer(args: argparse.Namespace) -> int:
    from active.training.rescore import RescoreConfig, fit_rescorer

    cfg = RescoreConfig(crop=args.crop, context=args.context, epochs=args.epochs,
                        min_score=args.min_score, seed=args.seed)
    rescorer, summary = fit_rescorer(args.weights, args.path, args.split_file, args.fold, cfg,
                                     tta=args.tta, merge=not args.no_merge, device=args.device,
                                     log=lambda m: None if args.quiet else print(m, flush=True))
    for w, aps in summary.get("val_ap50", {}).items():
        print(f"validation AP50 at weight {w}: " + ", ".join(
            f"{n} {ap:.4f}" for n, ap in aps.items()))
    rescorer.save(args.out)
    print(f"mixing weight {rescorer.weight} ({rescorer.meta['weight_from']}); "
          f"rescorer in {args.out}")
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from active.evaluation.crossval import format_table_i, load_experiment_config, run_cv

    overrides = list(args.set) + [f"{key}={getattr(args, flag)}" for flag, key in (
        ("data", "data.path"), ("scale", "model.scale"), ("device", "device"))
        if getattr(args, flag) is not None]
    cfg = load_experiment_config(args.config, overrides, args.epochs)
    result = run_cv(cfg, args.variant, args.folds, args.out, args.seed, progress=not args.quiet,
                    only_folds=args.only_fold, tta=args.tta)
    print(format_table_i(result))
    print(f"table: {result.out / 'table.md'}; per-fold results: {result.out / 'results.json'}")
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from active.evaluation.crossval import format_table_ii, load_experiment_config, run_ablation

    overrides = list(args.set) + [f"{key}={getattr(args, flag)}" for flag, key in (
        ("data", "data.path"), ("scale", "model.scale"), ("device", "device"))
        if getattr(args, flag) is not None]
    cfg = load_experiment_config(args.config, overrides, args.epochs)
    result = run_ablation(cfg, args.variant, args.folds, args.out, args.seed,
                          progress=not args.quiet, only_folds=args.only_fold)
    print(format_table_ii(result))
    print(f"table: {result.out / 'ablation.md'}; per-fold results: {result.out / 'results.json'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from active.inference.export import export_onnx, export_stripped
    from active.inference.predictor import resolve_weights

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


def _predictor(args: argparse.Namespace):
    from active.inference.predictor import Predictor

    imgsz = None if args.imgsz is None else (args.imgsz * 2 if len(args.imgsz) == 1
                                             else args.imgsz)
    return Predictor(args.weights, backend=args.backend, device=args.device, imgsz=imgsz,
                     conf=args.conf, iou=args.iou, max_det=args.max_det,
                     threads=args.threads, tta=args.tta, merge=not args.no_merge,
                     rescorer=getattr(args, "rescorer", None))


def cmd_detect(args: argparse.Namespace) -> int:
    from active.inference.detect import DetectOptions, detect
    from active.inference.sources import FrameSource

    predictor = _predictor(args)
    out = args.out
    if out is None:
        src = FrameSource(args.source)
        src.close()
        out = Path("runs/detect") / src.stem
    opts = DetectOptions(out=out, save_annotated=not args.no_annotated,
                         video={"auto": None, "video": True, "images": False}[args.annotated],
                         save_crops=args.save_crops, labels=args.labels, batch=args.batch,
                         threads=not args.no_threads, progress=not args.quiet)
    summary = detect(predictor, args.source, opts)
    print(f"{predictor}")
    print(summary.format())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from active.demo import format_truth, run_demo

    summary, truth = run_demo(args.video, args.out, args.weights, args.backend, args.frames,
                              args.seed, args.device, progress=not args.quiet)
    print(summary.format())
    if truth is not None:
        print("\nagainst the synthetic clip's ground truth (IoU 0.5, score >= "
              f"{summary.extra['score_threshold']}):")
        print(format_truth(truth))
    print(f"\nopen {summary.outputs.get('annotated', args.out)} to see every detection")
    return 0


def _add_predict_args(p: argparse.ArgumentParser, weights_default: str = "default") -> None:
    p.add_argument("--weights", nargs="+", default=[weights_default],
                   help="checkpoint .pt, exported .onnx, or 'default' (the bundled model); "
                        "several .pt: an ensemble, their boxes fused (PyTorch)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                   help="auto: ONNX Runtime when the model has an exported .onnx twin, else "
                        "PyTorch (default auto)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, auto (default cpu)")
    p.add_argument("--imgsz", type=int, nargs="+", default=None, metavar="N",
                   help="input size: H W, or one N for N x N (default: the model's)")
    p.add_argument("--conf", type=float, default=0.25, help="score threshold (0.25)")
    p.add_argument("--iou", type=float, default=0.45, help="DIoU-NMS IoU threshold (0.45)")
    p.add_argument("--max-det", type=int, default=300, help="detections kept per frame (300)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation: 4 passes "
                   "per frame, boxes fused (about 4x slower, more accurate when crowded)")
    p.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS as in the paper "
                   "(default: each kept box is merged with the boxes it suppressed)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="active",
        description="ACTIVE: detect sperm and impurities in microscopic semen videos.",
    )
    parser.add_argument("--version", action="version", version=f"active {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="render synthetic microscopy videos with ground truth",
                       description="Render synthetic sperm microscopy videos (frames, mp4, SVIA "
                       "XML, COCO JSON, ground-truth tracks and speeds).")
    p.add_argument("--videos", type=int, default=2, help="number of videos (default 2)")
    p.add_argument("--frames", type=int, default=30, help="frames per video (default 30)")
    p.add_argument("--out", type=Path, default=Path("synth-data"), help="output folder")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    data = sub.add_parser("data", help="inspect, convert and split datasets",
                          description="Inspect, convert and split annotated datasets.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = dsub.add_parser("stats", help="counts, box sizes, objects per frame",
                        description="Frames, videos, boxes per class, box-size percentiles and "
                        "objects per frame of a dataset.")
    _add_data_args(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--plot", type=Path, default=None, help="write histograms to this PNG")
    p.set_defaults(func=cmd_data_stats)

    p = dsub.add_parser("show", help="draw the boxes of a few frames",
                        description="Draw the annotated boxes of a few frames into PNG files.")
    _add_data_args(p)
    p.add_argument("--out", type=Path, required=True, help="output folder for the PNGs")
    p.add_argument("--count", type=int, default=6, help="number of frames (default 6)")
    p.add_argument("--seed", type=int, default=0, help="which frames (default 0)")
    p.set_defaults(func=cmd_data_show)

    p = dsub.add_parser("convert", help="write a dataset in another format",
                        description="Convert a dataset to SVIA (VOC XML), YOLO txt or COCO JSON.")
    _add_data_args(p)
    p.add_argument("--to", choices=("svia", "yolo", "coco"), required=True, help="target format")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--no-images", action="store_true", help="write annotations only")
    p.set_defaults(func=cmd_data_convert)

    p = dsub.add_parser("split", help="make a train/val/test or k-fold split by video",
                        description="Split a dataset's videos (never a video in two parts) into "
                        "train/val/test by ratio or into k folds; saves a JSON split file.")
    _add_data_args(p)
    p.add_argument("--out", type=Path, required=True, help="split JSON to write")
    p.add_argument("--ratios", type=float, nargs=3, default=(6, 2, 2), metavar=("TRAIN", "VAL",
                   "TEST"), help="train/val/test ratios (default 6 2 2, the paper's)")
    p.add_argument("--folds", type=int, default=0, help="k folds instead of one ratio split")
    p.add_argument("--no-val", action="store_true", help="k folds without a validation part")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_data_split)

    model = sub.add_parser("model", help="inspect models: size, speed, anchors",
                           description="Inspect the ACTIVE model family.")
    msub = model.add_subparsers(dest="model_command", required=True, metavar="ACTION")
    p = msub.add_parser("info", help="parameters, GFLOPs, output shapes and CPU latency",
                        description="Build a variant and report its parameters, GFLOPs, output "
                        "shapes and latency at batch 1.")
    p.add_argument("variant", help="active-i ... active-viii, yolov3, yolov4")
    p.add_argument("--scale", default="n", help="paper, s, n or tiny (default n)")
    p.add_argument("--imgsz", type=int, nargs=2, default=(416, 416), metavar=("H", "W"),
                   help="input size, multiples of 32 (default 416 416)")
    p.add_argument("--branches", choices=("both", "b1", "b2"), default="both",
                   help="DBFEN branches (b1/b2 alone: the paper's ablation)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (default cpu)")
    p.add_argument("--runs", type=int, default=20, help="timed runs (0: skip timing)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_model_info)

    p = msub.add_parser("anchors", help="k-means anchors for a dataset",
                        description="Fit nine anchors (k-means, 1 - IoU distance) to a dataset's "
                        "boxes at the training input size, three per level.")
    _add_data_args(p)
    p.add_argument("--imgsz", type=int, nargs=2, default=(416, 416), metavar=("H", "W"),
                   help="training input size (default 416 416)")
    p.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    p.set_defaults(func=cmd_model_anchors)

    p = sub.add_parser("train", help="train a model (freeze training, the paper's recipe)",
                       description="Train an ACTIVE model. Settings come from --config (YAML) "
                       "and the paper's defaults; flags and --set KEY=VALUE override fields. "
                       "Under torchrun it trains with DistributedDataParallel.")
    p.add_argument("--config", type=Path, default=None, help="YAML config (see configs/)")
    p.add_argument("--data", default=None, help="dataset path (data.path)")
    p.add_argument("--variant", "--model", dest="variant", default=None,
                   help="model.variant: active-i ... active-viii, or a baseline yolov3, yolov4")
    p.add_argument("--scale", default=None, help="model.scale: paper, s, n, tiny")
    p.add_argument("--weights", default=None, help="start from this checkpoint (init_weights)")
    p.add_argument("--split", default=None, help="split JSON (data.split)")
    p.add_argument("--fold", type=int, default=None, help="fold of the split file (data.fold)")
    p.add_argument("--epochs", type=int, nargs="+", default=None,
                   help="epochs per stage (one value for every stage, or one per stage)")
    p.add_argument("--out", default=None, help="run folder (out)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--seed", type=int, default=None, help="random seed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config field, e.g. --set loss.assign=ratio (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from last.pt")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="AP50 per class of a checkpoint on a dataset",
                       description="Evaluate a checkpoint: AP50 per class (VOC all-point, one "
                       "class per box), COCO mAP50:95, precision/recall at the operating "
                       "threshold, sperm/impurity confusions, PR curves and a JSON report.")
    p.add_argument("--weights", type=Path, nargs="+", required=True,
                   help="checkpoint (.pt); several: an ensemble, their boxes fused")
    p.add_argument("--data", dest="path", type=Path, required=True, help="dataset path")
    p.add_argument("--format", dest="fmt", default="auto", help="dataset format (default auto)")
    p.add_argument("--split", dest="split_file", type=Path, default=None,
                   help="split JSON; with it only --part of --fold is evaluated")
    p.add_argument("--part", choices=("train", "val", "test"), default="test",
                   help="which part of the split (default test)")
    p.add_argument("--fold", type=int, default=0, help="fold of the split file (default 0)")
    p.add_argument("--out", type=Path, default=None, help="folder for report.json and PNGs")
    p.add_argument("--conf", type=float, default=0.25,
                   help="operating score threshold for precision/recall/confusions (0.25)")
    p.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (0.45)")
    p.add_argument("--imgsz", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size (default: the checkpoint's)")
    p.add_argument("--lenient", action="store_true", help="also report AP50 under TOD-CNN's "
                   "lenient matching (IoU>=0.4 with centres within 3 px), for comparison only")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation (4 views "
                   "fused; see docs/inference.md)")
    p.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS as in the paper "
                   "(default: each kept box is merged with the boxes it suppressed)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.add_argument("--strict", action="store_true", help="strict dataset loading")
    p.add_argument("--rescorer", type=Path, default=None, help="rescore every detection with "
                   "a crop classifier trained by 'active rescorer' (docs/training.md)")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("rescorer", help="train a crop classifier that rescores a detector",
                       description="A second look at each detection: train a small CNN on "
                       "crops of a trained detector's candidates on a split's training frames "
                       "(background or class), pick how much it counts on the validation "
                       "frames, save it; use it with 'active eval --rescorer' or "
                       "'active detect --rescorer'.")
    p.add_argument("--weights", type=Path, required=True, help="the detector checkpoint (.pt)")
    p.add_argument("--data", dest="path", type=Path, required=True, help="dataset path")
    p.add_argument("--split", dest="split_file", type=Path, required=True,
                   help="split JSON (its train part trains, its val part picks the weight)")
    p.add_argument("--fold", type=int, default=0, help="fold of the split file (default 0)")
    p.add_argument("--out", type=Path, required=True, help="rescorer file to write (.pt)")
    p.add_argument("--epochs", type=int, default=12, help="crop-net epochs (12)")
    p.add_argument("--crop", type=int, default=32, help="crop side in pixels (32)")
    p.add_argument("--context", type=float, default=2.0,
                   help="crop side / the box's longer side (2)")
    p.add_argument("--min-score", type=float, default=0.01,
                   help="detections that become training candidates (0.01)")
    p.add_argument("--tta", action="store_true", help="detect with flip TTA")
    p.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda ...")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.set_defaults(func=cmd_rescorer)

    saved = (" The split, per-fold results and table are saved in --out; rerunning the command "
             "skips finished folds and resumes interrupted ones.")
    experiments = {
        "cv": ("k-fold cross-validation by video, as the paper's Table I",
               "Train each variant on k folds by video (k=5: the paper's 6:2:2 per fold; k = "
               "number of videos: leave-one-video-out), evaluate best.pt on each fold's test "
               "videos and report AP50 per class (mean ± std), laid out as the paper's Table I."),
        "ablation": ("DBFEN branch ablation, as the paper's Table II",
                     "Train one variant with DBFEN branch 1, branch 2 and both on the same k "
                     "folds by video and report test AP50 per class (mean ± std), laid out as "
                     "the paper's Table II."),
    }
    for name, (help_, description) in experiments.items():
        ablation = name == "ablation"
        p = sub.add_parser(name, help=help_, description=description + saved)
        p.add_argument("--config", type=Path, default=None, help="YAML config (see configs/)")
        p.add_argument("--folds", type=int, default=5, help="k, from 3 to the number of videos "
                       "(default 5)")
        p.add_argument("--only-fold", type=int, nargs="+", default=None, metavar="I",
                       help="train only these folds (0-based), e.g. to spread the experiment "
                       "over machines; several processes may also share one output folder")
        if ablation:
            p.add_argument("--variant", default=None,
                           help="model.variant to ablate (default: the config's)")
        else:
            p.add_argument("--variant", nargs="+", default=None, metavar="VARIANT",
                           help="variants to compare, e.g. active-i active-iv (default: the "
                           "config's)")
            p.add_argument("--tta", action="store_true", help="also evaluate every fold with "
                           "flip test-time augmentation (an extra row per model; finished folds "
                           "are evaluated, not retrained)")
        p.add_argument("--data", default=None, help="dataset path (data.path)")
        p.add_argument("--scale", default=None, help="model.scale: paper, s, n, tiny")
        p.add_argument("--epochs", type=int, nargs="+", default=None,
                       help="epochs per stage (one value for every stage, or one per stage)")
        p.add_argument("--out", type=Path, default=Path(f"runs/{name}"),
                       help=f"experiment folder (default runs/{name})")
        p.add_argument("--seed", type=int, default=0, help="seed of the assignment of videos "
                       "to folds (default 0; the training seed is the config's: --set seed=N)")
        p.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:1 ...")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field, e.g. --set loss.assign=ratio (repeatable)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=cmd_ablation if ablation else cmd_cv)

    p = sub.add_parser("export", help="export a checkpoint to ONNX (or a stripped checkpoint)",
                       description="Export a checkpoint. onnx: the network with a dynamic batch "
                       "axis, class names, anchors, strides, input size and box coder in the "
                       "metadata (default path: beside the checkpoint, .onnx). pt: weights and "
                       "model description without training state, for shipping.")
    p.add_argument("weights", help="checkpoint .pt, or 'default'")
    p.add_argument("--format", choices=("onnx", "pt"), default="onnx", help="(default onnx)")
    p.add_argument("--out", type=Path, default=None, help="file to write")
    p.add_argument("--imgsz", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size (default: the checkpoint's)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (18)")
    p.add_argument("--eval", type=Path, default=None,
                   help="(pt) an 'active eval' report.json to keep in the checkpoint's meta")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("detect", help="find and count sperm and impurities in a video or images",
                       description="Detect in SOURCE (an image, a folder of images, a glob in "
                       "quotes, or a video) and write an annotated video (or images), "
                       "counts.csv (one row per frame), detections.json (every box) and "
                       "summary.json (count statistics per class, speed per stage).")
    p.add_argument("source", help="image, folder, 'glob/*.png' or video file")
    _add_predict_args(p)
    p.add_argument("--out", type=Path, default=None,
                   help="output folder (default runs/detect/<source name>)")
    p.add_argument("--annotated", choices=("auto", "video", "images"), default="auto",
                   help="annotated output: video for a video source, images otherwise (auto)")
    p.add_argument("--no-annotated", action="store_true", help="skip the annotated output")
    p.add_argument("--save-crops", action="store_true",
                   help="write one PNG per detection into crops/<class>/")
    p.add_argument("--labels", action="store_true", help="class name and score beside boxes")
    p.add_argument("--batch", type=int, default=1, help="frames per network call (1)")
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
                       "with the clip's ground truth.")
    p.add_argument("video", nargs="?", default=None, help="a video of your own (optional)")
    p.add_argument("--out", type=Path, default=Path("active-demo"), help="(default active-demo)")
    p.add_argument("--weights", default="default", help="model (default: the bundled one)")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    p.add_argument("--device", default="cpu", help="(default cpu)")
    p.add_argument("--frames", type=int, default=90, help="frames of the synthetic clip (90)")
    p.add_argument("--seed", type=int, default=2024, help="seed of the synthetic clip")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ActiveError, ConfigError) as exc:
        print(f"active: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("active: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
