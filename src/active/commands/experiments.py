"""``active train``, ``eval``, ``rescorer``, ``cv`` and ``ablation``: training and the paper's
experiments."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from active.commands._args import (
    add_overwrite,
    add_skip_bad_frames,
    device,
    image_side,
    int_at_least,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)
from active.commands.data import add_load_args
from active.errors import UsageError


def _check_epochs(epochs: list[int] | None) -> None:
    if epochs is not None and not any(epochs):
        raise UsageError(f"--epochs {' '.join(map(str, epochs))}: every stage would train no "
                         "epoch; give at least one stage 1 or more")


def cmd_train(args: argparse.Namespace) -> int:
    from active.training.config import load_config
    from active.training.trainer import fit

    _check_epochs(args.epochs)
    overrides = list(args.set)
    if args.skip_bad_frames:
        overrides.append("data.skip_bad_frames=true")
    for flag, key in (("data", "data.path"), ("variant", "model.variant"),
                      ("scale", "model.scale"), ("out", "out"), ("device", "device"),
                      ("weights", "init_weights"), ("seed", "seed"), ("split", "data.split"),
                      ("fold", "data.fold"), ("threads", "threads")):
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
    from active.utils.outdir import output_folder

    with (output_folder(args.out, overwrite=args.overwrite, command="eval",
                        inputs=[*args.weights, args.path]) if args.out is not None
          else contextlib.nullcontext(None)) as out:
        report = evaluate_checkpoint(args.weights, args.path, fmt=args.fmt,
                                     split=args.split_file, part=args.part, fold=args.fold,
                                     out=out, score_threshold=args.conf, iou_threshold=args.iou,
                                     lenient=args.lenient, device=args.device,
                                     strict=args.strict, skip_bad_frames=args.skip_bad_frames,
                                     imgsz=tuple(args.imgsz) if args.imgsz else None,
                                     tta=args.tta, merge=not args.no_merge,
                                     rescorer=args.rescorer)
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


def _experiment_config(args: argparse.Namespace):
    """The config of ``active cv`` / ``active ablation``: --config, --set and the flag overrides."""
    from active.experiments.crossval import load_experiment_config

    _check_epochs(args.epochs)
    overrides = list(args.set) + [f"{key}={getattr(args, flag)}" for flag, key in (
        ("data", "data.path"), ("scale", "model.scale"), ("device", "device"),
        ("threads", "threads"))
        if getattr(args, flag) is not None]
    return load_experiment_config(args.config, overrides, args.epochs)


def _only_folds(args: argparse.Namespace) -> list[int] | None:
    """The folds this process may train: --only-fold's, none with --no-train, else all."""
    return [] if args.no_train else args.only_fold


def cmd_cv(args: argparse.Namespace) -> int:
    from active.experiments.crossval import format_table_i, run_cv

    result = run_cv(_experiment_config(args), args.variant, args.folds, args.out, args.seed,
                    progress=not args.quiet, only_folds=_only_folds(args), tta=args.tta,
                    seeds=args.seeds)
    print(format_table_i(result))
    print(f"table: {result.out / 'table.md'}; per-fold results: {result.out / 'results.json'}")
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from active.experiments.crossval import format_table_ii, run_ablation

    result = run_ablation(_experiment_config(args), args.variant, args.folds, args.out,
                          args.seed, progress=not args.quiet, only_folds=_only_folds(args))
    print(format_table_ii(result))
    print(f"table: {result.out / 'ablation.md'}; per-fold results: {result.out / 'results.json'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``eval``, ``rescorer``, ``cv`` and ``ablation``."""
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
    p.add_argument("--fold", type=non_negative_int, default=None,
                   help="fold of the split file (data.fold)")
    p.add_argument("--epochs", type=non_negative_int, nargs="+", default=None,
                   help="epochs per stage (one value for every stage, or one per stage)")
    p.add_argument("--out", default=None, help="run folder (out)")
    p.add_argument("--device", type=device, default=None, help="auto, cpu, cuda, cuda:1 ...")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads (threads; default: every core)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed")
    add_skip_bad_frames(p)
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
    p.add_argument("--fold", type=non_negative_int, default=0,
                   help="fold of the split file (default 0)")
    p.add_argument("--out", type=Path, default=None,
                   help="folder for report.json and PNGs, new or empty")
    add_overwrite(p)
    p.add_argument("--conf", type=probability, default=0.25, help="operating score threshold "
                   "for precision/recall/confusions, 0 to 1 (0.25)")
    p.add_argument("--iou", type=probability, default=0.45,
                   help="NMS IoU threshold, 0 to 1 (0.45)")
    p.add_argument("--imgsz", type=image_side, nargs=2, default=None, metavar=("H", "W"),
                   help="input size (default: the checkpoint's)")
    p.add_argument("--lenient", action="store_true", help="also report AP50 under TOD-CNN's "
                   "lenient matching (IoU>=0.4 with centres within 3 px), for comparison only")
    p.add_argument("--tta", action="store_true", help="flip test-time augmentation (4 views "
                   "fused; see docs/inference.md)")
    p.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS as in the paper "
                   "(default: each kept box is merged with the boxes it suppressed)")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda ...")
    add_load_args(p)
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
    p.add_argument("--fold", type=non_negative_int, default=0,
                   help="fold of the split file (default 0)")
    p.add_argument("--out", type=Path, required=True,
                   help="rescorer file to write (.pt; an existing file is replaced)")
    p.add_argument("--epochs", type=positive_int, default=12, help="crop-net epochs (12)")
    p.add_argument("--crop", type=positive_int, default=32, help="crop side in pixels (32)")
    p.add_argument("--context", type=positive_float, default=2.0,
                   help="crop side / the box's longer side (2)")
    p.add_argument("--min-score", type=probability, default=0.01,
                   help="detections that become training candidates, 0 to 1 (0.01)")
    p.add_argument("--tta", action="store_true", help="detect with flip TTA")
    p.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS")
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda ...")
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
        p.add_argument("--folds", type=int_at_least(3, "a fold each to test and validate on, "
                                                     "and one to train on"),
                       default=5, help="k, from 3 to the number of videos (default 5)")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--only-fold", type=non_negative_int, nargs="+", default=None,
                           metavar="I",
                           help="train only these folds (0-based), e.g. to spread the "
                           "experiment over machines; several processes may also share one "
                           "output folder")
        which.add_argument("--no-train", action="store_true",
                           help="train nothing: tabulate the results already in --out (e.g. a "
                           "kept results.json without its weights; finished folds are "
                           "evaluated again only where their weights are here and the "
                           "evaluation settings changed)")
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
            p.add_argument("--seeds", type=non_negative_int, nargs="+", default=None,
                           metavar="SEED",
                           help="train every model once per training seed and add a row of "
                           "each fold's runs fused into one ensemble (default: the config's "
                           "seed only; its runs keep the plain folder name)")
        p.add_argument("--data", default=None, help="dataset path (data.path)")
        p.add_argument("--scale", default=None, help="model.scale: paper, s, n, tiny")
        p.add_argument("--epochs", type=non_negative_int, nargs="+", default=None,
                       help="epochs per stage (one value for every stage, or one per stage)")
        p.add_argument("--out", type=Path, default=Path(f"runs/{name}"),
                       help=f"experiment folder (default runs/{name}); a rerun resumes it")
        p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the assignment "
                       "of videos to folds (default 0; the training seed is the config's: "
                       "--set seed=N)")
        p.add_argument("--device", type=device, default=None,
                       help="auto, cpu, cuda, cuda:1 ...")
        p.add_argument("--threads", type=positive_int, default=None,
                       help="CPU threads of this process "
                       "(threads; default: every core; 1 per worker when workers share a CPU)")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any config field, e.g. --set loss.assign=ratio (repeatable)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=cmd_ablation if ablation else cmd_cv)
