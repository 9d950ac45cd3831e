"""Average precision at one IoU threshold, per class, the way the paper (and VOC) computes it.

Detections of the whole test set are ranked by score per class; each is a true positive when it
overlaps a not-yet-matched ground-truth box of its class in its image with IoU >= ``iou`` (the
best-overlapping such box), else a false positive. AP is the area under the precision envelope
with VOC's all-point interpolation. pycocotools is used beside it as a cross-check
(:mod:`active.evaluation.coco_eval`); it interpolates at 101 recall points and caps detections per
image, which is why this small evaluator exists: the paper's AP50 is the VOC one.

It sits in the data layer, beside the ground truth it scores against (as DETR keeps its COCO
evaluator in ``datasets/``), because the training loop's validation, the rescorer's training and
evaluation all use it, and training may not import :mod:`active.evaluation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from active.data.boxes import box_iou


@dataclass
class ImageResult:
    """Ground truth and detections of one image; boxes are pixel xyxy in the same frame."""

    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


@dataclass
class ClassAP:
    """AP of one class with the curve it came from (recall/precision at each ranked detection)."""

    name: str
    ap: float
    num_gt: int
    num_det: int
    recall: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision envelope, all-point interpolation (VOC 2010+)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def _is_match(gt: np.ndarray, det: np.ndarray, iou: float, lenient_px: float | None
              ) -> np.ndarray:
    """(G, D) IoU matrix with non-matching pairs set to -1.

    The lenient rule of the TOD-CNN evaluation code also accepts IoU >= 0.4 when the centres are
    within ``lenient_px`` pixels (used only to compare with numbers published that way).
    """
    m = box_iou(gt, det)
    ok = m >= iou
    if lenient_px is not None:
        cg = (gt[:, None, :2] + gt[:, None, 2:]) / 2
        cd = (det[None, :, :2] + det[None, :, 2:]) / 2
        close = np.linalg.norm(cg - cd, axis=2) <= lenient_px
        ok |= (m >= 0.4) & close
    return np.where(ok, m, -1.0)


def class_ap(results: Sequence[ImageResult], cls: int, name: str = "", iou: float = 0.5,
             lenient_px: float | None = None) -> ClassAP:
    """AP of class ``cls`` over all images (greedy matching in global score order)."""
    num_gt = int(sum((r.gt_labels == cls).sum() for r in results))
    entries = []  # (score, image index, det index)
    for i, r in enumerate(results):
        for j in np.flatnonzero(r.labels == cls):
            entries.append((float(r.scores[j]), i, int(j)))
    entries.sort(key=lambda e: -e[0])
    matches = {}
    for i, r in enumerate(results):
        g, d = r.gt_labels == cls, r.labels == cls
        if g.any() and d.any():
            matches[i] = (np.flatnonzero(d), _is_match(r.gt_boxes[g], r.boxes[d], iou, lenient_px))
    used = {i: np.zeros(m.shape[0], bool) for i, (_, m) in matches.items()}
    tp = np.zeros(len(entries))
    for k, (_, i, j) in enumerate(entries):
        if i not in matches:
            continue
        det_ids, m = matches[i]
        col = m[:, int(np.searchsorted(det_ids, j))].copy()
        col[used[i]] = -1.0
        best = int(np.argmax(col)) if len(col) else -1
        if best >= 0 and col[best] >= 0:
            used[i][best] = True
            tp[k] = 1
    ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
    recall = ctp / max(num_gt, 1)
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    ap = voc_ap(recall, precision) if num_gt else float("nan")
    return ClassAP(name, ap, num_gt, len(entries), recall, precision,
                   np.array([e[0] for e in entries]))


def evaluate_ap(results: Sequence[ImageResult], class_names: Sequence[str], iou: float = 0.5,
                lenient_px: float | None = None) -> dict[str, ClassAP]:
    """Per-class AP at IoU ``iou`` (classes without ground truth get NaN)."""
    return {n: class_ap(results, c, n, iou, lenient_px) for c, n in enumerate(class_names)}


def mean_ap(per_class: dict[str, ClassAP]) -> float:
    """Mean of the classes' APs that are defined (classes with ground truth)."""
    aps = [c.ap for c in per_class.values() if not np.isnan(c.ap)]
    return float(np.mean(aps)) if aps else float("nan")
