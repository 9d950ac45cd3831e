"""Argument types shared by every subcommand: a number is checked once, by its parser, so a bad
value is refused before any work with argparse's own message, which names the flag (exit 2).

Each function here is an argparse ``type=``: it takes the raw text and returns the value or
raises :class:`argparse.ArgumentTypeError` with a sentence a user can act on. Non-finite floats
(``nan``, ``inf``) are refused everywhere: no threshold or size is meaningful as either.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _int(text: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _float(text: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_at_least(low: int, what: str = "") -> Callable[[str], int]:
    """A whole number >= ``low``; ``what`` says what it counts in the error."""

    def parse(text: str) -> int:
        value = _int(text)
        if value < low:
            raise argparse.ArgumentTypeError(
                f"must be at least {low}{f' ({what})' if what else ''}, got {value}")
        return value

    parse.__name__ = f"int>={low}"
    return parse


#: 1, 2, 3, ...: counts of things that must exist (frames, threads, a batch, epochs ...).
positive_int = int_at_least(1)
#: 0, 1, 2, ...: seeds, fold indices, counts where 0 means none.
non_negative_int = int_at_least(0)


def float_range(low: float, high: float, low_open: bool = False, high_open: bool = False,
                what: str = "") -> Callable[[str], float]:
    """A finite number in ``[low, high]`` (an open end excludes its bound)."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"

    def parse(text: str) -> float:
        value = _float(text)
        if (value < low or (low_open and value == low) or value > high
                or (high_open and value == high)):
            raise argparse.ArgumentTypeError(
                f"{what or f'must be in {left}{low:g}, {high:g}{right}'}, got {value:g}")
        return value

    parse.__name__ = f"number in {left}{low:g}, {high:g}{right}"
    return parse


def image_side(text: str) -> int:
    """A network input side in pixels: a multiple of 32 (the largest stride) up to 4096 (what an
    exported model accepts; larger inputs only exhaust memory)."""
    value = _int(text)
    if value % 32 or not 32 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be a multiple of 32 from 32 to 4096 px, got "
                                         f"{value}")
    return value


#: A score or IoU threshold: a probability in [0, 1].
probability = float_range(0.0, 1.0, what="must be a threshold between 0 and 1")


def positive_float(text: str) -> float:
    """A finite number > 0 (sizes, ratios)."""
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0 (weights, ratios of which some may be 0)."""
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value:g}")
    return value


def folds(text: str) -> int:
    """``data split --folds``: 0 (a ratio split instead) or k >= 2."""
    value = _int(text)
    if value < 0 or value == 1:
        raise argparse.ArgumentTypeError(f"k folds need k >= 2 (0: a ratio split), got {value}")
    return value


def device(text: str) -> str:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; whether the machine has it is checked
    where the device is opened (without importing PyTorch here)."""
    value = str(text).strip()
    if not _DEVICE.match(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device (auto, cpu, cuda, cuda:N)")
    return value


def add_overwrite(p: argparse.ArgumentParser, what: str = "the output folder") -> None:
    """The ``--overwrite`` flag of every command that writes a folder (docs/errors.md)."""
    p.add_argument("--overwrite", action="store_true",
                   help=f"empty {what} first when an earlier ACTIVE run wrote it (without it a "
                   "non-empty --out is refused, and a default folder gets a new numbered name)")


def add_skip_bad_frames(p: argparse.ArgumentParser) -> None:
    """The ``--skip-bad-frames`` flag of every command that loads annotated data."""
    p.add_argument("--skip-bad-frames", action="store_true",
                   help="drop a whole frame (with a warning) when one of its boxes is unusable "
                   "(not finite, inverted, zero-size or mostly outside the image) instead of "
                   "stopping with an error; a frame is never kept with fewer boxes")
