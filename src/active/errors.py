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


def describe_failure(exc: BaseException) -> str:
    """One line for a record of a failed job (the batch catalogue, the web page): ACTIVE's own
    message for a known failure (it names the file), else the exception's type and message and
    where it was raised, for a bug report."""
    import traceback

    if isinstance(exc, ActiveError | OSError):
        return str(exc) or type(exc).__name__
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    return f"{type(exc).__name__}: {exc}{at}"
