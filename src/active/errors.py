"""Errors that name the file they are about, so a user can find and fix the bad input."""

from __future__ import annotations

from pathlib import Path


class ActiveError(Exception):
    """Base class of every error ACTIVE raises on purpose."""


class DataError(ActiveError, ValueError):
    """Bad input data: a malformed annotation, an unknown class, a box outside the image, ...

    The message always starts with the offending file so that a user can open it.
    """

    def __init__(self, path: str | Path | None, message: str) -> None:
        self.path = None if path is None else Path(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)


class VideoError(DataError):
    """A video that cannot be opened or decoded."""


class CheckpointError(ActiveError, ValueError):
    """A checkpoint that is missing, corrupt or from an incompatible version."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


class UsageError(ActiveError, ValueError):
    """An argument that cannot work (an unknown backend, an input size that is not a multiple
    of the stride, ...)."""
