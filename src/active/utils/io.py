"""Atomic file writes (a reader never sees a half-written file, an interrupted run leaves none)
and a file's SHA-256 (how an export, a profile and a report name the exact model file)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` when the block succeeds.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so libraries that pick a format
    from the extension (OpenCV, matplotlib) still do. On an exception the temporary file is removed
    and ``path`` is left as it was.
    """
    path = Path(path)
    if path.is_dir():  # said now, with its own name, not as the rename of a temporary file
        raise IsADirectoryError(errno.EISDIR, "is a folder; a file name is needed here", str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:  # a file where a folder must be
        raise NotADirectoryError(errno.ENOTDIR, "is a file, not a folder",
                                 exc.filename or str(path.parent)) from None
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".part{suffix or path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the finished file the permissions a plain open() would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` on success."""
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as fh:
        yield fh


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=indent)
        fh.write("\n")


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_between(doc: str | Path, begin: str, end: str, block: str, heading: str = "") -> None:
    """Put ``block`` between the marker lines ``begin`` and ``end`` of the Markdown file ``doc``
    (how the benchmark scripts keep their tables in the docs), atomically; where the markers are
    missing, append them (after ``heading``, if given) with the block."""
    doc = Path(doc)
    text = doc.read_text(encoding="utf-8") if doc.is_file() else ""
    if begin in text and end in text.split(begin, 1)[1]:
        head, rest = text.split(begin, 1)
        text = f"{head}{begin}\n{block}\n{end}{rest.split(end, 1)[1]}"
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + (
            f"{heading}\n\n" if heading else "") + f"{begin}\n{block}\n{end}\n"
    write_text(doc, text)
