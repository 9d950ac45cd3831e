"""What ``active detect`` reads: an image, a folder of images, a glob or a video file, as one
stream of frames with their source, index and time. Every problem names the file."""

from __future__ import annotations

import glob
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from active.data.images import IMAGE_SUFFIXES, read_image
from active.data.video import VIDEO_SUFFIXES, VideoReader
from active.errors import DataError, VideoError

_GLOB_CHARS = set("*?[")


@dataclass
class SourceFrame:
    """One frame to detect on: RGB pixels, the file it came from, its index and time (video)."""

    image: np.ndarray
    source: str
    index: int
    time: float | None


class FrameSource:
    """Frames of one SOURCE argument. ``kind`` is ``"video"`` or ``"images"``; ``total`` the
    number of frames (a video's container count), ``fps`` the video's rate (None for images)."""

    def __init__(self, source: str | Path) -> None:
        text = str(source)
        self.name = text
        self.fps: float | None = None
        self.files: list[Path] = []
        self.video: VideoReader | None = None
        path = Path(text)
        if _GLOB_CHARS & set(text) and not path.exists():
            self.kind = "images"
            matched = sorted(Path(p) for p in glob.glob(text, recursive=True))
            self.files = [p for p in matched if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            if not self.files:
                raise DataError(path, f"the pattern matched no images ({len(matched)} paths, "
                                      f"image suffixes: {' '.join(IMAGE_SUFFIXES)})")
            self.stem = "glob"
        elif path.is_dir():
            self.kind = "images"
            self.files = sorted(p for p in path.iterdir()
                                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise DataError(path, "folder holds no images (suffixes: "
                                      f"{' '.join(IMAGE_SUFFIXES)})")
            self.stem = path.name or "images"
        elif not path.exists():
            raise DataError(path, "source not found")
        elif path.suffix.lower() in VIDEO_SUFFIXES:
            self.kind = "video"
            self.video = VideoReader(path)
            self.fps = self.video.fps
            self.stem = path.stem
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            self.kind = "images"
            self.files = [path]
            self.stem = path.stem
        else:
            raise DataError(path, f"unsupported file type {path.suffix or '(no suffix)'!r} "
                                  f"(images: {' '.join(IMAGE_SUFFIXES)}; videos: "
                                  f"{' '.join(VIDEO_SUFFIXES)})")

    @property
    def total(self) -> int:
        return len(self.video) if self.video is not None else len(self.files)

    def __iter__(self) -> Iterator[SourceFrame]:
        if self.video is None:
            for i, f in enumerate(self.files):
                yield SourceFrame(read_image(f), str(f), i, None)
            return
        count = 0
        expected = self.video.info.frames
        for frame in self.video:
            count += 1
            yield SourceFrame(frame.image, str(self.video.path), frame.index, frame.time)
        # A stream that stops well before the container's frame count is cut off: say so rather
        # than hand back counts for part of the video as if they were all of it.
        if expected > 0 and count < expected - max(1, expected // 100):
            raise VideoError(self.video.path, f"video ends after {count} of {expected} frames "
                                              "(truncated or corrupt stream)")

    def close(self) -> None:
        if self.video is not None:
            self.video.close()
