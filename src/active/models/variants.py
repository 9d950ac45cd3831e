"""The ACTIVE family, its scales and the model config, as data on one screen.

A variant names its CCFPN stages and whether SPP sits on the stride-32 feature; a scale multiplies
the paper-size depths and widths (YOLOv5/YOLOX style). :class:`ModelConfig` is everything
:func:`active.models.build.build_model` needs, and round-trips through a JSON-friendly dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

from active.data.classes import DEFAULT_CLASSES
from active.models.backbone import MBStage


class Variant(NamedTuple):
    name: str
    neck: tuple[str, ...]  # CCFPN stages, in order (see active.models.necks.CCFPN_SPECS)
    spp: bool  # SPP (max-pools 5/9/13) on the stride-32 feature before the neck


class Scale(NamedTuple):
    """Depth and width multipliers (YOLOv5 style), plus the CPU-speed tweaks of small scales."""

    depth: float  # multiplies block repeats (at least 1 each)
    width: float  # multiplies channels (rounded to multiples of 8)
    b1_stem_stride: int = 1  # 2: a stride-2 stem replaces CSPDarknet53's stage 1 (YOLOv5 layout)
    b2_expand: tuple[float, ...] | None = None  # MBConv expansion per stage; None: B0's
    b2_repeats: tuple[int, ...] | None = None  # MBConv repeats per stage (0 drops it); None: scaled


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("active-i", ("I",), spp=False),
        Variant("active-ii", ("I", "II"), spp=False),
        Variant("active-iii", ("III",), spp=False),
        Variant("active-iv", ("III", "IV"), spp=False),
        Variant("active-v", ("I",), spp=True),
        Variant("active-vi", ("I", "II"), spp=True),
        Variant("active-vii", ("III",), spp=True),
        Variant("active-viii", ("III", "IV"), spp=True),
    )
}

#: The paper's YOLO baselines (active.models.baselines), built at the same scales with the same
#: head, criterion and NMS: ``model.variant: yolov3`` or ``yolov4``.
BASELINES: dict[str, Variant] = {
    "yolov3": Variant("yolov3", (), spp=False),  # Darknet-53 + FPN
    "yolov4": Variant("yolov4", (), spp=True),  # CSPDarknet53 + SPP + PANet
}

#: torchvision's detection models as baselines (active.models.torchvision_models):
#: ``model.variant: faster-rcnn`` or ``ssd``; the scale picks the backbone.
TORCHVISION: dict[str, Variant] = {
    "faster-rcnn": Variant("faster-rcnn", (), spp=False),  # ResNet-50/34/18 + FPN
    "ssd": Variant("ssd", (), spp=False),  # VGG-16 (paper) or SSDlite MobileNetV3
}

#: EfficientDet-D2 from the optional ``effdet`` package (active.models.effdet_model), the same
#: network at every scale: ``model.variant: efficientdet-d2``.
EFFDET: dict[str, Variant] = {"efficientdet-d2": Variant("efficientdet-d2", (), spp=False)}

#: Ultralytics' networks from the optional ``ultralytics`` package
#: (active.models.ultralytics_model), the same network at every scale.
ULTRALYTICS: dict[str, Variant] = {n: Variant(n, (), spp=False) for n in ("yolov8n", "yolo11n")}

#: Models that bring their own loss and post-processing (``returns_detections``).
EXTERNAL: dict[str, Variant] = {**TORCHVISION, **EFFDET, **ULTRALYTICS}


def supports_tta(variant: str) -> bool:
    """Whether flip TTA (:mod:`active.models.tta`) can run on a model: it needs the candidates
    before NMS, which ACTIVE, YOLOv3/v4, the torchvision models and the Ultralytics networks give
    (``candidate_rows`` for the external ones) and EfficientDet (NMS inside ``effdet``) does not."""
    return variant.lower() not in EFFDET

# fmt: off
SCALES: dict[str, Scale] = {
    "paper": Scale(depth=1.0, width=1.0),  # CSPDarknet53 + EfficientNet-B0, neck 128/256/512
    "s": Scale(depth=0.33, width=0.5),
    # n: tuned to beat YOLOv8n on a 2-core CPU (docs/models.md): no full-size stages, no 6x
    # expansion at stride 2, EfficientNet's stride-2 stage 1 dropped (MobileNetV3-like start)
    "n": Scale(depth=0.25, width=0.25, b1_stem_stride=2,
               b2_expand=(1, 1, 6, 6, 6, 6, 6), b2_repeats=(0, 1, 1, 1, 1, 1, 1)),
    "tiny": Scale(depth=0.01, width=0.0625),  # for tests: every width 8, every depth 1
}
# fmt: on

# Paper-size architecture (scale "paper"); the scales above multiply these.
BRANCH1_WIDTHS = (32, 64, 128, 256, 512, 1024)  # CSPDarknet53: stem, stages 1-5
BRANCH1_DEPTHS = (1, 2, 8, 8, 4)  # residual units per stage
BRANCH2_STEM = 32  # EfficientNet-B0
BRANCH2_STAGES = (
    MBStage(expand=1, channels=16, repeats=1, stride=1),
    MBStage(expand=6, channels=24, repeats=2, stride=2),
    MBStage(expand=6, channels=40, repeats=2, stride=2),  # stride 8
    MBStage(expand=6, channels=80, repeats=3, stride=2),
    MBStage(expand=6, channels=112, repeats=3, stride=1),  # stride 16
    MBStage(expand=6, channels=192, repeats=4, stride=2),
    MBStage(expand=6, channels=320, repeats=1, stride=1),  # stride 32
)
NECK_WIDTHS = (128, 256, 512)  # P3, P4, P5
NECK_DEPTH = 2  # (1x1, 3x3) pairs per CSP fuse block

# Anchor (w, h) in input pixels at 416x416 for SVIA until k-means ones are fitted: sperm heads
# about 9 px (stride 8), impurities about 15-35 px (strides 16/32). Sorted by area, 3 per level.
SVIA_ANCHORS_416 = (
    (5.0, 6.0), (8.0, 8.0), (11.0, 11.0),
    (15.0, 14.0), (20.0, 20.0), (27.0, 25.0),
    (34.0, 33.0), (46.0, 44.0), (70.0, 66.0),
)  # fmt: skip


def get_variant(name: str) -> Variant:
    """The variant called ``name`` (case-insensitive, e.g. ``"ACTIVE-IV"``)."""
    key = name.strip().lower()
    if key in BASELINES:
        return BASELINES[key]
    if key in EXTERNAL:
        return EXTERNAL[key]
    if key not in VARIANTS:
        raise ValueError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)}, "
                         f"{', '.join(BASELINES)}, {', '.join(EXTERNAL)})")
    return VARIANTS[key]


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a network; stored in checkpoints via :meth:`to_dict`."""

    variant: str = "active-i"
    scale: str = "n"
    num_classes: int = 2
    class_names: tuple[str, ...] = DEFAULT_CLASSES.names
    branches: tuple[str, ...] = ("b1", "b2")  # DBFEN branches; one of them for the ablation
    anchors: tuple[tuple[float, float], ...] = SVIA_ANCHORS_416  # (w, h) px, sorted by area
    strides: tuple[int, ...] = (8, 16, 32)
    imgsz: tuple[int, int] = (416, 416)  # training input (H, W); used for the head's bias prior
    act: str = "silu"
    se_ratio: float = 0.25
    drop_connect: float = 0.2  # largest drop-connect probability in branch 2
    objects_per_image: float = 10.0  # objectness bias prior
    class_prior: float = 0.01  # class bias prior
    second_stage: bool = False  # an RoI head re-scores the proposals (active.models.two_stage)
    roi_context: float = 1.0  # >1: the RoI head also pools a box this many times each proposal

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, "variant", get_variant(self.variant).name)
        set_(self, "class_names", tuple(self.class_names))
        set_(self, "branches", tuple(self.branches))
        set_(self, "strides", tuple(int(s) for s in self.strides))
        set_(self, "imgsz", (int(self.imgsz[0]), int(self.imgsz[1])))
        anchors = sorted(((float(w), float(h)) for w, h in self.anchors), key=lambda a: a[0] * a[1])
        set_(self, "anchors", tuple(anchors))
        if self.scale not in SCALES:
            raise ValueError(f"unknown scale {self.scale!r} (known: {', '.join(SCALES)})")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.num_classes} classes but names {self.class_names}")
        if (self.variant in BASELINES or self.variant in EXTERNAL) and self.branches != (
                "b1", "b2"):
            raise ValueError(f"{self.variant} has one backbone; branches apply to ACTIVE only")
        if self.second_stage and self.variant in EXTERNAL:
            raise ValueError(f"second_stage applies to ACTIVE and YOLOv3/v4, not {self.variant}")
        set_(self, "roi_context", float(self.roi_context))
        if not 1.0 <= self.roi_context <= 8.0:
            raise ValueError(f"roi_context must be in [1, 8], got {self.roi_context}")
        if self.roi_context != 1.0 and not self.second_stage:
            raise ValueError("roi_context applies to the second stage (model.second_stage: true)")
        if not self.branches or not set(self.branches) <= {"b1", "b2"}:
            raise ValueError(
                f"branches must be a non-empty subset of ('b1', 'b2'): {self.branches}"
            )
        if self.strides != (8, 16, 32):
            raise ValueError(f"only strides (8, 16, 32) are built, got {self.strides}")
        if len(self.anchors) % len(self.strides) or any(min(a) <= 0 for a in self.anchors):
            raise ValueError(f"need positive anchors, a multiple of {len(self.strides)}")
        if self.imgsz[0] % 32 or self.imgsz[1] % 32:
            raise ValueError(f"imgsz must be multiples of 32, got {self.imgsz}")

    @property
    def num_anchors(self) -> int:
        """Anchors per level."""
        return len(self.anchors) // len(self.strides)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (lists instead of tuples)."""

        def plain(v: Any) -> Any:
            return [plain(x) for x in v] if isinstance(v, tuple | list) else v

        return {k: plain(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error, missing ones take defaults."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelConfig keys: {sorted(unknown)}")
        return cls(**data)
