"""One annotated frame, the unit every reader returns and every later stage consumes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from active.errors import DataError


@dataclass
class FrameRecord:
    """An annotated frame.

    Attributes:
        boxes: (N, 4) float32 pixel xyxy, 0-based, exclusive right/bottom
            (see ``active.data.boxes``).
        labels: (N,) int64 indices into ``class_names``.
        class_names: the dataset's class names; ``labels`` index into them.
        video_id: the video the frame comes from (splits never put one video in two parts).
        frame_index: 0-based index of the frame in its video.
        width, height: image size in pixels.
        source: the annotation file the boxes were read from (named in errors).
        image_path: the frame's image file, if it has one.
        video_path: the video to decode frame ``frame_index`` from when there is no image file.
        track_ids: optional (N,) int64 object identities across frames (-1 where unknown).
        image_array: an in-memory H x W x 3 uint8 RGB image (synthetic data); overrides the files.
    """

    boxes: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    video_id: str
    frame_index: int
    width: int
    height: int
    source: Path | None = None
    image_path: Path | None = None
    video_path: Path | None = None
    track_ids: np.ndarray | None = None
    image_array: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(self.boxes) != len(self.labels):
            raise DataError(self.source, f"{len(self.boxes)} boxes but {len(self.labels)} labels")
        if self.track_ids is not None:
            self.track_ids = np.asarray(self.track_ids, dtype=np.int64).reshape(-1)
            if len(self.track_ids) != len(self.labels):
                raise DataError(self.source, "track_ids and labels differ in length")
        self.class_names = tuple(self.class_names)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={int((self.labels == i).sum())}"
                           for i, n in enumerate(self.class_names))
        where = self.image_path or self.video_path or ("memory" if self.image_array is not None
                                                       else None)
        return (f"FrameRecord({self.name}, {self.width}x{self.height}, {counts}, "
                f"tracks={'yes' if self.track_ids is not None else 'no'}, image={where})")

    @property
    def name(self) -> str:
        """A stable frame name, ``<video>_<frame index + 1 as 4 digits>`` like SVIA's."""
        return f"{self.video_id}_{self.frame_index + 1:04d}"

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image(self) -> np.ndarray:
        """The frame as H x W x 3 uint8 RGB, read from memory, its image file or its video."""
        if self.image_array is not None:
            return self.image_array
        if self.image_path is not None:
            from active.data.images import read_image

            img = read_image(self.image_path)
        elif self.video_path is not None:
            from active.data.video import read_frame

            img = read_frame(self.video_path, self.frame_index)
        else:
            raise DataError(self.source, f"frame {self.name} has no image, file or video")
        if img.shape[:2] != (self.height, self.width):
            where = self.image_path or self.video_path
            raise DataError(
                where,
                f"image is {img.shape[1]}x{img.shape[0]} but its annotation "
                f"{self.source} says {self.width}x{self.height}",
            )
        return img


#: A box partly outside its image is clipped when at least this share of its area is inside;
#: one mostly outside was drawn wrong (or for another image size) and is unusable.
MIN_INSIDE = 0.5


class LoadReport:
    """How a load treats problems, and a count of those it repaired, with one warning at the end.

    - An **unusable box** (a corner that is not a finite number, inverted, zero-size, or mostly
      outside the image) is a :class:`DataError` naming the file and the object, unless
      ``skip_bad_frames``: then its whole frame is dropped and counted. A frame is never kept
      with fewer boxes than its annotation has (its missing objects would train as background).
    - A **repairable problem** (a box partly outside the image, clipped; an annotation whose
      frame is missing, skipped) is counted and warned about; ``strict`` makes it an error.

    ``strict`` wins over ``skip_bad_frames``: a strict load stops at the first problem of any kind.
    """

    def __init__(self, strict: bool = False, skip_bad_frames: bool = False) -> None:
        self.strict = strict
        self.skip_bad_frames = skip_bad_frames
        self.counts: dict[str, int] = {}
        self.examples: dict[str, list[str]] = {}

    def problem(self, kind: str, path: Path | str | None, message: str) -> None:
        """Record one repairable problem of ``kind`` (or raise in strict mode)."""
        if self.strict:
            raise DataError(path, f"{message} (a lenient load would {kind})")
        self._count(kind, path, message)

    def _count(self, kind: str, path: Path | str | None, message: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1
        ex = self.examples.setdefault(kind, [])
        if len(ex) < 3:
            ex.append(f"{path}: {message}")

    def warn(self, what: str) -> None:
        """Emit one warning summarising every problem met while loading ``what``."""
        if not self.counts:
            return
        parts = [f"{n} x {kind}" for kind, n in self.counts.items()]
        lines = [f"{what}: repaired or skipped {', '.join(parts)} (a strict load makes these "
                 "errors)"]
        for ex in self.examples.values():
            lines.extend(f"  e.g. {e}" for e in ex)
        warnings.warn("\n".join(lines), UserWarning, stacklevel=3)

    def check_boxes(self, boxes: np.ndarray, width: int, height: int,
                    path: Path | str | None, where: Sequence[str] | None = None) -> bool:
        """Check one frame's (N, 4) xyxy boxes against its width x height image.

        Boxes partly outside the image are clipped in place (a counted repair). Returns True
        when the frame is usable, False when it is to be dropped whole (``skip_bad_frames`` and
        an unusable box); otherwise an unusable box raises a DataError naming ``path`` and
        ``where[i]`` (e.g. ``"line 3"``, ``"object 2 (S)"``; default ``"box i"``).
        """
        for i, b in enumerate(boxes):
            name = where[i] if where is not None else f"box {i}"
            coords = "[" + ", ".join(f"{float(v):g}" for v in b) + "] px (x1, y1, x2, y2)"
            reason = unusable_reason(b, width, height)
            if reason is not None:
                message = f"{name}: box {coords} {reason}"
                if self.skip_bad_frames and not self.strict:
                    self._count("drop a frame with an unusable box", path, message)
                    return False
                raise DataError(path, f"{message}; fix the annotation, or skip such frames "
                                      "whole (--skip-bad-frames)")
            clipped = np.array([min(max(b[0], 0), width), min(max(b[1], 0), height),
                                min(max(b[2], 0), width), min(max(b[3], 0), height)],
                               dtype=boxes.dtype)
            if not np.array_equal(clipped, b):
                self.problem("clip a box that leaves the image", path,
                             f"{name}: box {coords} extends outside the {width}x{height} image")
                boxes[i] = clipped
        return True


def unusable_reason(box: np.ndarray, width: int, height: int) -> str | None:
    """Why an xyxy box cannot be used on a width x height image, or None when it can (perhaps
    after clipping)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(np.isfinite((x1, y1, x2, y2))):
        return "has a corner that is not a finite number"
    if x2 < x1 or y2 < y1:
        return "is inverted (" + ("x2 < x1" if x2 < x1 else "y2 < y1") + ")"
    if x2 == x1 or y2 == y1:
        return "has zero size"
    inside = (max(0.0, min(x2, width) - max(x1, 0.0)) * max(0.0, min(y2, height) - max(y1, 0.0)))
    share = inside / ((x2 - x1) * (y2 - y1))
    if share < MIN_INSIDE:
        return (f"lies {'entirely' if share == 0 else 'mostly'} outside the {width}x{height} "
                f"image ({share:.0%} inside)")
    return None
