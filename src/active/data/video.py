"""Video reading (OpenCV): frames with their index and timestamp, and random access by index."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from active.errors import DataError, VideoError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".wmv", ".mpg", ".mpeg")
#: The smallest frame side read or written: a smaller video cannot show a sperm head (about 4 x
#: 3 µm), and the mp4v encoder cannot open 1-pixel frames at all.
MIN_SIDE_PX = 8

#: Image formats by their first bytes: a still image renamed to a video suffix opens in FFmpeg
#: as a one-frame "video" of unknown length; it is named as what it is instead.
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"),
                (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"GIF8", "GIF"))


def _image_kind(path: Path) -> str | None:
    """The image format ``path``'s first bytes say it is, or None."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _IMAGE_MAGIC if head.startswith(magic)), None)


@dataclass(frozen=True)
class VideoInfo:
    """What a video says about itself. ``frames`` is the container's count (may be approximate)."""

    path: Path
    fps: float
    frames: int
    width: int
    height: int
    #: False when the container states no usable frame rate (``fps`` then holds 30.0, a
    #: placeholder for playback only: anything measured in seconds must ask the user instead).
    fps_known: bool = True


@dataclass(frozen=True)
class Frame:
    """One decoded frame: H x W x 3 uint8 RGB, its 0-based index and its time in seconds."""

    image: np.ndarray
    index: int
    time: float


class VideoReader:
    """Iterate over a video's frames, or fetch one by index.

    >>> with VideoReader("S_0001.mp4") as video:          # doctest: +SKIP
    ...     for frame in video:
    ...         ...  # frame.image (RGB), frame.index, frame.time

    Errors (missing file, undecodable container, zero frames, a truncated stream when
    ``strict``) are :class:`VideoError` naming the file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(self.path, "video file not found")
        if self.path.stat().st_size == 0:
            raise VideoError(self.path, "video file is empty (0 bytes)")
        kind = _image_kind(self.path)
        if kind is not None:
            raise VideoError(self.path, f"is a {kind} image, not a video; give it its image "
                                        f"suffix (.{kind.lower()}) to detect on it as an image")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise VideoError(self.path, "cannot open video (corrupt or unsupported codec)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 0.0
        self.info = VideoInfo(
            path=self.path,
            fps=fps if fps > 0 else 30.0,
            # a container that does not say how many frames it holds reports <= 0 (or absurd)
            frames=max(0, int(min(self._cap.get(cv2.CAP_PROP_FRAME_COUNT), 2**31))),
            width=int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps_known=0 < fps <= 1000,
        )
        if self.info.width <= 0 or self.info.height <= 0:
            self.close()
            raise VideoError(self.path, "video has no readable video stream")
        if min(self.info.width, self.info.height) < MIN_SIDE_PX:
            self.close()
            raise VideoError(self.path, f"frames are {self.info.width}x{self.info.height} px: "
                                        f"too small to show a sperm head (at least "
                                        f"{MIN_SIDE_PX}x{MIN_SIDE_PX} px)")
        self._next = 0

    @property
    def fps(self) -> float:
        return self.info.fps

    def __len__(self) -> int:
        return self.info.frames

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __iter__(self) -> Iterator[Frame]:
        """Decode every frame from the start. Raises if the video yields no frame at all."""
        self._seek(0)
        count = 0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                break
            yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), count, count / self.fps)
            count += 1
        self._next = count
        if count == 0:
            raise VideoError(self.path, "video contains no decodable frames")

    def _seek(self, index: int) -> None:
        if self._cap is None:
            raise VideoError(self.path, "video is closed")
        if index != self._next:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            self._next = index

    def read(self, index: int) -> Frame:
        """Decode frame ``index`` (0-based). Sequential reads do not seek."""
        if index < 0:
            raise VideoError(self.path, f"frame index {index} is negative")
        self._seek(index)
        ok, bgr = self._cap.read()
        if not ok:
            self._next = -1
            raise VideoError(
                self.path, f"cannot decode frame {index} (video has ~{self.info.frames} frames)"
            )
        self._next = index + 1
        return Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index / self.fps)


_open_readers: dict[Path, VideoReader] = {}


def read_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame ``index`` of the video at ``path`` as H x W x 3 uint8 RGB.

    Keeps the most recently used video open, so reading a video's annotated frames in order does
    not reopen (or seek) it every time.
    """
    path = Path(path)
    reader = _open_readers.get(path)
    if reader is None:
        for old in _open_readers.values():
            old.close()
        _open_readers.clear()
        reader = _open_readers[path] = VideoReader(path)
    return reader.read(index).image


def write_video(path: str | Path, frames: list[np.ndarray] | Iterator[np.ndarray],
                fps: float = 30.0, fourcc: str = "mp4v") -> int:
    """Write RGB frames to a video atomically; returns the number of frames written."""
    from active.utils.io import atomic_path

    path = Path(path)
    count = 0
    with atomic_path(path) as tmp:
        writer = None
        try:
            for img in frames:
                if writer is None:
                    h, w = img.shape[:2]
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
                    if not writer.isOpened():
                        raise VideoError(path, f"cannot open a {fourcc} video writer for "
                                               f"{w}x{h} frames")
                writer.write(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
                count += 1
        finally:
            if writer is not None:
                writer.release()
        if count == 0:
            raise VideoError(path, "no frames to write")
    return count


class _H264:
    """An H.264/MP4 encoder (PyAV's libx264): what every browser's <video> plays, so the web page
    and a report opened from disk show the annotated video. OpenCV's pip wheels carry no H.264
    encoder (only MPEG-4 Part 2, which browsers do not play), hence PyAV here.

    yuv420p (the pixel format browsers decode) needs even sides: an odd side is padded by one
    edge-replicated pixel, never cropped. ``+faststart`` puts the index first so a page can start
    playing before the whole file has arrived. Two encoder threads: the pipeline around it has
    its own threads, and a third busy thread only slows a 2-core machine down.
    ``tune=zerolatency`` (no look-ahead, no B-frames, sliced threads) keeps no queue of frames
    inside the encoder: 22 MB less peak memory than the default tuning on a 698x528 video, and
    at CRF 23 (x264's default quality) files as small as CRF 20 with the default tuning
    (measured 2026-12-07, issue 31). Preset ``ultrafast``: on a 698x528 SVIA video, 2.1 ms per
    frame against 6.0 for ``veryfast`` (one thread), at 39.1 dB PSNR against 40.4 and a smaller
    file (1.8 against 2.7 MB per 300 frames): for a review video with boxes drawn on it, the
    CPU is worth more than the last dB. Frames go in as yuv420p converted by OpenCV (0.4-0.5
    ms less per frame than libswscale's rgb24 conversion inside the encoder).
    """

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        from fractions import Fraction

        import av

        w, h = size
        self.pad = (h % 2, w % 2)
        self.container = av.open(str(path), mode="w", format="mp4",
                                 options={"movflags": "+faststart"})
        rate = Fraction(fps).limit_denominator(1001)
        self.stream = self.container.add_stream("libx264", rate=rate)
        self.stream.width, self.stream.height = w + self.pad[1], h + self.pad[0]
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
        self.stream.codec_context.thread_count = 2
        self._frame = av.VideoFrame.from_ndarray  # kept: no import in the per-frame path

    def write(self, rgb: np.ndarray) -> None:
        if any(self.pad):
            rgb = np.pad(rgb, ((0, self.pad[0]), (0, self.pad[1]), (0, 0)), mode="edge")
        yuv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2YUV_I420)
        self.container.mux(self.stream.encode(self._frame(yuv, format="yuv420p")))

    def close(self) -> None:
        try:
            self.container.mux(self.stream.encode(None))  # flush the encoder's delayed frames
        finally:
            self.container.close()


class VideoWriter:
    """Write RGB frames one at a time, as H.264/MP4 (browser-playable), to a temporary file beside
    ``path``; :meth:`close` renames it onto ``path``, :meth:`abort` (or an exception inside
    ``with``) deletes it, so an interrupted run never leaves a video that looks finished. Every
    frame must have the first frame's size; ``name`` (e.g. the image file) goes into the error
    when one does not."""

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        from active.utils.io import atomic_path

        self.path = Path(path)
        self.fps = fps
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._writer: _H264 | None = None
        self.size: tuple[int, int] | None = None
        self.count = 0

    def write(self, image: np.ndarray, name: str | None = None) -> None:
        h, w = image.shape[:2]
        if self._writer is None:
            try:
                self._writer = _H264(self._tmp, self.fps, (w, h))
            except Exception as exc:  # PyAV raises its own FFmpeg error types
                raise VideoError(self.path, f"cannot open an H.264 video writer for {w}x{h} "
                                            f"frames at {self.fps} fps: {exc}") from exc
            self.size = (w, h)
        elif (w, h) != self.size:
            where = name or f"frame {self.count}"
            raise DataError(where, f"is {w}x{h} but the video {self.path.name} is "
                                   f"{self.size[0]}x{self.size[1]}; a video needs frames of one "
                                   "size (write annotated images instead)")
        self._writer.write(image)
        self.count += 1

    def close(self) -> Path:
        if self.count == 0:
            self.abort()
            raise VideoError(self.path, "no frames to write")
        writer, self._writer = self._writer, None
        try:
            writer.close()
        except BaseException:
            self.abort()
            raise
        self._ctx.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):  # the file is deleted next; its error is moot
                self._writer.close()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
