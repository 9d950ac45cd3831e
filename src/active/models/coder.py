"""Box coding of the YOLO-style head: raw ``tx, ty, tw, th`` <-> pixel boxes.

One :class:`BoxCoder` is shared by the criterion (decode the positives, then CIoU) and by the
post-processing (decode every prior), so training and inference can never disagree.

Two decodes, chosen by ``BoxCoder.mode``:

- ``"exp"`` (YOLOv3/v4)::

      cx = (sigmoid(tx) * s - (s - 1) / 2 + grid_x) * stride      # s = scale_xy (1 = YOLOv3)
      w  = anchor_w * exp(clamp(tw, max=max_log_wh))

- ``"bounded"`` (YOLOv5 / scaled-YOLOv4 "new_coords")::

      cx = (2 * sigmoid(tx) - 0.5 + grid_x) * stride              # centre in (-0.5, 1.5) cells
      w  = anchor_w * (2 * sigmoid(tw)) ** 2                       # size in (0, 4) x anchor

Anchors are ``(w, h)`` in input pixels; boxes are float pixel ``cx, cy, w, h`` unless a name says
``xyxy`` (0-based, exclusive right/bottom edges, see :mod:`active.data.boxes`).

Everything is elementwise or a reshape, so :func:`decode_outputs` traces for ONNX (the only Python
loop is over the pyramid levels).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the coder's fields are read by the numpy (ONNX) path, which has no torch
    import torch
    from torch import Tensor

DecodeMode = Literal["exp", "bounded"]
DECODE_MODES: tuple[str, ...] = ("exp", "bounded")


@dataclass(frozen=True)
class BoxCoder:
    """Decode/encode of ``(tx, ty, tw, th)`` against a grid cell and an anchor.

    Attributes:
        mode: ``"bounded"`` (YOLOv5, default) or ``"exp"`` (YOLOv3/v4).
        scale_xy: YOLOv4's grid-sensitivity factor, ``"exp"`` mode only (YOLOv4 used
            1.2/1.1/1.05 per level; 1.0 is YOLOv3). ``"bounded"`` is the same xy formula with 2.
        max_log_wh: clamp of ``tw, th`` before ``exp`` (``"exp"`` mode only) so that an untrained
            head cannot overflow; ``log(1000/16)`` as in mmdetection's ``wh_ratio_clip``.
    """

    mode: DecodeMode = "bounded"
    scale_xy: float = 1.0
    max_log_wh: float = math.log(1000.0 / 16.0)

    def __post_init__(self) -> None:
        if self.mode not in DECODE_MODES:
            raise ValueError(f"decode mode must be one of {DECODE_MODES}, got {self.mode!r}")
        if self.scale_xy < 1.0:
            raise ValueError(f"scale_xy must be >= 1, got {self.scale_xy}")

    @property
    def xy_scale(self) -> float:
        """The effective ``s`` of the xy formula (2 in ``"bounded"`` mode)."""
        return 2.0 if self.mode == "bounded" else self.scale_xy

    @property
    def max_wh_ratio(self) -> float:
        """Largest box/anchor side ratio this decode can produce."""
        return 4.0 if self.mode == "bounded" else math.exp(self.max_log_wh)

    def decode(self, t: Tensor, grid_xy: Tensor, anchor_wh: Tensor, stride: float) -> Tensor:
        """Raw ``(..., 4)`` tx, ty, tw, th -> ``(..., 4)`` pixel cx, cy, w, h.

        Args:
            t: ``(..., 4)`` raw logits.
            grid_xy: ``(..., 2)`` integer cell coordinates (x, y) as floats, broadcastable to t.
            anchor_wh: ``(..., 2)`` anchor width, height in pixels, broadcastable to t.
            stride: the level's stride in pixels.
        """
        import torch

        s = self.xy_scale
        xy = (t[..., :2].sigmoid() * s - (s - 1.0) / 2.0 + grid_xy) * stride
        if self.mode == "bounded":
            wh = (t[..., 2:4].sigmoid() * 2.0) ** 2 * anchor_wh
        else:
            wh = t[..., 2:4].clamp(max=self.max_log_wh).exp() * anchor_wh
        return torch.cat([xy, wh], dim=-1)

    def encode(
        self, boxes: Tensor, grid_xy: Tensor, anchor_wh: Tensor, stride: float, eps: float = 1e-6
    ) -> Tensor:
        """Inverse of :meth:`decode`: pixel ``(..., 4)`` cx, cy, w, h -> raw ``(..., 4)``.

        Values the decode cannot reach (a centre outside the cell's range, a side > 4x the anchor
        in ``"bounded"`` mode) are clamped to the nearest reachable logit (``eps`` from 0/1).
        """
        import torch

        s = self.xy_scale
        frac = (boxes[..., :2] / stride - grid_xy + (s - 1.0) / 2.0) / s
        txy = torch.logit(frac.clamp(eps, 1.0 - eps))
        ratio = boxes[..., 2:4] / anchor_wh
        if self.mode == "bounded":
            twh = torch.logit((ratio.clamp(min=0.0).sqrt() / 2.0).clamp(eps, 1.0 - eps))
        else:
            twh = ratio.clamp(min=eps).log()
        return torch.cat([txy, twh], dim=-1)


def make_grid(
    height: int, width: int, device: torch.device | None = None, dtype: torch.dtype | None = None
) -> Tensor:
    """``(H, W, 2)`` cell coordinates, ``[..., 0] = x`` (column), ``[..., 1] = y`` (row)."""
    import torch

    dtype = dtype or torch.float32
    ys = torch.arange(height, device=device, dtype=dtype)
    xs = torch.arange(width, device=device, dtype=dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], dim=-1)


def decode_level(raw: Tensor, anchors: Tensor, stride: float, coder: BoxCoder) -> Tensor:
    """Decode one level's boxes.

    Args:
        raw: ``(B, na, H, W, 5 + nc)`` raw head output (only the first 4 channels are read).
        anchors: ``(na, 2)`` anchor w, h in pixels.
        stride: the level's stride.

    Returns:
        ``(B, na, H, W, 4)`` pixel cx, cy, w, h.
    """
    _, na, h, w, _ = raw.shape
    grid = make_grid(h, w, raw.device, raw.dtype).view(1, 1, h, w, 2)
    anchor_wh = anchors.to(device=raw.device, dtype=raw.dtype).view(1, na, 1, 1, 2)
    return coder.decode(raw[..., :4], grid, anchor_wh, stride)


def decode_outputs(
    raw_outputs: Sequence[Tensor], anchors: Tensor, strides: Sequence[int], coder: BoxCoder
) -> Tensor:
    """Decode all levels into one tensor of scored boxes (the input of NMS).

    Args:
        raw_outputs: one ``(B, na, H_l, W_l, 5 + nc)`` raw tensor per level.
        anchors: ``(nl, na, 2)`` anchor w, h in input pixels.
        strides: ``nl`` strides, e.g. ``(8, 16, 32)``.

    Returns:
        ``(B, N, 5 + nc)`` with ``N = sum(na * H_l * W_l)``, ordered level, anchor, row, column:
        pixel xyxy box, ``sigmoid(objectness)``, per-class ``sigmoid`` probabilities.
    """
    if len(raw_outputs) != len(strides) or len(raw_outputs) != anchors.shape[0]:
        raise ValueError(
            f"{len(raw_outputs)} outputs, {len(strides)} strides, {anchors.shape[0]} anchor levels"
        )
    import torch
    from torchvision.ops import box_convert

    decoded = []
    for level, (raw, stride) in enumerate(zip(raw_outputs, strides, strict=True)):
        boxes = box_convert(decode_level(raw, anchors[level], stride, coder), "cxcywh", "xyxy")
        scores = raw[..., 4:].sigmoid()
        out = torch.cat([boxes, scores], dim=-1)
        batch, na, h, w, channels = raw.shape
        decoded.append(out.reshape(batch, na * h * w, channels))
    return torch.cat(decoded, dim=1)
