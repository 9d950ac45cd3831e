"""The post-processing of :mod:`active.models.postprocess` in numpy, for the ONNX Runtime path
that must not import PyTorch: decode the priors that can pass the score threshold, one class per
box, class-aware DIoU-NMS (or IoU-NMS) and weighted merging. Same contract and results as the
torch functions (tested equal on the bundled model's outputs); torchvision's NMS is not used here
because importing it costs the 3 s and 800 MB this path exists to avoid.

Boxes are float pixel xyxy in the network input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic sigmoid ``1 / (1 + exp(-x))`` in the input's precision, the form PyTorch
    computes (so that near-tied scores order alike on both paths; exp's overflow to inf for very
    negative x gives the right 0). Written here rather than taken from ``scipy.special``:
    importing SciPy costs this torch-free path ~25 MB of resident memory and ~40 ms of start-up,
    for one line."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


# Candidates up to which the full DIoU matrix is built (above: one row per kept box).
_MATRIX_MAX = 1024


def decode_candidates(raw_outputs: Sequence[np.ndarray], anchors: np.ndarray,
                      strides: Sequence[int], coder: Any, score_threshold: float
                      ) -> list[np.ndarray]:
    """Per image, the ``(K, 5 + nc)`` decoded rows (xyxy, objectness, class probabilities) of the
    priors whose objectness logit can pass ``score_threshold`` (exact, as the torch version)."""
    bound = (math.log(score_threshold / (1.0 - score_threshold)) - 1e-3
             if 0 < score_threshold < 1 else -np.inf)
    batch = raw_outputs[0].shape[0]
    per_image: list[list[np.ndarray]] = [[] for _ in range(batch)]
    s = 2.0 if coder.mode == "bounded" else float(coder.scale_xy)
    for level, (raw, stride) in enumerate(zip(raw_outputs, strides, strict=True)):
        raw = np.asarray(raw, np.float32)
        mask = raw[..., 4] > bound
        idx = np.argwhere(mask)  # b, anchor, y, x in row-major order (as torch.nonzero)
        rows = raw[mask]
        grid = idx[:, [3, 2]].astype(np.float32)
        anchor_wh = np.asarray(anchors[level], np.float32)[idx[:, 1]]
        xy = (expit(rows[:, :2]) * s - (s - 1.0) / 2.0 + grid) * stride
        if coder.mode == "bounded":
            wh = (expit(rows[:, 2:4]) * 2.0) ** 2 * anchor_wh
        else:
            wh = np.exp(np.minimum(rows[:, 2:4], coder.max_log_wh)) * anchor_wh
        decoded = np.concatenate([xy - wh / 2, xy + wh / 2, expit(rows[:, 4:])], axis=1)
        for b in range(batch):
            per_image[b].append(decoded[idx[:, 0] == b])
    return [np.concatenate(parts).astype(np.float32) for parts in per_image]


def candidates(pred: np.ndarray, cfg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes, scores and classes of one image's decoded rows above ``cfg.score_threshold``
    (one class per row, or every class above it with ``multi_label``), at most
    ``cfg.pre_nms_topk``."""
    obj, cls_prob = pred[:, 4], pred[:, 5:]
    if cfg.multi_label:
        rows, classes = np.nonzero(obj[:, None] * cls_prob > cfg.score_threshold)
        scores = obj[rows] * cls_prob[rows, classes]
    else:
        classes = cls_prob.argmax(1)
        scores = obj * cls_prob[np.arange(len(pred)), classes]
        rows = np.flatnonzero(scores > cfg.score_threshold)
        scores, classes = scores[rows], classes[rows]
    if len(scores) > cfg.pre_nms_topk:
        top = np.argsort(-scores, kind="stable")[: cfg.pre_nms_topk]
        rows, scores, classes = rows[top], scores[top], classes[top]
    return pred[rows, :4], scores, classes.astype(np.int64)


def _corners(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """x0, y0, x1, y1 of ``a`` as columns (N, 1) and of ``b`` as rows (1, M): every pairwise
    quantity is then plain broadcasting, with no reduction over a 2-long axis (slow in numpy)."""
    return (*(a[:, k:k + 1] for k in range(4)), *(b[None, :, k] for k in range(4)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    ax0, ay0, ax1, ay1, bx0, by0, bx1, by1 = _corners(a, b)
    inter = (np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
             * np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None))
    return inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter)


def distance_box_iou(a: np.ndarray, b: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """(len(a), len(b)) DIoU: IoU minus the squared centre distance over the squared diagonal of
    the enclosing box (torchvision's definition)."""
    ax0, ay0, ax1, ay1, bx0, by0, bx1, by1 = _corners(a, b)
    diag = ((np.maximum(ax1, bx1) - np.minimum(ax0, bx0)) ** 2
            + (np.maximum(ay1, by1) - np.minimum(ay0, by0)) ** 2 + eps)
    dist = ((ax0 + ax1 - bx0 - bx1) ** 2 + (ay0 + ay1 - by0 - by1) ** 2) / 4
    return box_iou(a, b) - dist / diag


def greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, diou: bool = True,
               max_keep: int | None = None) -> np.ndarray:
    """Exact greedy NMS (a Python loop over *kept* boxes only; each kept box suppresses the rest
    in one vector operation): indices kept, by descending score."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    overlap = distance_box_iou if diou else box_iou
    order = np.argsort(-scores, kind="stable")
    b = boxes[order].astype(np.float64)
    num = len(b)
    with np.errstate(invalid="ignore", divide="ignore"):
        matrix = ~(overlap(b, b) > iou_threshold) if num <= _MATRIX_MAX else None
        alive = np.ones(num, bool)
        kept = []
        i = 0
        while True:
            kept.append(i)
            if i + 1 >= num or (max_keep is not None and len(kept) >= max_keep):
                break
            survives = (matrix[i, i + 1:] if matrix is not None
                        else ~(overlap(b[i:i + 1], b[i + 1:])[0] > iou_threshold))
            alive[: i + 1] = False
            alive[i + 1:] &= survives
            remaining = np.flatnonzero(alive)
            if len(remaining) == 0:
                break
            i = int(remaining[0])
    return order[np.asarray(kept, np.int64)]


def suppress(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, cfg: Any
             ) -> np.ndarray:
    """Indices kept by the configured NMS (class-aware unless ``cfg.agnostic``), at most
    ``cfg.max_det``."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    groups = np.zeros_like(classes) if cfg.agnostic else classes
    offsets = groups.astype(np.float64) * (boxes.max() - boxes.min() + 1)
    shifted = boxes - boxes.min() + offsets[:, None]
    keep = greedy_nms(shifted, scores, cfg.iou_threshold, cfg.nms == "diou", cfg.max_det)
    return keep[: cfg.max_det]


def merge_suppressed(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                     keep: np.ndarray, cfg: Any) -> np.ndarray:
    """Each survivor's box becomes the score-weighted mean of the candidates it suppressed
    (those it is the first survivor to overlap beyond the threshold, same class unless
    ``cfg.agnostic``), itself included."""
    if len(keep) == 0:
        return boxes[keep]
    kept = boxes[keep].astype(np.float64)
    b64 = boxes.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = (distance_box_iou if cfg.nms == "diou" else box_iou)(kept, b64)
    hit = overlap > cfg.iou_threshold
    hit[np.arange(len(keep)), keep] = True
    if not cfg.agnostic:
        hit &= classes[keep][:, None] == classes[None]
    owned = np.flatnonzero(hit.any(0))
    weights = np.zeros(hit.shape)
    weights[hit.argmax(0)[owned], owned] = scores[owned]
    merged = (weights @ b64) / weights.sum(1, keepdims=True)
    merged = np.minimum(np.maximum(merged, b64.min(0)), b64.max(0))
    return merged.astype(np.float32)


def postprocess(raw_outputs: Sequence[np.ndarray], anchors: np.ndarray, strides: Sequence[int],
                coder: Any, cfg: Any) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Raw head outputs (one ``(B, na, H, W, 5 + nc)`` array per level) -> per image
    ``(boxes (K, 4) xyxy, scores (K,), classes (K,))``, best first."""
    out = []
    for pred in decode_candidates(raw_outputs, anchors, strides, coder, cfg.score_threshold):
        boxes, scores, classes = candidates(pred, cfg)
        keep = suppress(boxes, scores, classes, cfg)
        kept_boxes = (merge_suppressed(boxes, scores, classes, keep, cfg) if cfg.merge
                      else boxes[keep])
        out.append((kept_boxes.astype(np.float32), scores[keep].astype(np.float32),
                    classes[keep].astype(np.int64)))
    return out
