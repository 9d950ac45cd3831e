"""``active calibrate``: fit a model's counting threshold to a lab's own annotated frames."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_calibrate(args: argparse.Namespace) -> int:
    from active.evaluation.counting import calibrate

    profile = calibrate(args.weights, args.data, args.format, args.um_per_px,
                        threads=args.threads, skip_bad_frames=args.skip_bad_frames)
    path = profile.save(args.out)
    m = profile.metrics
    print(f"{profile.fitted_on['frames']} annotated frames, {profile.fitted_on['sperm_boxes']} "
          f"sperm boxes; model {profile.model_file} (sperm AP50 {m['sperm_ap50']:.3f})")
    print(f"{'threshold':>10} {'found/frame':>11} {'true/frame':>10} {'bias':>8} "
          f"{'precision':>9} {'recall':>7}")
    for key in ("at_default", "at_fitted"):
        s = m[key]
        p = "-" if s["precision"] is None else f"{s['precision']:.3f}"
        r = "-" if s["recall"] is None else f"{s['recall']:.3f}"
        print(f"{s['threshold']:>10.3f} {s['found_per_frame']:>11.2f} {s['true_per_frame']:>10.2f} "
              f"{s['bias_pct']:>+7.1f}% {p:>9} {r:>7}")
    if "warning" in m:
        print(f"warning: {m['warning']}")
    print(f"wrote {path}: use it with 'active detect --profile {path}' or "
          f"'active analyze --profile {path}'")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    from active.analysis.calibration import check_um_per_px
    from active.commands._args import add_skip_bad_frames, positive_int
    from active.commands.analyze import _checked

    p = sub.add_parser(
        "calibrate", help="fit the counting threshold to your microscope's annotated frames",
        description="Run the model on a few annotated frames from your own microscope (DATA: any "
        "supported format, every sperm head boxed), find the score threshold at which it finds as "
        "many sperm as are annotated, and write a profile file that 'active detect --profile' and "
        "'active analyze --profile' use (docs/inference.md, 'Counts on your microscope').")
    p.add_argument("data", type=Path, help="annotated frames (SVIA, VOC, YOLO or COCO)")
    p.add_argument("--out", type=Path, required=True, help="profile file to write (.json; an "
                   "existing file is replaced)")
    p.add_argument("--weights", default="default", help="the model to calibrate (default: "
                   "the bundled one)")
    p.add_argument("--format", default="auto", choices=("auto", "svia", "voc", "yolo", "coco"))
    p.add_argument("--um-per-px", type=_checked(check_um_per_px, "--um-per-px"), default=None,
                   metavar="X", help="your set-up's µm/px, stored in the profile for 'analyze'")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads")
    add_skip_bad_frames(p)
    p.set_defaults(func=cmd_calibrate)
