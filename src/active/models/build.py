"""Build the detector a :class:`~active.models.variants.ModelConfig` describes: ACTIVE's backbone
(DBFEN) and neck (CCFPN), the YOLOv3/YOLOv4 baselines, the second-stage ACTIVE and the external
models (torchvision, EfficientDet, Ultralytics).

The factory lives apart from :class:`~active.models.detector.Detector` because it builds that
class's subclass :class:`~active.models.two_stage.TwoStageDetector` too: in ``detector.py`` it made
an import circle. The external models are imported when asked for (each pulls a large library:
torchvision's detection models, effdet, ultralytics).
"""

from __future__ import annotations

import torch
from torch import nn

from active.models.backbone import DBFEN, Branch1, Branch2, MBStage
from active.models.detector import Detector
from active.models.head import YoloHead
from active.models.layers import SPP, make_divisible, scale_depth
from active.models.necks import CCFPN, CCFPNStage
from active.models.two_stage import TwoStageDetector
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
        return TwoStageDetector(backbone, neck, head, anchors, cfg.class_names, cfg)
    return Detector(backbone, neck, head, anchors, cfg.class_names, cfg)
