"""``active analyze`` in batch mode: many videos on Dask into one catalogue (docs/batch.md).

Not a subcommand of its own: :func:`active.commands.analyze.cmd_analyze` comes here when an input
is a folder, a glob pattern or a CSV manifest, or when ``--batch``, ``--workers``,
``--scheduler`` or ``--sample-by`` is given; a plain list of videos stays one sample, as always.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from active.analysis.calibration import Calibration
from active.analysis.run import AnalyzeOptions
from active.commands._args import positive_int
from active.errors import UsageError

#: Without --out, a batch writes here (numbered -2, -3, ... when used): give --out to resume.
DEFAULT_OUT = Path("runs/analyze/batch")


def wants_batch(args: argparse.Namespace) -> bool:
    from active.batch.inputs import is_batch_input

    return (args.batch or args.workers is not None or args.scheduler is not None
            or args.sample_by is not None or any(is_batch_input(v) for v in args.videos))


def cmd_batch(args: argparse.Namespace, cal: Calibration, opts: AnalyzeOptions) -> int:
    from active.batch import BatchOptions, expand, run_batch
    from active.batch.catalogue import CATALOGUE
    from active.utils.outdir import MARKER, output_folder

    if args.sample is not None:
        raise UsageError("--sample names the one sample of a list of videos; in batch mode "
                         "samples come from --sample-by or the manifest's sample_id column")
    if args.workers is not None and args.scheduler is not None:
        raise UsageError("--workers starts a local cluster, --scheduler uses an existing one: "
                         "give one of them")
    jobs = expand(args.videos, cal, args.sample_by or "video")
    bopts = BatchOptions(workers=args.workers, scheduler=args.scheduler,
                         progress=not args.quiet)
    resume = (args.out is not None and not args.overwrite and (args.out / CATALOGUE).is_file()
              and (args.out / MARKER).is_file())
    if resume:
        print(f"resuming the catalogue in {args.out}")
        report = run_batch(jobs, args.out, opts, bopts)
    else:
        with output_folder(args.out, DEFAULT_OUT, overwrite=args.overwrite, command="analyze",
                           inputs=args.videos) as out:
            report = run_batch(jobs, out, opts, bopts)
    print(report.format())
    print(f"cohort: {report.summary['html']}")
    if report.out != args.out:
        print(f"(re-run with --out {report.out} to resume or add videos)")
    return 0


def add_batch_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("batch mode (docs/batch.md): an input that is a folder, a glob "
                             "pattern or a .csv manifest, or one of these flags")
    g.add_argument("--batch", action="store_true", help="analyse the VIDEOs as a batch (each "
                   "its own sample unless --sample-by folder) into a resumable catalogue")
    g.add_argument("--sample-by", choices=("video", "folder"), default=None,
                   help="what one sample is: each video (default), or the videos of one folder "
                   "(its replicate fields, named after the folder)")
    g.add_argument("--workers", type=positive_int, default=None, metavar="N",
                   help="worker processes of the local Dask cluster (default: one per core); "
                   "--threads (default cores / N) ONNX Runtime threads each")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster (tcp://host:8786) whose workers see "
                   "the videos and have ACTIVE installed")
