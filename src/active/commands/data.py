"""``active synth`` and ``active data stats|show|convert|split``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from active.commands._args import (
    add_overwrite,
    add_skip_bad_frames,
    folds,
    non_negative_float,
    non_negative_int,
    positive_int,
)


def add_data_args(p: argparse.ArgumentParser) -> None:
    from active.data.dataset import FORMATS

    p.add_argument("path", type=Path, help="dataset: SVIA root, VOC/YOLO folder or COCO .json")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="auto",
                   help="annotation format (default: detect from the layout)")
    p.add_argument("--classes", type=Path, default=None,
                   help="class map JSON/YAML {names: [...], aliases: {...}} (default: "
                        "sperm, impurity with SVIA's names S, Impurity)")
    add_load_args(p)


def add_load_args(p: argparse.ArgumentParser) -> None:
    """--strict or --skip-bad-frames: how a load treats bad annotations (docs/errors.md)."""
    how = p.add_mutually_exclusive_group()
    how.add_argument("--strict", action="store_true",
                     help="make repairable problems (boxes partly outside the image, missing "
                     "frames) errors too")
    add_skip_bad_frames(how)


def load_records(args: argparse.Namespace):
    from active.data.classes import DEFAULT_CLASSES, ClassMap
    from active.data.dataset import load_dataset

    classes = ClassMap.from_file(args.classes) if args.classes else DEFAULT_CLASSES
    return load_dataset(args.path, args.fmt, classes, args.strict, args.skip_bad_frames)


def dataset_folder(path: Path) -> Path:
    """The folder a dataset's files live in (a COCO .json's own folder)."""
    return path.parent if path.is_file() else path


def cmd_synth(args: argparse.Namespace) -> int:
    from active.data.synth import generate_dataset
    from active.utils.outdir import output_folder

    with output_folder(args.out, "synth-data", overwrite=args.overwrite, command="synth") as out:
        summary = generate_dataset(out, videos=args.videos, frames=args.frames, seed=args.seed,
                                   progress=not args.quiet)
    print(summary)
    return 0


def cmd_data_stats(args: argparse.Namespace) -> int:
    from active.data.stats import dataset_stats, format_stats, plot_stats

    records = load_records(args)
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
    from active.utils.outdir import output_folder

    records = load_records(args)
    with output_folder(args.out, overwrite=args.overwrite, command="data show",
                       not_inside=[dataset_folder(args.path)]) as out:
        for path in show_records(records, out, count=args.count, seed=args.seed):
            print(path)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from active.data.convert import write_dataset
    from active.utils.outdir import output_folder

    records = load_records(args)
    with output_folder(args.out, overwrite=args.overwrite, command="data convert",
                       not_inside=[dataset_folder(args.path)]) as out:
        target = write_dataset(records, out, args.to, images=not args.no_images)
    print(f"wrote {len(records)} frames as {args.to}: {target}")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from active.data.splits import kfold_split, ratio_split
    from active.errors import UsageError

    videos = sorted({r.video_id for r in load_records(args)})
    if args.folds > len(videos):
        raise UsageError(f"--folds {args.folds}: {args.path} holds {len(videos)} video(s), and "
                         "k folds by video need k <= the number of videos")
    if args.folds == 2 and not args.no_val:
        raise UsageError("--folds 2: a validation part needs k >= 3 (or add --no-val)")
    if not args.folds and sum(args.ratios) <= 0:
        raise UsageError(f"--ratios {' '.join(f'{r:g}' for r in args.ratios)}: at least one "
                         "part needs a ratio above 0")
    if args.folds:
        plan = kfold_split(videos, k=args.folds, seed=args.seed, val=not args.no_val)
    else:
        plan = ratio_split(videos, ratios=args.ratios, seed=args.seed)
    plan.save(args.out)
    for i, fold in enumerate(plan.folds):
        print(f"fold {i}: train {fold.train}  val {fold.val}  test {fold.test}")
    print(f"saved {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``synth`` and ``data`` to the top-level subcommands."""
    p = sub.add_parser("synth", help="render synthetic microscopy videos with ground truth",
                       description="Render synthetic sperm microscopy videos (frames, mp4, SVIA "
                       "XML, COCO JSON, ground-truth tracks and speeds).")
    p.add_argument("--videos", type=positive_int, default=2,
                   help="number of videos (default 2)")
    p.add_argument("--frames", type=positive_int, default=30,
                   help="frames per video (default 30)")
    p.add_argument("--out", type=Path, default=None, help="output folder, new or empty "
                   "(default synth-data, numbered -2, -3, ... when used)")
    add_overwrite(p)
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_synth)

    data = sub.add_parser("data", help="inspect, convert and split datasets",
                          description="Inspect, convert and split annotated datasets.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = dsub.add_parser("stats", help="counts, box sizes, objects per frame",
                        description="Frames, videos, boxes per class, box-size percentiles and "
                        "objects per frame of a dataset.")
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--plot", type=Path, default=None, help="write histograms to this PNG")
    p.set_defaults(func=cmd_data_stats)

    p = dsub.add_parser("show", help="draw the boxes of a few frames",
                        description="Draw the annotated boxes of a few frames into PNG files.")
    add_data_args(p)
    p.add_argument("--out", type=Path, required=True,
                   help="output folder for the PNGs, new or empty")
    add_overwrite(p)
    p.add_argument("--count", type=positive_int, default=6, help="number of frames (default 6)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="which frames (default 0)")
    p.set_defaults(func=cmd_data_show)

    p = dsub.add_parser("convert", help="write a dataset in another format",
                        description="Convert a dataset to SVIA (VOC XML), YOLO txt or COCO JSON.")
    add_data_args(p)
    p.add_argument("--to", choices=("svia", "yolo", "coco"), required=True, help="target format")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder, new or empty, outside the dataset")
    add_overwrite(p)
    p.add_argument("--no-images", action="store_true", help="write annotations only")
    p.set_defaults(func=cmd_data_convert)

    p = dsub.add_parser("split", help="make a train/val/test or k-fold split by video",
                        description="Split a dataset's videos (never a video in two parts) into "
                        "train/val/test by ratio or into k folds; saves a JSON split file.")
    add_data_args(p)
    p.add_argument("--out", type=Path, required=True,
                   help="split JSON to write (an existing file is replaced)")
    p.add_argument("--ratios", type=non_negative_float, nargs=3, default=(6, 2, 2),
                   metavar=("TRAIN", "VAL", "TEST"),
                   help="train/val/test ratios (default 6 2 2, the paper's)")
    p.add_argument("--folds", type=folds, default=0,
                   help="k folds (2 to the number of videos) instead of one ratio split")
    p.add_argument("--no-val", action="store_true", help="k folds without a validation part")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_data_split)
