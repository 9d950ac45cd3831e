"""Target assignment: which (level, anchor, cell) priors are positives for which ground-truth box.

Two rules (see ``docs/criterion.md``):

- ``"iou"`` (YOLOv4): a box goes to every anchor, on every level, whose *shape* IoU with the box
  (both centred at the origin) exceeds ``iou_threshold``, and always to its single best anchor, so
  no box is left without a positive.
- ``"ratio"`` (YOLOv5): a box goes to every anchor whose side ratios ``max(w/a_w, a_w/w, h/a_h,
  a_h/h)`` are below ``anchor_t``, level by level. A box whose shape no anchor fits gets none.

The cell is the one that contains the box centre. With ``neighbour_cells`` (YOLOv5) the box also
goes to the horizontal and the vertical neighbour nearer to its centre (up to 3 cells), which only
makes sense with a decode that can place a centre outside its own cell (``"bounded"``).

Everything is vectorised over boxes; the only Python loops are over levels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

AssignRule = Literal["iou", "ratio"]
ASSIGN_RULES: tuple[str, ...] = ("iou", "ratio")

# Centre cell, then left, up, right, down neighbours (dx, dy).
_OFFSETS = ((0, 0), (-1, 0), (0, -1), (1, 0), (0, 1))


@dataclass(frozen=True)
class LevelTargets:
    """The positives of one pyramid level; every field has one row per positive ``P``.

    Attributes:
        image: ``(P,)`` int64 index of the image in the batch.
        anchor: ``(P,)`` int64 anchor index within the level.
        gy, gx: ``(P,)`` int64 cell row and column.
        boxes: ``(P, 4)`` float target box, pixel xyxy in the network input.
        classes: ``(P,)`` int64 class id.
        target: ``(P,)`` int64 row of the target in the input ``(M, 6)`` tensor.
    """

    image: Tensor
    anchor: Tensor
    gy: Tensor
    gx: Tensor
    boxes: Tensor
    classes: Tensor
    target: Tensor

    def __len__(self) -> int:
        return int(self.image.numel())


def shape_iou(wh: Tensor, anchors: Tensor) -> Tensor:
    """IoU of ``(M, 2)`` box sizes and ``(A, 2)`` anchor sizes, both centred: ``(M, A)``."""
    inter = torch.minimum(wh[:, None], anchors[None]).prod(-1)
    union = wh.prod(-1)[:, None] + anchors.prod(-1)[None] - inter
    return inter / union.clamp(min=1e-9)


def max_side_ratio(wh: Tensor, anchors: Tensor) -> Tensor:
    """YOLOv5's shape mismatch ``max(w/a_w, a_w/w, h/a_h, a_h/h)`` of ``(M, 2)`` vs ``(A, 2)``."""
    r = wh[:, None] / anchors[None]
    return torch.maximum(r, 1.0 / r).amax(-1)


def _anchor_masks(
    wh: Tensor, anchors: Tensor, rule: AssignRule, iou_threshold: float, anchor_t: float
) -> Tensor:
    """``(M, nl, na)`` bool: which anchors of which levels each box is assigned to."""
    nl, na, _ = anchors.shape
    flat = anchors.reshape(nl * na, 2)
    if rule == "iou":
        iou = shape_iou(wh, flat)
        mask = iou > iou_threshold
        mask[torch.arange(wh.shape[0], device=wh.device), iou.argmax(1)] = True
    elif rule == "ratio":
        mask = max_side_ratio(wh, flat) < anchor_t
    else:
        raise ValueError(f"assignment rule must be one of {ASSIGN_RULES}, got {rule!r}")
    return mask.view(-1, nl, na)


def assign_targets(
    targets: Tensor,
    anchors: Tensor,
    strides: Sequence[int],
    grid_sizes: Sequence[tuple[int, int]],
    rule: AssignRule = "iou",
    iou_threshold: float = 0.213,
    anchor_t: float = 4.0,
    neighbour_cells: bool = False,
) -> list[LevelTargets]:
    """Assign ground-truth boxes to priors.

    Args:
        targets: ``(M, 6)`` rows ``[image_index, class, x0, y0, x1, y1]``, pixel xyxy in the
            network input (``M`` may be 0).
        anchors: ``(nl, na, 2)`` anchor w, h in input pixels.
        strides: ``nl`` strides.
        grid_sizes: ``nl`` feature map sizes ``(H_l, W_l)``.
        rule: ``"iou"`` (YOLOv4) or ``"ratio"`` (YOLOv5).
        iou_threshold: shape IoU an anchor must exceed (``"iou"`` rule).
        anchor_t: side ratio an anchor must stay below (``"ratio"`` rule).
        neighbour_cells: also assign the two neighbouring cells nearer the centre.

    Returns:
        One :class:`LevelTargets` per level. A box can be a positive at several places; two boxes
        can share a place (the criterion handles both).
    """
    if targets.ndim != 2 or targets.shape[1] != 6:
        raise ValueError(f"targets must be (M, 6), got {tuple(targets.shape)}")
    nl = anchors.shape[0]
    if len(strides) != nl or len(grid_sizes) != nl:
        raise ValueError(f"{nl} anchor levels, {len(strides)} strides, {len(grid_sizes)} grids")
    targets = targets.float()
    anchors = anchors.to(targets)
    xyxy = targets[:, 2:6]
    wh = (xyxy[:, 2:] - xyxy[:, :2]).clamp(min=1e-3)  # a degenerate box must not divide by 0
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    masks = _anchor_masks(wh, anchors, rule, iou_threshold, anchor_t)

    offsets = torch.tensor(_OFFSETS, device=targets.device, dtype=torch.long)
    out = []
    for level, (stride, (h, w)) in enumerate(zip(strides, grid_sizes, strict=True)):
        t_idx, a_idx = masks[:, level].nonzero(as_tuple=True)
        gxy = centre[t_idx] / stride
        size = torch.tensor([w, h], device=targets.device)
        cell = gxy.floor().long().clamp(min=torch.zeros_like(size), max=size - 1)
        if neighbour_cells:
            frac = gxy - gxy.floor()
            lower = (frac < 0.5) & (cell > 0)  # left / up neighbour exists and is nearer
            upper = (frac > 0.5) & (cell < size - 1)  # right / down
            keep = torch.stack(
                [torch.ones_like(lower[:, 0]), lower[:, 0], lower[:, 1], upper[:, 0], upper[:, 1]]
            )  # (5, P)
            o_idx, p_idx = keep.nonzero(as_tuple=True)
            t_idx, a_idx = t_idx[p_idx], a_idx[p_idx]
            cell = cell[p_idx] + offsets[o_idx]
        out.append(
            LevelTargets(
                image=targets[t_idx, 0].long(),
                anchor=a_idx,
                gy=cell[:, 1],
                gx=cell[:, 0],
                boxes=xyxy[t_idx],
                classes=targets[t_idx, 1].long(),
                target=t_idx,
            )
        )
    return out
