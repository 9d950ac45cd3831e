"""Counting accuracy and the operating threshold that makes a model's count unbiased.

A detector's AP says how well it ranks boxes; a lab reads counts. At a fixed score threshold the
count per frame is biased one way or the other, by an amount that depends on the microscope
(issue 30: +67 % at 0.25 on one SVIA video). The unbiased threshold on a set of annotated frames
is exact: the score of the N-th best detection of the class, N being the number of annotated
boxes of that class, so that as many boxes are found as there are.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from active.data.ap import ImageResult, evaluate_ap
from active.evaluation.report import operating_point

#: Bounds of a fitted threshold: below 0.05 the count is made of noise, above 0.95 of a few
#: certain boxes; either means the model does not fit the set-up (the fit says so).
THRESHOLD_RANGE = (0.05, 0.95)


def count_threshold(results: Sequence[ImageResult], cls: int) -> float:
    """The score threshold at which the detections of class ``cls`` number as many as the
    annotated boxes over ``results`` (detections made at a low threshold, e.g. 0.001)."""
    scores = np.sort(np.concatenate([r.scores[r.labels == cls] for r in results]))[::-1]
    n_true = int(sum((r.gt_labels == cls).sum() for r in results))
    if n_true == 0:
        raise ValueError("no annotated box of this class to count")
    if len(scores) < n_true:  # even the lowest-scored boxes are too few: take them all
        return float(scores[-1]) if len(scores) else 0.0
    # Halfway between the N-th and the (N+1)-th score, so that exactly N pass.
    nxt = scores[n_true] if len(scores) > n_true else 0.0
    return float((scores[n_true - 1] + nxt) / 2)


def count_bias(results: Sequence[ImageResult], cls: int, threshold: float) -> dict[str, float]:
    """Mean count per frame found vs annotated at ``threshold``, and the relative bias."""
    found = np.array([(r.scores[r.labels == cls] >= threshold).sum() for r in results], float)
    true = np.array([(r.gt_labels == cls).sum() for r in results], float)
    bias = (found.sum() - true.sum()) / true.sum() if true.sum() else 0.0
    return {"found_per_frame": round(float(found.mean()), 3),
            "true_per_frame": round(float(true.mean()), 3),
            "bias_pct": round(100 * float(bias), 2),
            "frame_mae": round(float(np.abs(found - true).mean()), 3)}


def calibrate(weights: str | Path, data: str | Path, fmt: str = "auto",
              um_per_px: float | None = None, classes: Any = None, threads: int | None = None,
              skip_bad_frames: bool = False) -> Any:
    """Fit the sperm-counting threshold of ``weights`` on the annotated frames in ``data`` (any
    supported format); returns a :class:`~active.inference.profile.Profile` with the metrics
    before and after (count bias, precision, recall, AP50). Without ``um_per_px`` the scale is
    estimated from the annotated heads' size (:func:`estimate_scale`); frames are resized to the
    model's scale before the fit, as ``detect --profile`` will. ``skip_bad_frames``: frames with
    an unusable box are left out whole (see :func:`~active.data.dataset.load_dataset`)."""
    from active.data.classes import DEFAULT_CLASSES
    from active.data.dataset import load_dataset
    from active.errors import DataError
    from active.inference.predictor import Predictor
    from active.inference.profile import Profile, now
    from active.utils.io import file_sha256

    records = load_dataset(data, fmt, classes or DEFAULT_CLASSES,
                           skip_bad_frames=skip_bad_frames)
    predictor = Predictor(weights, conf=0.001, threads=threads)
    if "sperm" not in predictor.names:
        raise DataError(predictor.weights, "the model has no 'sperm' class to count")
    sperm = predictor.names.index("sperm")
    n_boxes = sum(int((r.labels == sperm).sum()) for r in records)
    if not records or n_boxes == 0:
        raise DataError(data, "no annotated sperm box: calibration needs frames where every "
                              "sperm head is boxed (the count is fitted to them)")
    scale_from = "given"
    if um_per_px is None:
        um_per_px = estimate_scale(records, sperm, predictor.model_um_per_px,
                                   predictor.model_head_box_px)
        scale_from = "estimated from head size" if um_per_px is not None else "unknown"
        from active.data.scale import UM_PER_PX_RANGE

        if um_per_px is not None and not UM_PER_PX_RANGE[0] <= um_per_px <= UM_PER_PX_RANGE[1]:
            raise DataError(data, f"the annotated heads give {um_per_px} µm/px, outside "
                                  f"{UM_PER_PX_RANGE}: check the boxes, or give --um-per-px")
    if um_per_px is not None and predictor.model_um_per_px is not None:
        predictor.set_scale(um_per_px)  # fit the threshold on frames as detect will see them
    results = []
    for r in records:
        d = predictor(r.image)
        results.append(ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls))
    t = count_threshold(results, sperm)
    lo, hi = THRESHOLD_RANGE
    fitted = min(max(t, lo), hi)
    default = 0.25
    metrics = {"fitted_threshold_raw": round(t, 4), "default_threshold": default,
               "um_per_px_from": scale_from,
               "at_default": count_summary(results, predictor.names, sperm, default),
               "at_fitted": count_summary(results, predictor.names, sperm, fitted),
               "sperm_ap50": round(evaluate_ap(results, predictor.names)["sperm"].ap, 4)}
    if fitted != t:
        metrics["warning"] = (f"the unbiased threshold {t:.3f} lies outside {lo}-{hi}: the "
                              "model does not fit these frames; fine-tune it on them")
    model = Path(predictor.members[0])
    return Profile(model_file=model.name, model_sha256=file_sha256(model),
                   score_threshold=round(fitted, 4), um_per_px=um_per_px,
                   fitted_on={"data": str(data), "frames": len(records), "sperm_boxes": n_boxes,
                              "videos": sorted({r.video_id for r in records})},
                   metrics=metrics, created=now(), um_per_px_from=scale_from)


def estimate_scale(records: Sequence[Any], sperm: int, model_um_per_px: float | None,
                   model_head_px: float | None) -> float | None:
    """µm/px of annotated frames from their head size: sperm heads are the same in every
    microscope, so the ratio of the model's median head box to these frames' gives the ratio of
    the scales. None when the model records no scale."""
    if model_um_per_px is None or model_head_px is None:
        return None
    boxes = np.concatenate([r.boxes[r.labels == sperm] for r in records])
    head = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    return round(model_um_per_px * model_head_px / head, 4)


def count_summary(results: Sequence[ImageResult], names: Sequence[str], cls: int, t: float
                  ) -> dict[str, Any]:
    """Count bias, precision and recall of class ``cls`` at score threshold ``t``."""
    op = operating_point(results, names, t)["per_class"][names[cls]]
    r = lambda v: None if v != v else round(v, 4)  # noqa: E731  (NaN -> None, never in JSON)
    return {"threshold": round(t, 4), **count_bias(results, cls, t),
            "precision": r(op["precision"]), "recall": r(op["recall"])}
