"""``active analyze``: a sample's videos -> tracks, WHO grades, kinematics, concentration and
the report."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from active.analysis.calibration import check_depth, check_dilution, check_fps, check_um_per_px
from active.commands._args import add_overwrite, positive_int, probability
from active.commands.batch import add_batch_flags, cmd_batch, wants_batch
from active.errors import UsageError


def _checked(check: Callable[[float, str], object], flag: str) -> Callable[[str], float]:
    """An argparse type that validates with ``check`` (argparse then names the flag, exit 2)."""

    def parse(text: str) -> float:
        try:
            check(text, flag)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(f"{flag} ")) from exc
        return float(text)

    parse.__name__ = flag.lstrip("-")
    return parse


def _odd_window(text: str) -> int:
    v = positive_int(text)
    if v < 3 or v % 2 == 0:
        raise argparse.ArgumentTypeError(f"a centred average needs an odd number of points >= 3, "
                                         f"got {v}")
    return v


def cmd_analyze(args: argparse.Namespace) -> int:
    from active.analysis import AnalyzeOptions, Calibration, analyze
    from active.analysis.report_text import format_sample
    from active.commands.predict import checked_profile
    from active.utils.outdir import output_folder

    um_per_px = args.um_per_px
    conf = args.conf
    resize_um = None
    prof = checked_profile(args.profile, args.weights)
    if prof is not None:
        conf = conf if conf is not None else prof.score_threshold
        if um_per_px is None and prof.measured_scale is not None:
            um_per_px = prof.measured_scale
            print(f"µm/px {um_per_px} from the profile {args.profile}")
        elif um_per_px is None and prof.um_per_px is not None:
            resize_um = prof.um_per_px  # estimated: resizes frames, measures nothing
            print(f"frames resized from an estimated {resize_um} µm/px (profile "
                  f"{args.profile}); give --um-per-px for micrometres, grades and concentration")
    cal = Calibration(um_per_px=um_per_px, fps=args.fps,
                      chamber_depth_um=args.chamber_depth, dilution=args.dilution)
    opts = AnalyzeOptions(weights=args.weights, backend=args.backend, conf=conf,
                          threads=args.threads, annotated=not args.no_video,
                          progress=not args.quiet, window=args.vap_window,
                          profile=None if args.profile is None or args.conf is not None
                          else str(args.profile), resize_um_per_px=resize_um)
    if wants_batch(args):
        return cmd_batch(args, cal, opts)
    sample_id = args.sample or Path(args.videos[0]).stem
    with output_folder(args.out, Path("runs/analyze") / sample_id, overwrite=args.overwrite,
                       command="analyze", inputs=args.videos) as out:
        sample = analyze(args.videos, cal, out, sample_id, opts)
    print(format_sample(sample))
    print(f"\nreport: {out / 'report.html'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze", help="semen analysis of a sample's videos: motility grades, kinematics, "
        "concentration and a report",
        description="Detect sperm in every frame of each VIDEO (replicate fields of one sample), "
        "link them into tracks, remove the fluid's drift, measure WHO kinematics (VCL, VSL, VAP, "
        "LIN, STR, WOB, ALH, BCF, MAD), grade motility (WHO 6th ed.) and compute the "
        "concentration; write report.html, summary.json, tracks.csv, kinematics.csv and "
        "annotated videos into --out. Without --um-per-px distances stay in pixels and no grade "
        "or concentration is computed (docs/analysis.md). Given folders, glob patterns or a CSV "
        "manifest, analyse a whole archive on Dask into a resumable catalogue with a cohort "
        "summary (docs/batch.md).")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="videos of one sample; or, for "
                   "a batch, folders, glob patterns ('archive/**/*.avi') and .csv manifests")
    p.add_argument("--um-per-px", type=_checked(check_um_per_px, "--um-per-px"), default=None,
                   metavar="X", help="micrometres per pixel of the microscope and camera "
                   "(measure with a stage micrometer); required for µm/s, grades, concentration")
    p.add_argument("--fps", type=_checked(check_fps, "--fps"), default=None, metavar="F",
                   help="frame rate, overriding the video's own (needed when it states none)")
    p.add_argument("--chamber-depth", type=_checked(check_depth, "--chamber-depth"),
                   default=None, metavar="UM", help="counting chamber depth in µm (e.g. 20 for "
                   "Leja, 10 for Makler); required for concentration")
    p.add_argument("--dilution", type=_checked(check_dilution, "--dilution"), default=1.0,
                   metavar="D", help="dilution factor of the loaded semen (1 = neat; default 1)")
    p.add_argument("--sample", default=None, metavar="ID", help="sample id (default: the first "
                   "video's name)")
    p.add_argument("--out", type=Path, default=None, help="output folder, new or empty "
                   "(default runs/analyze/<sample>, numbered -2, -3, ... when used)")
    add_overwrite(p)
    p.add_argument("--weights", default="default",
                   help="detector: 'default' (bundled), 'fast' (bundled, 512x384: faster, "
                        "slightly less accurate; docs/model-card.md), .pt or .onnx")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto")
    p.add_argument("--conf", type=probability, default=None, help="score threshold, 0 to 1 "
                   "(default: the model's operating point, else 0.25)")
    p.add_argument("--profile", type=Path, default=None, help="a microscope profile from "
                   "'active calibrate': its counting threshold, and its µm/px when "
                   "--um-per-px is not given")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads")
    p.add_argument("--vap-window", type=_odd_window, default=5, metavar="N",
                   help="points of the moving average that makes the average path (VAP, ALH, "
                   "BCF; default 5)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated videos")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_batch_flags(p)
    p.set_defaults(func=cmd_analyze)
