"""The ``active`` command line: the top-level parser and the error handling. The subcommands live
in :mod:`active.commands`, one module per area; each parses its arguments and calls one library
function (what the tests call)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from collections.abc import Sequence

from active import __version__
from active.errors import ActiveError
from active.utils.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    from active.commands import analyze, calibrate, data, experiments, model, predict, serve

    parser = argparse.ArgumentParser(
        prog="active",
        description="ACTIVE: detect sperm and impurities in microscopic semen videos.",
    )
    parser.add_argument("--version", action="version", version=f"active {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for area in (data, model, experiments, predict, analyze, calibrate, serve):
        area.register(sub)
    return parser


def _describe(exc: BaseException) -> str:
    """The message of a known failure, in one line that names the file; never raises (an error
    handler that crashes would show a traceback after all)."""
    try:
        if isinstance(exc, OSError) and exc.filename is not None:
            where = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 else "")
            return f"{where}: {exc.strerror or type(exc).__name__}"
        text = str(exc).strip()
        return text or type(exc).__name__
    except Exception:  # the message itself is broken: say what kind it was
        return type(exc).__name__


#: OSErrors that are the user's input or output (a path that is missing, read-only, a file where
#: a folder is needed, ...): reported with the file, exit 2. Others (a full disk without a file
#: name, a driver failure) keep their traceback: they are not a mistake in the arguments.
_PATH_ERRORS = (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError,
                FileNotFoundError)


def _error(message: str) -> int:
    with contextlib.suppress(Exception):  # stderr itself is gone: the exit code still says it
        print(f"active: error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``active`` command; returns the exit code. Known failures (bad input, a flag that
    cannot work, a missing or unwritable path) print one line naming the file or flag and
    return 2 (argparse's own errors exit 2 too); docs/errors.md lists them. ACTIVE's own
    warnings (a frame dropped, a box clipped) print as ``active: warning: ...``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # restores the caller's warning display afterwards
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
            if category is UserWarning and "/active/" in filename.replace("\\", "/"):
                with contextlib.suppress(Exception):
                    print(f"active: warning: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except (ActiveError, ConfigError) as exc:
        return _error(_describe(exc))
    except _PATH_ERRORS as exc:
        if exc.filename is None:
            raise
        return _error(_describe(exc))
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("torch", "torchvision", "onnxscript"):
            raise
        return _error(f"'{args.command}' here needs PyTorch, which the base install leaves "
                      "out (detect, analyze, demo and calibrate with ONNX models do not): "
                      "pip install 'active-casa[train]'")
    except BrokenPipeError:  # `active ... | head`: the reader left; nothing more to say
        with contextlib.suppress(Exception):  # and no second error when Python flushes stdout
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            print("active: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
