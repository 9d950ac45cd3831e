"""Building blocks of ACTIVE: Conv-BN-act, branch 1's CSP stage, branch 2's MBConv, SPP, CSP fuse.

Every block maps ``(B, C_in, H, W)`` to ``(B, C_out, H / stride, W / stride)`` and exposes its
output width as ``out_channels``. Squeeze-excitation and drop-connect come from ``torchvision.ops``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torchvision.ops import SqueezeExcitation, StochasticDepth

#: Activations a config may name. A plain lookup table of constructors, nothing is registered.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1),
    "mish": nn.Mish,
    "hardswish": nn.Hardswish,
}


def make_act(name: str | None) -> nn.Module:
    """The activation called ``name`` (see :data:`ACTIVATIONS`); ``None`` gives identity."""
    if name is None:
        return nn.Identity()
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (known: {', '.join(ACTIVATIONS)})")
    return ACTIVATIONS[name]()


def make_divisible(channels: float, divisor: int = 8) -> int:
    """Round a scaled width to a multiple of ``divisor`` (never below it), as EfficientNet does."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:  # never drop more than 10 %
        rounded += divisor
    return rounded


def scale_depth(repeats: int, multiplier: float) -> int:
    """Repeats of a block after a depth multiplier; at least one."""
    return max(1, math.ceil(repeats * multiplier))


class ConvBNAct(nn.Module):
    """Conv2d (no bias) + BatchNorm + activation; 'same' padding for odd kernels."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "silu",
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        # eps/momentum of YOLOv5/EfficientNet: steadier statistics at the paper's batch sizes 2-4
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = make_act(act)
        self.out_channels = c_out

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))

    @torch.no_grad()
    def fuse(self) -> None:
        """Fold the BatchNorm into the conv for inference (eval mode only; irreversible)."""
        if isinstance(self.bn, nn.BatchNorm2d):
            if self.training:
                raise RuntimeError("fuse() needs eval mode: BatchNorm must use running stats")
            self.conv = fuse_conv_bn_eval(self.conv, self.bn)
            self.bn = nn.Identity()


class Residual(nn.Module):
    """Darknet residual unit: 1x1 conv, 3x3 conv, added to the input. ``(B,C,H,W)`` -> same."""

    def __init__(self, channels: int, act: str = "silu") -> None:
        super().__init__()
        self.conv1 = ConvBNAct(channels, channels, 1, act=act)
        self.conv2 = ConvBNAct(channels, channels, 3, act=act)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(self.conv1(x))


class CSPStage(nn.Module):
    """One stage of branch 1 (CSPDarknet53): ``(B,C_in,H,W)`` -> ``(B,C_out,H/2,W/2)``.

    A 3x3 stride-2 conv halves the resolution; its output is split by two 1x1 convs into a part
    kept as is and a part sent through ``depth`` residual units; the two parts are concatenated
    (the paper's "stride-2 output concatenated with the block output") and mixed by a 1x1 conv.
    """

    def __init__(self, c_in: int, c_out: int, depth: int, act: str = "silu") -> None:
        super().__init__()
        hidden = c_out // 2
        self.down = ConvBNAct(c_in, c_out, 3, 2, act=act)
        self.keep = ConvBNAct(c_out, hidden, 1, act=act)
        self.main = ConvBNAct(c_out, hidden, 1, act=act)
        self.blocks = nn.Sequential(*(Residual(hidden, act) for _ in range(depth)))
        self.post = ConvBNAct(hidden, hidden, 1, act=act)
        self.mix = ConvBNAct(2 * hidden, c_out, 1, act=act)
        self.out_channels = c_out

    def forward(self, x: Tensor) -> Tensor:
        x = self.down(x)
        main = self.post(self.blocks(self.main(x)))
        return self.mix(torch.cat((self.keep(x), main), dim=1))


class MBConv(nn.Module):
    """Mobile inverted bottleneck of branch 2: ``(B,C_in,H,W)`` -> ``(B,C_out,H/s,W/s)``.

    1x1 expansion by ``expand`` (omitted when ``expand == 1``), ``kernel`` x ``kernel`` depthwise
    conv, squeeze-excitation (squeeze width ``se_ratio * C_in``), 1x1 linear projection; when the
    shape is kept, drop-connect (stochastic depth, probability ``drop_p``) and the skip connection.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int = 1,
        expand: float = 6.0,
        kernel: int = 3,
        se_ratio: float = 0.25,
        drop_p: float = 0.0,
        act: str = "silu",
    ) -> None:
        super().__init__()
        mid = make_divisible(c_in * expand) if expand != 1 else c_in
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNAct(c_in, mid, 1, act=act))
        layers += [
            ConvBNAct(mid, mid, kernel, stride, groups=mid, act=act),
            SqueezeExcitation(mid, max(1, int(c_in * se_ratio)), activation=lambda: make_act(act)),
            ConvBNAct(mid, c_out, 1, act=None),
        ]
        self.block = nn.Sequential(*layers)
        self.skip = stride == 1 and c_in == c_out  # fixed by the structure, not by the data
        self.drop = StochasticDepth(drop_p, "row")
        self.out_channels = c_out

    def forward(self, x: Tensor) -> Tensor:
        y = self.block(x)
        return x + self.drop(y) if self.skip else y


class SPP(nn.Module):
    """Spatial pyramid pooling (YOLOv4): ``(B,C_in,H,W)`` -> ``(B,C_out,H,W)``.

    A 1x1 conv halves the width, max-pools of sizes ``pools`` (stride 1) are concatenated with
    their input and a 1x1 conv mixes them. The pools run in series (5, then 5 more = 9, ...), which
    gives exactly the parallel 5/9/13 pools at a fraction of the cost (SPPF's trick).
    """

    def __init__(
        self, c_in: int, c_out: int, pools: Sequence[int] = (5, 9, 13), act: str = "silu"
    ) -> None:
        super().__init__()
        hidden = c_in // 2
        sizes = [pools[0]] + [b - a + 1 for a, b in zip(pools[:-1], pools[1:], strict=True)]
        if any(k < 1 or k % 2 == 0 for k in sizes):
            raise ValueError(f"SPP pools must be odd and increasing, got {tuple(pools)}")
        self.reduce = ConvBNAct(c_in, hidden, 1, act=act)
        self.pools = nn.ModuleList(nn.MaxPool2d(k, 1, k // 2) for k in sizes)
        self.mix = ConvBNAct(hidden * (len(sizes) + 1), c_out, 1, act=act)
        self.out_channels = c_out

    def forward(self, x: Tensor) -> Tensor:
        feats = [self.reduce(x)]
        for pool in self.pools:
            feats.append(pool(feats[-1]))
        return self.mix(torch.cat(feats, dim=1))


class CSPFuse(nn.Module):
    """CSP block mixing concatenated maps in the neck: ``(B,C_in,H,W)`` -> ``(B,C_out,H,W)``.

    Two 1x1 convs split the input; one part goes through ``depth`` (1x1, 3x3) pairs without
    shortcut (YOLOv4's five-conv block, cross-stage-partial); a 1x1 conv mixes the two parts.
    """

    def __init__(self, c_in: int, c_out: int, depth: int = 1, act: str = "silu") -> None:
        super().__init__()
        hidden = c_out // 2
        self.keep = ConvBNAct(c_in, hidden, 1, act=act)
        self.main = ConvBNAct(c_in, hidden, 1, act=act)
        self.blocks = nn.Sequential(
            *(
                nn.Sequential(
                    ConvBNAct(hidden, hidden, 1, act=act), ConvBNAct(hidden, hidden, 3, act=act)
                )
                for _ in range(depth)
            )
        )
        self.mix = ConvBNAct(2 * hidden, c_out, 1, act=act)
        self.out_channels = c_out

    def forward(self, x: Tensor) -> Tensor:
        return self.mix(torch.cat((self.keep(x), self.blocks(self.main(x))), dim=1))
