"""Drawing boxes on frames (OpenCV), shared by ``active data show`` and detection videos."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: RGB colours per class index: sperm green, impurity orange, then a few more for other datasets.
PALETTE = ((40, 220, 60), (255, 140, 0), (60, 140, 255), (230, 50, 200), (240, 230, 40))


def class_colour(label: int) -> tuple[int, int, int]:
    return PALETTE[int(label) % len(PALETTE)]


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    scores: np.ndarray | None = None,
    thickness: int = 1,
    show_labels: bool = True,
) -> np.ndarray:
    """Return a copy of an RGB image with (N, 4) pixel xyxy boxes drawn, coloured by class."""
    out = np.ascontiguousarray(image).copy()
    for i, (box, label) in enumerate(zip(np.asarray(boxes), np.asarray(labels), strict=True)):
        colour = class_colour(label)
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        cv2.rectangle(out, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, thickness)
        if show_labels:
            text = class_names[int(label)]
            if scores is not None:
                text += f" {float(scores[i]):.2f}"
            cv2.putText(out, text, (x0, max(8, y0 - 2)), cv2.FONT_HERSHEY_SIMPLEX, 0.3, colour, 1,
                        cv2.LINE_AA)
    return out


def draw_counts(image: np.ndarray, counts: dict[str, int], origin: tuple[int, int] = (8, 20)
                ) -> np.ndarray:
    """Write ``name: count`` lines on a dark band in the top-left corner (in place, returned)."""
    lines = [f"{k}: {v}" for k, v in counts.items()]
    h = 18 * len(lines) + 8
    w = 10 * max((len(s) for s in lines), default=0) + 16
    band = image[: origin[1] - 14 + h, : origin[0] - 6 + w]
    band[:] = (band * 0.4).astype(image.dtype)
    for i, line in enumerate(lines):
        colour = class_colour(i)
        cv2.putText(image, line, (origin[0], origin[1] + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    colour, 1, cv2.LINE_AA)
    return image
