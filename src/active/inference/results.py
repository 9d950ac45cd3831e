"""What a detection call returns: one :class:`Results` per frame."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Results:
    """Detections of one frame, in that frame's own pixel coordinates (letterbox undone).

    Attributes:
        xyxy: (N, 4) float32 pixel boxes ``x0, y0, x1, y1`` (0-based, exclusive right/bottom).
        conf: (N,) float32 scores (objectness x class probability), descending.
        cls: (N,) int64 class ids into ``names``.
        names: class names, e.g. ``("sperm", "impurity")``.
        source: the image file or video the frame came from (``None`` for an array).
        frame_index: 0-based frame number in a video (0 for an image).
        time: seconds from the start of the video (``None`` for an image).
        shape: the frame's (height, width).
    """

    xyxy: np.ndarray
    conf: np.ndarray
    cls: np.ndarray
    names: tuple[str, ...]
    shape: tuple[int, int]
    source: str | None = None
    frame_index: int = 0
    time: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.conf)

    def counts(self) -> dict[str, int]:
        """Number of detections per class name (every class present, zeros included)."""
        return {n: int((self.cls == i).sum()) for i, n in enumerate(self.names)}

    def numpy(self) -> np.ndarray:
        """(N, 6) float32 rows ``x0, y0, x1, y1, score, class``."""
        return np.concatenate([self.xyxy, self.conf[:, None], self.cls[:, None].astype(np.float32)],
                              axis=1).astype(np.float32)

    def to_json(self) -> list[dict[str, Any]]:
        """One dict per detection: source, frame, time, class name, score, pixel xyxy box."""
        return [{"source": self.source, "frame": self.frame_index,
                 "time": None if self.time is None else round(self.time, 4),
                 "class": self.names[int(c)], "score": round(float(s), 4),
                 "box": [round(float(v), 2) for v in b]}
                for b, s, c in zip(self.xyxy, self.conf, self.cls, strict=True)]

    def filter(self, classes: Sequence[str]) -> Results:
        """Only the detections of the named classes."""
        ids = [self.names.index(c) for c in classes]
        keep = np.isin(self.cls, ids)
        return Results(self.xyxy[keep], self.conf[keep], self.cls[keep], self.names, self.shape,
                       self.source, self.frame_index, self.time, dict(self.extra))

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        where = f"{self.source} frame {self.frame_index}" if self.source else "array"
        return f"Results({where}, {self.shape[1]}x{self.shape[0]}, {counts})"
