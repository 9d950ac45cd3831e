"""Box formats and their conversions (numpy).

ACTIVE's internal format everywhere is **float pixel xyxy**: ``(x0, y0, x1, y1)`` with a 0-based
origin at the top-left corner of the top-left pixel and *exclusive* right/bottom edges, so a box
covering pixels 0..9 inclusive is ``(0, 0, 10, 10)`` and its width is ``x1 - x0``.

Other formats converted here:

- ``voc``: Pascal VOC / LabelImg integer corners, 1-based and inclusive (SVIA's quirk, too):
  ``(xmin, ymin, xmax, ymax)`` with ``xmin >= 1`` -> ``(xmin - 1, ymin - 1, xmax, ymax)``.
- ``xywh``: COCO's ``(x, y, w, h)`` in pixels, top-left corner.
- ``cxcywh``: centre and size in pixels; ``yolo`` is the same normalised by the image size.

For tensors use :func:`torchvision.ops.box_convert`; these are the numpy twins the data layer
needs without importing torch.
"""

from __future__ import annotations

import numpy as np


def _as_boxes(boxes: np.ndarray | list) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return arr


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) COCO xywh."""
    b = _as_boxes(boxes)
    return np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) COCO xywh -> (N, 4) xyxy."""
    b = _as_boxes(boxes)
    return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) centre x, centre y, width, height."""
    b = _as_boxes(boxes)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    return np.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w, h], axis=1)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) centre x, centre y, width, height -> (N, 4) xyxy."""
    b = _as_boxes(boxes)
    hw, hh = b[:, 2] / 2, b[:, 3] / 2
    return np.stack([b[:, 0] - hw, b[:, 1] - hh, b[:, 0] + hw, b[:, 1] + hh], axis=1)


def xyxy_to_yolo(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) pixel xyxy -> (N, 4) YOLO ``cx cy w h`` normalised to [0, 1] by the image size."""
    return xyxy_to_cxcywh(boxes) / np.array([width, height, width, height], dtype=np.float64)


def yolo_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) normalised YOLO ``cx cy w h`` -> (N, 4) pixel xyxy."""
    scale = np.array([width, height, width, height], dtype=np.float64)
    return cxcywh_to_xyxy(_as_boxes(boxes) * scale)


def voc_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) VOC 1-based inclusive integer corners -> (N, 4) 0-based exclusive xyxy."""
    b = _as_boxes(boxes).copy()
    b[:, :2] -= 1.0
    return b


def xyxy_to_voc(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) VOC 1-based inclusive integer corners (rounded to whole pixels)."""
    b = np.rint(_as_boxes(boxes))
    b[:, :2] += 1.0
    return b.astype(np.int64)


def box_area(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N,) areas (0 for degenerate boxes)."""
    b = _as_boxes(boxes)
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def long_side(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N,) the longer side of each box."""
    b = _as_boxes(boxes)
    return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    a, b = _as_boxes(a), _as_boxes(b)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
