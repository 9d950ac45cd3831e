"""The post-processing's thresholds (a plain dataclass: the torch and numpy paths share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NmsMode = Literal["diou", "iou"]


@dataclass(frozen=True)
class PostProcessConfig:
    """Thresholds of the post-processing.

    Defaults are for showing detections to a user; AP evaluation needs the low score threshold of
    :meth:`for_evaluation` so that the precision-recall curve reaches high recall. ``merge``
    (default on, not in the paper) moves each box the NMS keeps to the score-weighted mean of
    the boxes it suppressed (:func:`merge_suppressed`); ``merge=False`` is the paper's DIoU-NMS.
    """

    score_threshold: float = 0.25
    iou_threshold: float = 0.45
    max_det: int = 300
    pre_nms_topk: int = 3000
    nms: NmsMode = "diou"
    multi_label: bool = False
    agnostic: bool = False
    merge: bool = True  # weighted NMS: a kept box becomes the mean of the boxes it suppressed

    def __post_init__(self) -> None:
        if self.nms not in ("diou", "iou"):
            raise ValueError(f"nms must be 'diou' or 'iou', got {self.nms!r}")
        if not 0.0 <= self.iou_threshold <= 1.0 or not 0.0 <= self.score_threshold < 1.0:
            raise ValueError("thresholds must lie in [0, 1]")
        if self.max_det < 1 or self.pre_nms_topk < 1:
            raise ValueError("max_det and pre_nms_topk must be >= 1")

    @classmethod
    def for_evaluation(cls, **overrides: object) -> PostProcessConfig:
        """Score threshold 0.001 (as YOLOv5's val), everything else as the defaults."""
        return cls(**{"score_threshold": 0.001, **overrides})  # type: ignore[arg-type]
