"""The ACTIVE detector: backbone (DBFEN), neck (CCFPN), head, and :func:`build_model`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from active.models.backbone import DBFEN, Branch1, Branch2, MBStage
from active.models.head import YoloHead
from active.models.layers import SPP, ConvBNAct, make_divisible, scale_depth
from active.models.necks import CCFPN, CCFPNStage
from active.models.variants import (
    BASELINES,
    BRANCH1_DEPTHS,
    BRANCH1_WIDTHS,
    BRANCH2_STAGES,
    BRANCH2_STEM,
    EFFDET,
    NECK_DEPTH,
    NECK_WIDTHS,
    SCALES,
    TORCHVISION,
    ULTRALYTICS,
    VARIANTS,
    ModelConfig,
)


class Detector(nn.Module):
    """``backbone -> neck -> head``; returns raw per-level tensors in train and eval mode alike.

    ``forward(x)`` takes ``x`` of shape ``(B, 3, H, W)``, floats in [0, 1], H and W multiples of
    32, and returns one tensor per level, strides ``self.strides`` = (8, 16, 32) in that order,
    shaped ``(B, na, H/s, W/s, 5 + nc)``: ``tx, ty, tw, th, objectness, class logits``, all raw.

    ``anchors`` ``(nl, na, 2)``: anchor (w, h) in input pixels per level, kept as a buffer so it
    travels with the state dict and the device.
    """

    anchors: Tensor

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: YoloHead,
        anchors: Tensor | Sequence[Sequence[Sequence[float]]],
        class_names: Sequence[str],
        config: ModelConfig | None = None,
    ) -> None:
        super().__init__()
        anchors = torch.as_tensor(anchors, dtype=torch.float32)
        strides = tuple(int(s) for s in backbone.strides)
        if anchors.shape != (len(strides), head.num_anchors, 2):
            raise ValueError(
                f"anchors must be ({len(strides)}, {head.num_anchors}, 2), "
                f"got {tuple(anchors.shape)}"
            )
        if len(class_names) != head.num_classes:
            raise ValueError(f"{head.num_classes} classes but names {tuple(class_names)}")
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.register_buffer("anchors", anchors)
        self.strides: tuple[int, ...] = strides
        self.num_classes: int = head.num_classes
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.config = config
        self.backbone_frozen = False

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.head(self.neck(self.backbone(x)))

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Freeze (stage 1 of freeze training) or unfreeze the backbone.

        Frozen: no gradients for the backbone's parameters, and its BatchNorm layers stay in eval
        mode (running statistics fixed) even after ``model.train()``, so that the small batches
        of stage 1 do not drift the statistics of a pre-trained backbone.
        """
        self.backbone_frozen = frozen
        self.backbone.requires_grad_(not frozen)
        self.train(self.training)

    def fuse(self) -> Detector:
        """Fold every BatchNorm into its conv for faster inference; eval mode, irreversible.

        The outputs stay the same up to float rounding; the state dict loses its BN entries.
        """
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvBNAct):
                module.fuse()
        return self

    def train(self, mode: bool = True) -> Detector:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self


def build_backbone(cfg: ModelConfig) -> DBFEN:
    """DBFEN of ``cfg.scale`` with ``cfg.branches``; outputs at the neck's widths."""
    scale = SCALES[cfg.scale]
    depth, width = scale.depth, scale.width
    b1 = b2 = None
    if "b1" in cfg.branches:
        skip = 1 if scale.b1_stem_stride == 2 else 0  # the stem then stands in for stage 1
        b1 = Branch1(
            widths=[make_divisible(c * width) for c in BRANCH1_WIDTHS[skip:]],
            depths=[scale_depth(d, depth) for d in BRANCH1_DEPTHS[skip:]],
            stem_stride=scale.b1_stem_stride,
            act=cfg.act,
        )
    if "b2" in cfg.branches:
        expand = scale.b2_expand or [s.expand for s in BRANCH2_STAGES]
        repeats = scale.b2_repeats or [scale_depth(s.repeats, depth) for s in BRANCH2_STAGES]
        stages = [
            MBStage(e, make_divisible(s.channels * width), r, s.stride, s.kernel)
            for s, e, r in zip(BRANCH2_STAGES, expand, repeats, strict=True)
        ]
        b2 = Branch2(
            make_divisible(BRANCH2_STEM * width), stages, cfg.se_ratio, cfg.drop_connect, cfg.act
        )
    return DBFEN(b1, b2, neck_widths(cfg), act=cfg.act)


def neck_widths(cfg: ModelConfig) -> list[int]:
    """Channels of P3, P4, P5 at ``cfg.scale``."""
    return [make_divisible(c * SCALES[cfg.scale].width) for c in NECK_WIDTHS]


def build_neck(cfg: ModelConfig) -> CCFPN:
    """SPP (if the variant has it) and the variant's CCFPN stages at ``cfg.scale``."""
    variant = VARIANTS[cfg.variant]
    widths = neck_widths(cfg)
    depth = scale_depth(NECK_DEPTH, SCALES[cfg.scale].depth)
    spp = SPP(widths[-1], widths[-1], act=cfg.act) if variant.spp else None
    return CCFPN([CCFPNStage(kind, widths, depth, cfg.act) for kind in variant.neck], spp)


def build_baseline(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    """Backbone and neck of a YOLO baseline (``cfg.variant`` yolov3/yolov4) at ``cfg.scale``."""
    from active.models.baselines import (
        DARKNET53_DEPTHS,
        DARKNET53_WIDTHS,
        NECK_SETS,
        build_baseline_parts,
    )

    scale = SCALES[cfg.scale]
    skip = 1 if scale.b1_stem_stride == 2 else 0
    return build_baseline_parts(
        cfg.variant,
        [make_divisible(c * scale.width) for c in DARKNET53_WIDTHS[skip:]],
        [scale_depth(d, scale.depth) for d in DARKNET53_DEPTHS[skip:]],
        [make_divisible(c * scale.width) for c in NECK_SETS],
        scale.b1_stem_stride, cfg.act)


def build_model(cfg: ModelConfig) -> Detector:
    """The detector ``cfg`` describes, freshly initialised (no weights are loaded)."""
    if cfg.variant in TORCHVISION:
        from active.models.torchvision_models import TorchvisionDetector

        return TorchvisionDetector(cfg)  # type: ignore[return-value]
    if cfg.variant in EFFDET:
        from active.models.effdet_model import EfficientDetDetector

        return EfficientDetDetector(cfg)  # type: ignore[return-value]
    if cfg.variant in ULTRALYTICS:
        from active.models.ultralytics_model import UltralyticsDetector

        return UltralyticsDetector(cfg)  # type: ignore[return-value]
    if cfg.variant in BASELINES:
        backbone, neck = build_baseline(cfg)
    else:
        backbone, neck = build_backbone(cfg), build_neck(cfg)
    head = YoloHead(
        neck.out_channels,
        cfg.num_anchors,
        cfg.num_classes,
        cfg.strides,
        cfg.imgsz,
        cfg.objects_per_image,
        cfg.class_prior,
    )
    anchors = torch.tensor(cfg.anchors).view(len(cfg.strides), cfg.num_anchors, 2)
    if cfg.second_stage:
        from active.models.two_stage import TwoStageDetector

        return TwoStageDetector(backbone, neck, head, anchors, cfg.class_names, cfg)
    return Detector(backbone, neck, head, anchors, cfg.class_names, cfg)
