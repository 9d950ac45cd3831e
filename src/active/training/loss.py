"""The YOLO criterion: CIoU box loss, BCE objectness and BCE classes over assigned priors.

The network returns raw tensors only; this module assigns targets (:mod:`active.training.assign`),
decodes the positives with the same :class:`~active.models.coder.BoxCoder` as inference, and sums

    loss = (box_gain * L_box + obj_gain * L_obj + cls_gain * L_cls) * (B if scale_by_batch else 1)

where, summed over levels ``l``: ``L_box`` = mean CIoU loss of the level's positives,
``L_obj`` = ``balance[l]`` * mean BCE over all of the level's priors, ``L_cls`` = mean BCE over the
level's positives and classes. See ``docs/criterion.md`` for the defaults and their reasons.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import box_convert, complete_box_iou_loss

from active.models.coder import DECODE_MODES, BoxCoder, DecodeMode
from active.training.assign import ASSIGN_RULES, AssignRule, assign_targets

MIN_SIDE = 1e-4  # pixels added to predicted widths/heights inside the box loss


@dataclass(frozen=True)
class LossConfig:
    """Assignment, decode and weighting of the criterion (all plain data, saved with a run).

    Attributes:
        assign: ``"iou"`` (YOLOv4, default: the paper's lineage) or ``"ratio"`` (YOLOv5).
        iou_threshold: shape IoU an anchor must exceed under ``"iou"`` (YOLOv4's 0.213).
        anchor_t: side ratio an anchor must stay below under ``"ratio"`` (YOLOv5's 4.0).
        neighbour_cells: also assign the two neighbouring cells nearer the box centre (YOLOv5);
            needs a decode that reaches them (``"bounded"``, or ``"exp"`` with ``scale_xy >= 2``).
        decode: ``"bounded"`` (default, stable) or ``"exp"`` (YOLOv3/v4).
        scale_xy: YOLOv4's grid-sensitivity factor, ``"exp"`` decode only.
        box_gain, obj_gain, cls_gain: weights of the three parts (YOLOv5's base values).
        balance: objectness weight per level, finest first (more weight on the stride-8 level,
            which holds the many tiny sperm heads and the most negatives per positive).
        obj_iou_target: objectness target of a positive is its detached CIoU clamped at 0 (True)
            or 1 (False).
        label_smoothing: ``eps``: class targets become ``1 - eps/2`` and ``eps/2``.
        scale_by_batch: multiply the total by the batch size (YOLOv5) instead of a plain mean.
    """

    assign: AssignRule = "iou"
    iou_threshold: float = 0.213
    anchor_t: float = 4.0
    neighbour_cells: bool = False
    decode: DecodeMode = "bounded"
    scale_xy: float = 1.0
    box_gain: float = 0.05
    obj_gain: float = 1.0
    cls_gain: float = 0.5
    balance: tuple[float, ...] = (4.0, 1.0, 0.4)
    obj_iou_target: bool = True
    label_smoothing: float = 0.0
    scale_by_batch: bool = True

    def __post_init__(self) -> None:
        if self.assign not in ASSIGN_RULES:
            raise ValueError(f"assign must be one of {ASSIGN_RULES}, got {self.assign!r}")
        if self.decode not in DECODE_MODES:
            raise ValueError(f"decode must be one of {DECODE_MODES}, got {self.decode!r}")
        if not 0.0 <= self.iou_threshold < 1.0 or self.anchor_t <= 1.0:
            raise ValueError("need 0 <= iou_threshold < 1 and anchor_t > 1")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.neighbour_cells and self.coder().xy_scale < 2.0:
            raise ValueError(
                "neighbour_cells needs decode='bounded' (or 'exp' with scale_xy>=2): "
                "otherwise a neighbour cell cannot reach the box centre"
            )
        object.__setattr__(self, "balance", tuple(float(b) for b in self.balance))

    def coder(self) -> BoxCoder:
        """The box coder this config trains with (post-processing must use the same one)."""
        return BoxCoder(mode=self.decode, scale_xy=self.scale_xy)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["balance"] = list(self.balance)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LossConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing keys take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown LossConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if k == "balance" else v for k, v in data.items()})


class YoloCriterion(nn.Module):
    """Loss of a YOLO-style head over raw outputs.

    Args:
        anchors: ``(nl, na, 2)`` anchor w, h in input pixels (a buffer: moves with ``.to``).
        strides: ``nl`` strides, e.g. ``(8, 16, 32)``.
        num_classes: ``nc``.
        cfg: the :class:`LossConfig`.
    """

    def __init__(
        self, anchors: Tensor, strides: Sequence[int], num_classes: int, cfg: LossConfig
    ) -> None:
        super().__init__()
        anchors = torch.as_tensor(anchors, dtype=torch.float32)
        if anchors.ndim != 3 or anchors.shape[-1] != 2 or anchors.shape[0] != len(strides):
            raise ValueError(f"anchors must be (nl={len(strides)}, na, 2), got {anchors.shape}")
        if len(cfg.balance) != len(strides):
            raise ValueError(
                f"cfg.balance has {len(cfg.balance)} weights for {len(strides)} levels"
            )
        self.register_buffer("anchors", anchors)
        self.strides = tuple(int(s) for s in strides)
        self.num_classes = int(num_classes)
        self.cfg = cfg
        self.coder = cfg.coder()

    def forward(
        self, raw_outputs: Sequence[Tensor], targets: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Compute the loss.

        Args:
            raw_outputs: one ``(B, na, H_l, W_l, 5 + nc)`` raw tensor per level (tx, ty, tw, th,
                objectness, class logits).
            targets: ``(M, 6)`` rows ``[image_index, class, x0, y0, x1, y1]``, pixel xyxy in the
                network input; ``(0, 6)`` for a batch without boxes.

        Returns:
            ``(total, parts)``: a scalar to backpropagate, and detached scalars ``box``, ``obj``,
            ``cls`` (after gains, before the batch-size scaling).
        """
        cfg, nc = self.cfg, self.num_classes
        self._check(raw_outputs)
        batch = raw_outputs[0].shape[0]
        grids = [(int(p.shape[2]), int(p.shape[3])) for p in raw_outputs]
        assigned = assign_targets(
            targets.to(self.anchors.device),
            self.anchors,
            self.strides,
            grids,
            rule=cfg.assign,
            iou_threshold=cfg.iou_threshold,
            anchor_t=cfg.anchor_t,
            neighbour_cells=cfg.neighbour_cells,
        )
        zero = raw_outputs[0].new_zeros((), dtype=torch.float32)
        l_box, l_obj, l_cls = zero, zero, zero
        for level, (raw, pos) in enumerate(zip(raw_outputs, assigned, strict=True)):
            raw = raw.float()  # losses in fp32 even under autocast
            obj_target = torch.zeros_like(raw[..., 4])
            if len(pos):
                p = raw[pos.image, pos.anchor, pos.gy, pos.gx]  # (P, 5 + nc)
                grid_xy = torch.stack([pos.gx, pos.gy], dim=1).to(p.dtype)
                pred = self.coder.decode(
                    p[:, :4], grid_xy, self.anchors[level][pos.anchor], self.strides[level]
                )
                # A predicted side far below a pixel vanishes in float32 xyxy (cy - h/2 == cy + h/2)
                # and CIoU's w/h then divides by zero in the backward pass. CIoU is translation
                # invariant, so compute it around each target's centre (small coordinates, fine
                # float resolution) with a tiny side floor added (not clamped: the gradient that
                # lets the side grow again is kept).
                origin = ((pos.boxes[:, :2] + pos.boxes[:, 2:]) / 2).detach()
                local = torch.cat([pred[:, :2] - origin, pred[:, 2:] + MIN_SIDE], dim=1)
                ciou_loss = complete_box_iou_loss(
                    box_convert(local, "cxcywh", "xyxy"), pos.boxes - origin.repeat(1, 2)
                )
                l_box = l_box + ciou_loss.mean()
                quality = (1.0 - ciou_loss).detach().clamp(min=0.0)
                if not cfg.obj_iou_target:
                    quality = torch.ones_like(quality)
                # Two boxes on one prior: keep the better match, deterministically.
                flat = (
                    (pos.image * raw.shape[1] + pos.anchor) * raw.shape[2] + pos.gy
                ) * raw.shape[3] + pos.gx
                obj_target = (
                    obj_target.flatten()
                    .scatter_reduce(0, flat, quality, reduce="amax")
                    .view_as(obj_target)
                )
                if nc > 1:
                    eps = cfg.label_smoothing
                    cls_target = torch.full_like(p[:, 5:], eps / 2)
                    cls_target[torch.arange(len(pos), device=p.device), pos.classes] = 1 - eps / 2
                    l_cls = l_cls + F.binary_cross_entropy_with_logits(p[:, 5:], cls_target)
            bce = F.binary_cross_entropy_with_logits(raw[..., 4], obj_target)
            l_obj = l_obj + cfg.balance[level] * bce
        l_box, l_obj, l_cls = cfg.box_gain * l_box, cfg.obj_gain * l_obj, cfg.cls_gain * l_cls
        total = (l_box + l_obj + l_cls) * (batch if cfg.scale_by_batch else 1)
        parts = {"box": l_box.detach(), "obj": l_obj.detach(), "cls": l_cls.detach()}
        return total, parts

    def _check(self, raw_outputs: Sequence[Tensor]) -> None:
        nl, na = self.anchors.shape[:2]
        if len(raw_outputs) != nl:
            raise ValueError(f"expected {nl} levels of output, got {len(raw_outputs)}")
        for p in raw_outputs:
            if p.ndim != 5 or p.shape[1] != na or p.shape[-1] != 5 + self.num_classes:
                raise ValueError(
                    f"each output must be (B, {na}, H, W, {5 + self.num_classes}), "
                    f"got {tuple(p.shape)}"
                )
