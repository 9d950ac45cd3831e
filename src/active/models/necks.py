"""CCFPN, the cross-conjugate feature pyramid, in its four variants, written as data.

Levels are numbered 0, 1, 2 for strides 8, 16, 32 (P3, P4, P5). A stage computes three outputs in
a fixed order; each output fuses a list of sources, where ``("P", l)`` is the stage's input at
level ``l`` and ``("O", l)`` an output of the same stage computed earlier. A source at a finer
level is brought down by 3x3 stride-2 convs (one per level), a coarser one up by a 1x1 conv and
nearest upsampling (x2 per level); the maps are concatenated and mixed by a CSP block. An output
with a single source is that source unchanged. Stages chain: ACTIVE-II = I then II,
ACTIVE-IV = III then IV.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from active.models.layers import ConvBNAct, CSPFuse

Source = tuple[str, int]
StageSpec = tuple[tuple[int, tuple[Source, ...]], ...]

CCFPN_SPECS: dict[str, StageSpec] = {
    # I, cross top-down: O5 = Fuse(P5, Down P4); O4 = Fuse(P4, Up O5, Down P3); O3 = Fuse(P3, Up O4)
    "I": (
        (2, (("P", 2), ("P", 1))),
        (1, (("P", 1), ("O", 2), ("P", 0))),
        (0, (("P", 0), ("O", 1))),
    ),
    # II, bottom-up after I: N3 = O3; N4 = Fuse(O4, Down N3); N5 = Fuse(O5, Down N4)
    "II": (
        (0, (("P", 0),)),
        (1, (("P", 1), ("O", 0))),
        (2, (("P", 2), ("O", 1))),
    ),
    # III, all-to-all top-down: O5 = Fuse(P5, Down P4, Down² P3); O4 = Fuse(P4, Up O5, Down P3);
    # O3 = Fuse(P3, Up O4, Up² O5)
    "III": (
        (2, (("P", 2), ("P", 1), ("P", 0))),
        (1, (("P", 1), ("O", 2), ("P", 0))),
        (0, (("P", 0), ("O", 1), ("O", 2))),
    ),
    # IV, dense bottom-up after III: N3 = O3; N4 = Fuse(O4, Down N3);
    # N5 = Fuse(O5, Down N4, Down² N3)
    "IV": (
        (0, (("P", 0),)),
        (1, (("P", 1), ("O", 0))),
        (2, (("P", 2), ("O", 1), ("O", 0))),
    ),
}


def resample(c_in: int, c_out: int, levels: int, act: str = "silu") -> nn.Module:
    """Move a map by ``levels`` pyramid levels: > 0 coarser (Down), < 0 finer (Up), 0 identity.

    Down: ``levels`` 3x3 stride-2 Conv-BN-act; Up: 1x1 Conv-BN-act then nearest x ``2**-levels``.
    """
    if levels == 0:
        return nn.Identity() if c_in == c_out else ConvBNAct(c_in, c_out, 1, act=act)
    if levels > 0:
        convs = [ConvBNAct(c_in if i == 0 else c_out, c_out, 3, 2, act=act) for i in range(levels)]
        return nn.Sequential(*convs)
    return nn.Sequential(
        ConvBNAct(c_in, c_out, 1, act=act), nn.Upsample(scale_factor=2**-levels, mode="nearest")
    )


class FuseNode(nn.Module):
    """One output of a CCFPN stage: resample each source to the target level, concat, CSP block.

    ``forward(maps)`` takes the sources' maps in the order of ``sources`` and returns
    ``(B, width, H_t, W_t)`` at the target level.
    """

    def __init__(
        self,
        target: int,
        sources: Sequence[Source],
        widths: Sequence[int],
        depth: int,
        act: str = "silu",
    ) -> None:
        super().__init__()
        c_out = widths[target]
        self.resample = nn.ModuleList(
            resample(widths[level], c_out, target - level, act) for _, level in sources
        )
        single = len(sources) == 1
        self.fuse = nn.Identity() if single else CSPFuse(c_out * len(sources), c_out, depth, act)

    def forward(self, maps: Sequence[Tensor]) -> Tensor:
        moved = [r(m) for r, m in zip(self.resample, maps, strict=True)]
        return self.fuse(torch.cat(moved, dim=1)) if len(moved) > 1 else self.fuse(moved[0])


class CCFPNStage(nn.Module):
    """One CCFPN variant (``"I"`` … ``"IV"``): ``[X3, X4, X5]`` -> ``[O3, O4, O5]``, same shapes.

    Level ``l`` keeps ``widths[l]`` channels; ``depth`` is the CSP blocks' depth.
    """

    def __init__(self, kind: str, widths: Sequence[int], depth: int, act: str = "silu") -> None:
        super().__init__()
        if kind not in CCFPN_SPECS:
            raise ValueError(f"unknown CCFPN variant {kind!r} (known: {', '.join(CCFPN_SPECS)})")
        self.kind = kind
        self.spec = CCFPN_SPECS[kind]
        self.nodes = nn.ModuleList(
            FuseNode(target, sources, widths, depth, act) for target, sources in self.spec
        )
        self.out_channels = tuple(widths)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        outs: dict[int, Tensor] = {}
        for (target, sources), node in zip(self.spec, self.nodes, strict=True):
            maps = [feats[lvl] if kind == "P" else outs[lvl] for kind, lvl in sources]
            outs[target] = node(maps)
        return [outs[level] for level in range(len(feats))]


class CCFPN(nn.Module):
    """The neck: optional SPP on the stride-32 input, then CCFPN stages in order.

    ``[P3, P4, P5]`` with widths ``out_channels`` -> ``[N3, N4, N5]`` of the same shapes.
    """

    def __init__(self, stages: Sequence[CCFPNStage], spp: nn.Module | None = None) -> None:
        super().__init__()
        if not stages:
            raise ValueError("CCFPN needs at least one stage")
        self.spp = spp
        self.stages = nn.ModuleList(stages)
        self.out_channels = stages[-1].out_channels

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        feats = list(feats)
        if self.spp is not None:
            feats[-1] = self.spp(feats[-1])
        for stage in self.stages:
            feats = stage(feats)
        return feats
