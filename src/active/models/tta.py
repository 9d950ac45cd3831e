"""Flip test-time augmentation (TTA): the network sees each frame as it is and mirrored
left-right, up-down and both ways; the four sets of boxes are mapped back and fused.

Why fuse rather than pool them into one NMS: pooling keeps, for every object, the single best box
of the four views, so a false positive that one view scores high survives at that score, and the
box stays that view's box. Fusing gives each NMS survivor the candidates it suppressed, averages
their boxes weighted by score and gives the cluster the *mean over the views* of each view's best
score in it: an object that all four views find keeps its score, a blob that one view finds gets
a quarter of it. This is the weighted-box-fusion idea (Solovyev et al., 2021) done on
whole tensors; the ``ensemble_boxes`` package implements it with a Python loop over boxes, which
at the evaluation threshold (0.001, thousands of candidates per frame) is far too slow.

The network is not exactly mirror-symmetric (strided convolutions sample a mirrored frame at other
pixels), so its mirrored views are slightly different detectors; that is where the gain comes
from, and why the views are fused rather than trusted one by one. Measured in docs/training.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from active.models.coder import BoxCoder, decode_outputs
from active.models.postprocess import (
    Detections,
    PostProcessConfig,
    candidates,
    decode_candidates,
    merge_suppressed,
    suppress,
)

#: The views: tensor dims of a ``(B, 3, H, W)`` batch to mirror (none, left-right, up-down, both).
FLIPS: tuple[tuple[int, ...], ...] = ((), (-1,), (-2,), (-2, -1))


def flip_batch(batch: np.ndarray | Tensor, dims: tuple[int, ...]) -> np.ndarray | Tensor:
    """Mirror a ``(B, 3, H, W)`` batch along ``dims`` (a contiguous copy; the input as it is for
    no dims)."""
    if not dims:
        return batch
    if isinstance(batch, np.ndarray):
        return np.ascontiguousarray(np.flip(batch, dims))
    return batch.flip(dims)


def unflip_rows(rows: Tensor, dims: tuple[int, ...], height: int, width: int) -> Tensor:
    """Map decoded rows ``(..., 5 + nc)`` (pixel xyxy first) of a view mirrored along ``dims``
    back into the unmirrored input of size ``height`` x ``width``."""
    out = rows.clone()
    if -1 in dims:
        out[..., 0], out[..., 2] = width - rows[..., 2], width - rows[..., 0]
    if -2 in dims:
        out[..., 1], out[..., 3] = height - rows[..., 3], height - rows[..., 1]
    return out


def fuse_views(views: Sequence[Tensor], cfg: PostProcessConfig) -> Detections:
    """Fuse the decoded rows ``(N_v, 5 + nc)`` of one image's views (already in the same
    coordinates) into one :class:`Detections`.

    NMS on all views' candidates (``cfg.pre_nms_topk`` per view) picks the objects; every
    candidate joins the cluster of the survivor that suppressed it
    (:func:`~active.models.postprocess.merge_suppressed`), so a box the NMS kept apart from an
    object never borrows that object's score. A cluster's box is the score-weighted mean of its
    candidates, its score the mean over the views of each view's best score in it, so the
    result is ranked by agreement between the views. ``cfg.merge`` does not matter here: fusing
    is merging.
    """
    n = len(views)
    if n == 0:
        raise ValueError("fuse_views needs at least one view")
    pred = torch.cat(list(views))
    view = torch.cat([torch.full((len(v),), i, dtype=torch.long) for i, v in enumerate(views)])
    cfg = replace(cfg, pre_nms_topk=cfg.pre_nms_topk * n)
    boxes, scores, classes, rows = candidates(pred, cfg)
    keep = suppress(boxes, scores, classes, cfg)
    fused, fused_scores = merge_suppressed(boxes, scores, classes, keep, cfg, view[rows], n)
    order = fused_scores.argsort(descending=True)
    return Detections(fused[order], fused_scores[order], classes[keep][order])


#: ``(B, 3, H, W)`` batch -> raw per-level head outputs (tta_detect) or per-image rows
#: (tta_candidates): the same signature.
RawRunner = Callable[[np.ndarray | Tensor], Sequence[Tensor]]


def tta_detect(run: RawRunner, batch: np.ndarray | Tensor, anchors: Tensor | np.ndarray,
               strides: Sequence[int], coder: BoxCoder, cfg: PostProcessConfig,
               flips: Sequence[tuple[int, ...]] = FLIPS) -> list[Detections]:
    """Flip TTA around a network ``run`` that maps a ``(B, 3, H, W)`` batch to its raw per-level
    head outputs (a PyTorch module or an inference backend; ONNX Runtime's numpy outputs are
    taken as they are): one :class:`Detections` per image, boxes in the (unmirrored) network
    input."""
    anchors = torch.as_tensor(anchors, dtype=torch.float32)

    def decoded(x: np.ndarray | Tensor) -> Sequence[Tensor]:
        raw = [torch.as_tensor(r).float().cpu() for r in run(x)]
        if cfg.score_threshold > 0:
            return decode_candidates(raw, anchors, strides, coder, cfg.score_threshold)
        return list(decode_outputs(raw, anchors, strides, coder))

    return tta_candidates(decoded, batch, cfg, flips)


def tta_candidates(run: RawRunner, batch: np.ndarray | Tensor, cfg: PostProcessConfig,
                   flips: Sequence[tuple[int, ...]] = FLIPS) -> list[Detections]:
    """Flip TTA around a ``run`` that maps a ``(B, 3, H, W)`` batch to each image's candidates
    before NMS, ``(N, 5 + nc)`` rows with pixel xyxy first (what :func:`decode_outputs` gives,
    or an external model's ``candidate_rows``, e.g. the Ultralytics adapter's); :func:`fuse_views`
    applies ``cfg.score_threshold``."""
    height, width = batch.shape[-2:]
    per_image: list[list[Tensor]] = [[] for _ in range(batch.shape[0])]
    for dims in flips:
        for i, rows in enumerate(run(flip_batch(batch, dims))):
            per_image[i].append(unflip_rows(rows.float().cpu(), dims, height, width))
    return [fuse_views(views, cfg) for views in per_image]
