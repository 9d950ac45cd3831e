"""YOLOv3-style prediction head: per level one 1x1 conv to ``na * (5 + nc)`` raw outputs.

The head returns raw logits only; decoding (sigmoid offsets, anchor scaling) belongs to the
post-processing and the loss, so that train, eval and an exported ONNX graph see the same tensors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor, nn


def logit(p: float) -> float:
    """``log(p / (1 - p))``: the bias that makes a sigmoid output ``p`` at zero input."""
    return math.log(p / (1.0 - p))


class YoloHead(nn.Module):
    """``[(B, C_l, H_l, W_l)]`` -> ``[(B, na, H_l, W_l, 5 + nc)]``, one tensor per level.

    The last axis holds ``tx, ty, tw, th, objectness, class_0 … class_{nc-1}`` as raw logits.
    Biases start at priors so that early training is stable: objectness at the probability that
    an anchor at that level holds one of ``objects_per_image`` objects in an ``imgsz`` image, each
    class at ``class_prior`` (multi-label sigmoid classes).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_anchors: int,
        num_classes: int,
        strides: Sequence[int],
        imgsz: tuple[int, int] = (416, 416),
        objects_per_image: float = 10.0,
        class_prior: float = 0.01,
    ) -> None:
        super().__init__()
        self.num_anchors = num_anchors
        self.num_classes = num_classes
        self.num_outputs = 5 + num_classes
        self.convs = nn.ModuleList(
            nn.Conv2d(c, num_anchors * self.num_outputs, 1) for c in in_channels
        )
        for conv, stride in zip(self.convs, strides, strict=True):
            cells = (imgsz[0] / stride) * (imgsz[1] / stride) * num_anchors
            bias = conv.bias.detach().view(num_anchors, self.num_outputs)
            bias.zero_()
            bias[:, 4] = logit(min(0.5, objects_per_image / cells))
            bias[:, 5:] = logit(class_prior)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        outs = []
        for conv, x in zip(self.convs, feats, strict=True):
            y = conv(x)  # (B, na*no, H, W)
            y = y.unflatten(1, (self.num_anchors, self.num_outputs))  # (B, na, no, H, W)
            outs.append(y.permute(0, 1, 3, 4, 2).contiguous())
        return outs
