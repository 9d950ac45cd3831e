"""Anchor boxes from the training boxes: k-means with the 1 - IoU distance (YOLOv2/v3).

Boxes are compared by shape only (both centred at the origin), so the IoU of ``(w1, h1)`` and
``(w2, h2)`` is ``min(w1, w2) * min(h1, h2) / (w1 h1 + w2 h2 - intersection)``. All sizes are in
pixels of the training input (e.g. 416x416 after letterboxing), see :func:`letterbox_wh`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray


def wh_iou(wh: NDArray[np.float64], anchors: NDArray[np.float64]) -> NDArray[np.float64]:
    """Shape IoU of boxes ``(N, 2)`` and anchors ``(K, 2)``, both (w, h) -> ``(N, K)``."""
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(
        wh[:, None, 1], anchors[None, :, 1]
    )
    union = (wh[:, 0] * wh[:, 1])[:, None] + (anchors[:, 0] * anchors[:, 1])[None, :] - inter
    return inter / union


def letterbox_wh(
    wh: ArrayLike, image_hw: ArrayLike, imgsz: tuple[int, int] = (416, 416)
) -> NDArray[np.float64]:
    """Box sizes ``(N, 2)`` (w, h) in original pixels -> pixels of the letterboxed ``imgsz`` input.

    ``image_hw`` is ``(N, 2)`` (height, width) of each box's image, or one ``(2,)`` for all; the
    scale is ``min(H_in / h, W_in / w)`` as in an aspect-preserving resize.
    """
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    hw = np.broadcast_to(np.asarray(image_hw, dtype=np.float64).reshape(-1, 2), wh.shape)
    ratio = np.minimum(imgsz[0] / hw[:, 0], imgsz[1] / hw[:, 1])
    return wh * ratio[:, None]


@dataclass(frozen=True)
class AnchorFit:
    """Result of :func:`kmeans_anchors`.

    ``anchors``: ``(K, 2)`` (w, h) in input pixels, ascending area (split 3 per level, finest
    first); ``mean_iou``: mean over boxes of the best anchor IoU; ``recall``: fraction of boxes
    whose best anchor IoU exceeds ``threshold``.
    """

    anchors: NDArray[np.float64]
    mean_iou: float
    recall: float
    threshold: float

    def as_config(self, decimals: int = 1) -> tuple[tuple[float, float], ...]:
        """The anchors as ``ModelConfig.anchors`` takes them."""
        return tuple(
            (round(float(w), decimals), round(float(h), decimals)) for w, h in self.anchors
        )


def anchor_fitness(
    wh: ArrayLike, anchors: ArrayLike, threshold: float = 0.25
) -> tuple[float, float]:
    """(mean best IoU, recall at best IoU > ``threshold``) of boxes ``(N, 2)``, anchors ``(K, 2)``.

    Both in (w, h).
    """
    wh = _clean(wh)
    best = wh_iou(wh, np.asarray(anchors, dtype=np.float64).reshape(-1, 2)).max(axis=1)
    return float(best.mean()), float((best > threshold).mean())


def _clean(wh: ArrayLike) -> NDArray[np.float64]:
    wh = np.asarray(wh, dtype=np.float64).reshape(-1, 2)
    wh = wh[(wh > 0).all(axis=1) & np.isfinite(wh).all(axis=1)]
    if len(wh) == 0:
        raise ValueError("no boxes with positive, finite width and height")
    return wh


def _kmeans_once(
    wh: NDArray[np.float64], k: int, rng: np.random.Generator, iters: int
) -> NDArray[np.float64]:
    # k-means++ seeding with the 1 - IoU distance
    centers = [wh[rng.integers(len(wh))]]
    for _ in range(1, k):
        d = 1.0 - wh_iou(wh, np.array(centers)).max(axis=1)
        p = d**2 / (d**2).sum() if d.sum() > 0 else None
        centers.append(wh[rng.choice(len(wh), p=p)])
    centers_arr = np.array(centers)
    assign = np.full(len(wh), -1)
    for _ in range(iters):
        iou = wh_iou(wh, centers_arr)
        new_assign = iou.argmax(axis=1)
        if np.array_equal(new_assign, assign):
            break
        assign = new_assign
        for j in range(k):
            members = wh[assign == j]
            if len(members):
                centers_arr[j] = np.median(members, axis=0)
            else:  # an empty cluster takes the box worst served by the others
                centers_arr[j] = wh[iou.max(axis=1).argmin()]
    return centers_arr


def kmeans_anchors(
    wh: ArrayLike,
    num_anchors: int = 9,
    seed: int = 0,
    restarts: int = 5,
    iters: int = 300,
    threshold: float = 0.25,
) -> AnchorFit:
    """Fit ``num_anchors`` anchors to box sizes ``wh`` ``(N, 2)`` (w, h, input pixels).

    k-means with distance 1 - IoU and cluster medians, k-means++ seeding, ``restarts`` runs from
    ``np.random.default_rng(seed)``; the run with the highest mean best IoU wins. Deterministic for
    a given ``seed``. Non-positive or non-finite sizes are dropped. Returns anchors sorted by area.
    """
    wh = _clean(wh)
    if len(np.unique(wh, axis=0)) < num_anchors:
        raise ValueError(f"need at least {num_anchors} distinct box sizes, got {len(wh)} boxes")
    rng = np.random.default_rng(seed)
    best: tuple[float, NDArray[np.float64]] | None = None
    for _ in range(max(1, restarts)):
        centers = _kmeans_once(wh, num_anchors, rng, iters)
        score = float(wh_iou(wh, centers).max(axis=1).mean())
        if best is None or score > best[0]:
            best = (score, centers)
    assert best is not None
    anchors = best[1][np.argsort(best[1].prod(axis=1), kind="stable")]
    mean_iou, recall = anchor_fitness(wh, anchors, threshold)
    return AnchorFit(anchors=anchors, mean_iou=mean_iou, recall=recall, threshold=threshold)
