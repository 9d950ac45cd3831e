"""``active synth`` and ``active data stats|show|convert|split``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_data_args(p: argparse.ArgumentParser) -> None:
    from active.data.dataset import FORMATS

    p.add_argument("path", type=Path, help="dataset: SVIA root, VOC/YOLO folder or COCO .json")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="auto",
                   help="annotation format (default: detect from the layout)")
    p.add_argument("--classes", type=Path, default=None,
                   help="class map JSON/YAML {names: [...], aliases: {...}} (default: "
                        "sperm, impurity with SVIA's names S, Impurity)")
    p.add_argument("--strict", action="store_true",
                   help="make repairable problems (boxes outside the image, missing frames) errors")


def load_records(args: argparse.Namespace):
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

    for path in show_records(load_records(args), args.out, count=args.count, seed=args.seed):
        print(path)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from active.data.convert import write_dataset

    records = load_records(args)
    target = write_dataset(records, args.out, args.to, images=not args.no_images)
    print(f"wrote {len(records)} frames as {args.to}: {target}")
    return 0


def cmd_data_split(args: argparse.Namespace) -> int:
    from active.data.splits import kfold_split, ratio_split

    videos = sorted({r.video_id for r in load_records(args)})
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
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.add_argument("--plot", type=Path, default=None, help="write histograms to this PNG")
    p.set_defaults(func=cmd_data_stats)

    p = dsub.add_parser("show", help="draw the boxes of a few frames",
                        description="Draw the annotated boxes of a few frames into PNG files.")
    add_data_args(p)
    p.add_argument("--out", type=Path, required=True, help="output folder for the PNGs")
    p.add_argument("--count", type=int, default=6, help="number of frames (default 6)")
    p.add_argument("--seed", type=int, default=0, help="which frames (default 0)")
    p.set_defaults(func=cmd_data_show)

    p = dsub.add_parser("convert", help="write a dataset in another format",
                        description="Convert a dataset to SVIA (VOC XML), YOLO txt or COCO JSON.")
    add_data_args(p)
    p.add_argument("--to", choices=("svia", "yolo", "coco"), required=True, help="target format")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--no-images", action="store_true", help="write annotations only")
    p.set_defaults(func=cmd_data_convert)

    p = dsub.add_parser("split", help="make a train/val/test or k-fold split by video",
                        description="Split a dataset's videos (never a video in two parts) into "
                        "train/val/test by ratio or into k folds; saves a JSON split file.")
    add_data_args(p)
    p.add_argument("--out", type=Path, required=True, help="split JSON to write")
    p.add_argument("--ratios", type=float, nargs=3, default=(6, 2, 2), metavar=("TRAIN", "VAL",
                   "TEST"), help="train/val/test ratios (default 6 2 2, the paper's)")
    p.add_argument("--folds", type=int, default=0, help="k folds instead of one ratio split")
    p.add_argument("--no-val", action="store_true", help="k folds without a validation part")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.set_defaults(func=cmd_data_split)
