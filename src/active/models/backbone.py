"""DBFEN, the double-branch feature extraction network, and its two branches.

Branch 1 is CSPDarknet53-like (residual CSP stages), branch 2 EfficientNet-like (MBConv stages).
Both read the same image; at strides 8, 16 and 32 their maps are concatenated and a 1x1
Conv-BN-act brings each level to the neck's width. With one branch (the paper's Table II
ablation) the same 1x1 convs read that branch alone, so the ablation models differ only there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from active.models.layers import ConvBNAct, CSPStage, MBConv

#: The pyramid levels every backbone here returns, finest first.
STRIDES: tuple[int, int, int] = (8, 16, 32)


class MBStage(NamedTuple):
    """One stage of branch 2: ``repeats`` MBConv blocks, the first with ``stride``."""

    expand: float
    channels: int
    repeats: int
    stride: int
    kernel: int = 3


class Branch1(nn.Module):
    """Residual/CSP branch: ``(B,3,H,W)`` -> maps at strides 8/16/32 of widths ``widths[3:6]``.

    ``widths`` = (stem, stage 1 ... stage 5); ``depths`` = residual units per stage. The stem is
    a 3x3 conv at stride ``stem_stride`` (1 in CSPDarknet53); each stage then halves the size,
    so ``stem_stride == 2`` needs one stage fewer (``len(depths) == 4``).
    """

    def __init__(
        self,
        widths: Sequence[int],
        depths: Sequence[int],
        stem_stride: int = 1,
        act: str = "silu",
    ) -> None:
        super().__init__()
        if len(widths) != len(depths) + 1 or stem_stride * 2 ** len(depths) != STRIDES[-1]:
            raise ValueError(f"branch 1 needs stride 32: widths {widths}, depths {depths}")
        self.stem = ConvBNAct(3, widths[0], 3, stem_stride, act=act)
        self.stages = nn.ModuleList(
            self.make_stage(c_in, c_out, d, act)
            for c_in, c_out, d in zip(widths[:-1], widths[1:], depths, strict=True)
        )
        self.out_channels: tuple[int, ...] = tuple(widths[-3:])
        self.strides = STRIDES

    @staticmethod
    def make_stage(c_in: int, c_out: int, depth: int, act: str) -> nn.Module:
        """One stride-2 stage (CSP here; Darknet-53's plain residual stage in the baselines)."""
        return CSPStage(c_in, c_out, depth, act)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats[-3:]


class Branch2(nn.Module):
    """MBConv branch: ``(B,3,H,W)`` -> maps at strides 8/16/32 (the last stage at each stride).

    A 3x3 stride-2 stem of width ``stem``, then ``stages``. Drop-connect grows linearly with block
    index up to ``drop_connect`` (EfficientNet's rule).
    """

    def __init__(
        self,
        stem: int,
        stages: Sequence[MBStage],
        se_ratio: float = 0.25,
        drop_connect: float = 0.2,
        act: str = "silu",
    ) -> None:
        super().__init__()
        self.stem = ConvBNAct(3, stem, 3, 2, act=act)
        total = sum(s.repeats for s in stages)
        blocks: list[nn.Module] = []
        taps: dict[int, int] = {}  # stride -> index of the last block at that stride
        c_in, stride, index = stem, 2, 0
        for st in stages:
            for i in range(st.repeats):
                s = st.stride if i == 0 else 1
                drop = drop_connect * index / total
                blocks.append(
                    MBConv(c_in, st.channels, s, st.expand, st.kernel, se_ratio, drop, act)
                )
                c_in, stride, index = st.channels, stride * s, index + 1
                taps[stride] = index - 1
        if any(s not in taps for s in STRIDES) or stride != STRIDES[-1]:
            raise ValueError(f"branch 2 must reach strides {STRIDES} and end at 32: {stages}")
        self.blocks = nn.ModuleList(blocks)
        self.taps = tuple(taps[s] for s in STRIDES)
        self.out_channels = tuple(blocks[i].out_channels for i in self.taps)
        self.strides = STRIDES

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:  # a fixed index set, the same for every input
                feats.append(x)
        return feats


class DBFEN(nn.Module):
    """Double-branch feature extraction: ``(B,3,H,W)`` -> ``[P3, P4, P5]``.

    ``P_l`` has shape ``(B, out_channels[l], H / s_l, W / s_l)`` for strides ``s = (8, 16, 32)``;
    H and W must be multiples of 32. ``b1`` or ``b2`` may be ``None`` for the ablation.
    """

    def __init__(
        self,
        b1: Branch1 | None,
        b2: Branch2 | None,
        out_channels: Sequence[int],
        act: str = "silu",
    ) -> None:
        super().__init__()
        if b1 is None and b2 is None:
            raise ValueError("DBFEN needs at least one branch")
        self.b1 = b1
        self.b2 = b2
        branches = [b for b in (b1, b2) if b is not None]
        self.fuse = nn.ModuleList(
            ConvBNAct(sum(b.out_channels[level] for b in branches), c_out, 1, act=act)
            for level, c_out in enumerate(out_channels)
        )
        self.out_channels = tuple(out_channels)
        self.strides = STRIDES

    def forward(self, x: Tensor) -> list[Tensor]:
        per_branch = []
        if self.b1 is not None:
            per_branch.append(self.b1(x))
        if self.b2 is not None:
            per_branch.append(self.b2(x))
        return [
            fuse(torch.cat([feats[level] for feats in per_branch], dim=1))
            for level, fuse in enumerate(self.fuse)
        ]
