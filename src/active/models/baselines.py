"""The paper's YOLO baselines built from this project's blocks: YOLOv3 (Darknet-53 + FPN) and
YOLOv4 (CSPDarknet53 + SPP + PANet).

They share ACTIVE's head, anchors, criterion, box coder and DIoU-NMS, and the scales of
:data:`active.models.variants.SCALES`, so a comparison measures the backbone and neck alone.
Differences from the original networks, on purpose: every activation is the model config's
(SiLU by default, where YOLOv3 used leaky ReLU and YOLOv4 Mish in its backbone), so that speed and
accuracy differences are not about activations; the ``n`` scale's stride-2 stem (a YOLOv5 habit)
replaces the first stage as it does in ACTIVE's branch 1.

Layout (widths at scale ``paper``; a scale multiplies them):

- YOLOv3: Darknet-53 (stem 32, stages 64/128/256/512/1024 with 1/2/8/8/4 residual units) ->
  FPN top-down with five-conv sets of 512/256/128 -> a 3x3 conv (1024/512/256) per level.
- YOLOv4: CSPDarknet53 (ACTIVE's branch 1) -> SPP on stride 32 -> PANet (top-down, then
  bottom-up) with five-conv sets -> a 3x3 conv (256/512/1024) per level.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from active.models.backbone import Branch1
from active.models.layers import SPP, ConvBNAct


class DarkResidual(nn.Module):
    """Darknet-53's residual unit: 1x1 (C -> C/2), 3x3 (C/2 -> C), plus the input."""

    def __init__(self, channels: int, act: str) -> None:
        super().__init__()
        self.conv1 = ConvBNAct(channels, channels // 2, 1, act=act)
        self.conv2 = ConvBNAct(channels // 2, channels, 3, act=act)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class Darknet53(Branch1):
    """``(B,3,H,W)`` -> maps at strides 8/16/32 (widths ``widths[-3:]``): branch 1's layout with
    Darknet-53's plain residual stages (a stride-2 conv, then residual units) instead of CSP."""

    @staticmethod
    def make_stage(c_in: int, c_out: int, depth: int, act: str) -> nn.Module:
        return nn.Sequential(ConvBNAct(c_in, c_out, 3, 2, act=act),
                             *(DarkResidual(c_out, act) for _ in range(depth)))


def conv_set(c_in: int, c: int, act: str) -> nn.Sequential:
    """YOLOv3's five convolutions: 1x1 to ``c``, then (3x3 to 2c, 1x1 to c) twice."""
    return nn.Sequential(ConvBNAct(c_in, c, 1, act=act), ConvBNAct(c, 2 * c, 3, act=act),
                         ConvBNAct(2 * c, c, 1, act=act), ConvBNAct(c, 2 * c, 3, act=act),
                         ConvBNAct(2 * c, c, 1, act=act))


def _up(c_in: int, c_out: int, act: str) -> nn.Sequential:
    return nn.Sequential(ConvBNAct(c_in, c_out, 1, act=act), nn.Upsample(scale_factor=2.0))


class FPNNeck(nn.Module):
    """YOLOv3's top-down FPN: ``[P3, P4, P5]`` -> maps of widths ``2 * sets`` per level."""

    def __init__(self, in_channels: Sequence[int], sets: Sequence[int], act: str) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        s3, s4, s5 = sets
        self.set5 = conv_set(c5, s5, act)
        self.up5 = _up(s5, s4, act)
        self.set4 = conv_set(c4 + s4, s4, act)
        self.up4 = _up(s4, s3, act)
        self.set3 = conv_set(c3 + s3, s3, act)
        self.outs = nn.ModuleList(ConvBNAct(s, 2 * s, 3, act=act) for s in sets)
        self.out_channels = tuple(2 * s for s in sets)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        p3, p4, p5 = feats
        x5 = self.set5(p5)
        x4 = self.set4(torch.cat((p4, self.up5(x5)), 1))
        x3 = self.set3(torch.cat((p3, self.up4(x4)), 1))
        return [out(x) for out, x in zip(self.outs, (x3, x4, x5), strict=True)]


class PANNeck(nn.Module):
    """YOLOv4's SPP + PANet: ``[P3, P4, P5]`` -> maps of widths ``2 * sets`` per level."""

    def __init__(self, in_channels: Sequence[int], sets: Sequence[int], act: str) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        s3, s4, s5 = sets
        self.pre5 = nn.Sequential(ConvBNAct(c5, s5, 1, act=act), ConvBNAct(s5, 2 * s5, 3, act=act),
                                  ConvBNAct(2 * s5, s5, 1, act=act))
        self.spp = SPP(s5, s5, act=act)
        self.post5 = nn.Sequential(ConvBNAct(s5, 2 * s5, 3, act=act),
                                   ConvBNAct(2 * s5, s5, 1, act=act))
        self.lat4, self.up5 = ConvBNAct(c4, s4, 1, act=act), _up(s5, s4, act)
        self.td4 = conv_set(2 * s4, s4, act)
        self.lat3, self.up4 = ConvBNAct(c3, s3, 1, act=act), _up(s4, s3, act)
        self.td3 = conv_set(2 * s3, s3, act)
        self.down3 = ConvBNAct(s3, s4, 3, 2, act=act)
        self.bu4 = conv_set(2 * s4, s4, act)
        self.down4 = ConvBNAct(s4, s5, 3, 2, act=act)
        self.bu5 = conv_set(2 * s5, s5, act)
        self.outs = nn.ModuleList(ConvBNAct(s, 2 * s, 3, act=act) for s in sets)
        self.out_channels = tuple(2 * s for s in sets)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        p3, p4, p5 = feats
        n5 = self.post5(self.spp(self.pre5(p5)))
        n4 = self.td4(torch.cat((self.lat4(p4), self.up5(n5)), 1))
        o3 = self.td3(torch.cat((self.lat3(p3), self.up4(n4)), 1))
        o4 = self.bu4(torch.cat((self.down3(o3), n4), 1))
        o5 = self.bu5(torch.cat((self.down4(o4), n5), 1))
        return [out(x) for out, x in zip(self.outs, (o3, o4, o5), strict=True)]


DARKNET53_WIDTHS = (32, 64, 128, 256, 512, 1024)
DARKNET53_DEPTHS = (1, 2, 8, 8, 4)
NECK_SETS = (128, 256, 512)  # five-conv set widths at strides 8/16/32 (paper scale)


def build_baseline_parts(name: str, widths: Sequence[int], depths: Sequence[int],
                         sets: Sequence[int], stem_stride: int, act: str
                         ) -> tuple[nn.Module, nn.Module]:
    """(backbone, neck) of ``yolov3`` or ``yolov4`` with already-scaled widths and depths."""
    if name == "yolov3":
        backbone: nn.Module = Darknet53(widths, depths, stem_stride, act)
        neck: nn.Module = FPNNeck(backbone.out_channels, sets, act)
    elif name == "yolov4":
        backbone = Branch1(widths, depths, stem_stride, act)  # CSPDarknet53
        neck = PANNeck(backbone.out_channels, sets, act)
    else:
        raise ValueError(f"unknown baseline {name!r}")
    return backbone, neck
