"""Uploads: the new-analysis form read straight from the request stream.

Each video is written to a temporary file under a generated name in ``DATA/tmp`` (the name the
browser sent is kept as text only) and stops being written the moment it passes the size limit;
the rest of the request is then read and thrown away (up to a cap), so that the browser receives
the page that says why rather than a broken connection. A file is then checked by its content,
never by its name: its first bytes must be a video container's, and the project's
:class:`~active.data.video.VideoReader` must open it and decode a frame. A failed upload leaves
no file behind.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

from python_multipart.multipart import MultipartParser, parse_options_header

from active.web.forms import LABELS, FieldError

#: Text fields are short: more than this is not the form.
MAX_FIELD_BYTES = 16 * 1024
MAX_FIELDS = 32
#: Past the size limit, the rest of a request is read (so the browser shows the answer) for up
#: to this many times the limit; then the connection is dropped.
DRAIN_FACTOR = 4

#: Container signatures: (offset, bytes, format name, the suffix the stored file gets).
_CONTAINERS = (
    (4, b"ftyp", "MP4/MOV", ".mp4"), (4, b"moov", "QuickTime", ".mov"),
    (4, b"mdat", "QuickTime", ".mov"), (4, b"wide", "QuickTime", ".mov"),
    (4, b"free", "QuickTime", ".mov"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM", ".mkv"),
    (0, bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c"), "WMV/ASF", ".wmv"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream", ".mpg"),
    (0, b"\x00\x00\x01\xb3", "MPEG video", ".mpg"),
)
_IMAGES = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
           (b"GIF8", "a GIF image"), (b"BM", "a BMP image"), (b"II*\x00", "a TIFF image"),
           (b"MM\x00*", "a TIFF image"), (b"%PDF", "a PDF document"),
           (b"PK\x03\x04", "a ZIP archive or office document"))


@dataclass
class Upload:
    """One uploaded file: the name the browser sent (shown only), where it is stored now, its
    size in bytes, and (once checked) its suffix and what the video says about itself."""

    name: str
    path: Path
    size: int = 0
    suffix: str = ""
    frames: int = 0
    fps: float = 0.0
    fps_known: bool = True
    width: int = 0
    height: int = 0


@dataclass
class Submission:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[Upload] = field(default_factory=list)

    def discard(self) -> None:
        for f in self.files:
            f.path.unlink(missing_ok=True)
        self.files.clear()


def megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10e6 else f"{n / 1e6:.0f} MB"


class _Parts:
    """python-multipart's callbacks: fields into memory, files into temporary files."""

    def __init__(self, tmp: Path, max_bytes: int, max_files: int) -> None:
        self.tmp, self.max_bytes, self.max_files = tmp, max_bytes, max_files
        self.out = Submission()
        self.error: FieldError | None = None
        self._header_name = self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._file: Upload | None = None
        self._fh: IO[bytes] | None = None
        self._data = bytearray()
        self._skip = False

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self.begin, "on_part_data": self.data,
                "on_part_end": self.end, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished}

    def fail(self, error: FieldError) -> None:
        if self.error is None:
            self.error = error
        self._close(keep=False)
        self._skip = True

    def begin(self) -> None:
        self._disposition, self._data, self._file, self._skip = b"", bytearray(), None, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self.error is not None:
            self._skip = True
        elif b"filename" not in options:
            if len(self.out.fields) >= MAX_FIELDS:
                self.fail(FieldError("videos", "the form has too many fields"))
        elif self._name != "videos":
            self._skip = True  # a file in a field that takes none
        else:
            filename = options[b"filename"].decode("utf-8", "replace")
            name = Path(filename.replace("\\", "/")).name  # shown only: no folders
            if not filename:
                self._skip = True  # the browser sends an empty part when none was chosen
            elif len(self.out.files) >= self.max_files:
                self.fail(FieldError("videos", f"at most {self.max_files} videos per sample"))
            else:
                self._file = Upload(name, self.tmp / f"{secrets.token_hex(8)}.upload")
                self._fh = open(self._file.path, "wb")  # noqa: SIM115 - closed in end()

    def data(self, data: bytes, start: int, end: int) -> None:
        if self._skip:
            return
        chunk = data[start:end]
        if self._file is None:
            self._data += chunk
            if len(self._data) > MAX_FIELD_BYTES:
                self.fail(FieldError(self._name if self._name in LABELS else "videos",
                                     f"longer than {MAX_FIELD_BYTES} bytes"))
            return
        self._file.size += len(chunk)
        if self._file.size > self.max_bytes:
            self.fail(FieldError("videos", f"{self._file.name} is larger than the limit of "
                                 f"{megabytes(self.max_bytes)} per video (the server's "
                                 "--max-upload-mb); nothing was stored", status=413))
            return
        assert self._fh is not None
        self._fh.write(chunk)

    def end(self) -> None:
        if self._skip:
            return
        if self._file is not None:
            self._close(keep=True)
        else:
            try:
                self.out.fields[self._name] = self._data.decode("utf-8")
            except UnicodeDecodeError:
                self.fail(FieldError(self._name, "not valid text (UTF-8)"))

    def _close(self, keep: bool) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._file is not None:
            if keep:
                self.out.files.append(self._file)
            else:
                self._file.path.unlink(missing_ok=True)
            self._file = None


async def read_form(request: Any, tmp: Path, max_bytes: int, max_files: int) -> Submission:
    """The request's multipart form: text fields, and the files of field ``videos`` stored in
    ``tmp``. Raises :class:`FieldError` (and stores nothing) for a file over ``max_bytes``, more
    than ``max_files`` files, or a request that is not such a form."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind == b"application/x-www-form-urlencoded":  # a form without files (a script's)
        return Submission(await _text_fields(request))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise FieldError("videos", "send the form from the page (multipart/form-data)")
    cap = DRAIN_FACTOR * max_bytes * max_files + (1 << 20)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:  # refused before a byte is read
        raise FieldError("videos", f"the upload is {megabytes(int(declared))}, far over the "
                         f"limit of {megabytes(max_bytes)} per video; nothing was stored", 413)
    parts = _Parts(tmp, max_bytes, max_files)
    parser = MultipartParser(options[b"boundary"], parts.callbacks())
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            parser.write(chunk)
            if parts.error is not None and seen > cap:
                break  # stop reading: the connection will be closed
        else:
            parser.finalize()
    except Exception as exc:
        parts.fail(FieldError("videos", f"the upload was cut off or malformed ({exc})"))
    finally:
        parts._close(keep=False)
    if parts.error is not None:
        parts.out.discard()
        raise parts.error
    return parts.out


async def _text_fields(request: Any) -> dict[str, str]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FIELD_BYTES * MAX_FIELDS:
            raise FieldError("videos", "the form is too long")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise FieldError("videos", "the form is not valid text (UTF-8)") from None


def _what_is(head: bytes) -> tuple[str | None, str]:
    """(suffix, format) for a video container's first bytes, or (None, what it is instead)."""
    for offset, magic, name, suffix in _CONTAINERS:
        if head[offset:offset + len(magic)] == magic:
            return suffix, name
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return ".avi", "AVI"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return ".ts", "MPEG transport stream"
    for magic, name in _IMAGES:
        if head.startswith(magic):
            return None, name
    sample = head[:1024]
    with contextlib.suppress(UnicodeDecodeError):
        text = sample.decode("utf-8")
        if all(c.isprintable() or c in "\r\n\t" for c in text):
            return None, "a text file"
    return None, "not a video format this page knows"


def check_video(up: Upload) -> None:
    """Check ``up`` by its content (module docstring), give its stored file the suffix of its
    container, and fill in its frames, frame rate and size; a :class:`FieldError` naming the
    file otherwise."""
    if up.size == 0:
        raise FieldError("videos", f"{up.name} is empty (0 bytes): choose the video file itself")
    with open(up.path, "rb") as fh:
        head = fh.read(4096)
    suffix, what = _what_is(head)
    if suffix is None:
        raise FieldError("videos", f"{up.name} is {what}, not a video (whatever its name says); "
                         "choose the microscope's video file (MP4, AVI, MOV, MKV, WMV, MPEG)")
    stored = up.path.with_suffix(suffix)
    up.path.rename(stored)
    up.path, up.suffix = stored, suffix
    from active.data.video import VideoReader
    from active.errors import VideoError

    try:
        with VideoReader(stored) as video:
            next(iter(video))
            info = video.info
    except VideoError as exc:
        raise FieldError("videos", f"{up.name} looks like {what} but cannot be read as a video "
                         f"({exc.reason}); it may be damaged or cut short") from None
    except Exception as exc:  # a decoder's own failure: said, never a stack trace
        raise FieldError("videos", f"{up.name} cannot be decoded ({type(exc).__name__}); it may "
                         "be damaged or use a codec this server cannot read") from None
    up.frames, up.fps, up.fps_known = info.frames, info.fps, info.fps_known
    up.width, up.height = info.width, info.height
