"""What turns pixels and frames into micrometres, seconds and millilitres: the user's calibration.

Nothing here has a silent default. µm/px comes from the microscope and camera (a stage
micrometer), the chamber depth from the slide, the dilution from the lab's protocol; the frame
rate from the video's container unless the user overrides it. A missing µm/px is allowed (tracks
and counts stay in pixels, no grade or concentration is computed, and the report says why); an
impossible value is an error that names its flag.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from active.data.scale import UM_PER_PX_RANGE
from active.errors import UsageError

#: Counting chambers are 10-100 µm deep (Makler 10, Leja 20, haemocytometer 100).
CHAMBER_DEPTH_RANGE_UM = (1.0, 1000.0)
#: Frame rates a CASA camera can have.
FPS_RANGE = (1.0, 2000.0)


def _finite(value: float, flag: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{flag}: {value!r} is not a number") from exc
    if not math.isfinite(v):
        raise UsageError(f"{flag}: {value!r} is not a finite number")
    return v


def check_um_per_px(value: float | None, flag: str = "--um-per-px") -> float | None:
    """``value`` if it is a plausible scale (or None); a :class:`UsageError` naming ``flag``."""
    if value is None:
        return None
    v = _finite(value, flag)
    lo, hi = UM_PER_PX_RANGE
    if v <= 0:
        raise UsageError(f"{flag} must be positive (micrometres per pixel), got {value}")
    if not lo <= v <= hi:
        raise UsageError(f"{flag} {value} is outside {lo}-{hi} µm/px: measure it with a stage "
                         "micrometer (e.g. 0.35 µm/px for SVIA-like 40x phase contrast); a value "
                         "in nm or mm per pixel must be converted to µm")
    return v


def check_fps(value: float | None, flag: str = "--fps") -> float | None:
    if value is None:
        return None
    v = _finite(value, flag)
    lo, hi = FPS_RANGE
    if not lo <= v <= hi:
        raise UsageError(f"{flag} must be between {lo:g} and {hi:g} frames per second, got {value}")
    return v


def check_depth(value: float, flag: str = "--chamber-depth") -> float:
    v = _finite(value, flag)
    lo, hi = CHAMBER_DEPTH_RANGE_UM
    if v <= 0:
        raise UsageError(f"{flag} must be positive (chamber depth in µm), got {value}")
    if not lo <= v <= hi:
        raise UsageError(f"{flag} {value} µm is outside {lo:g}-{hi:g} µm (chambers are 10-100 µm "
                         "deep: Makler 10, Leja 20)")
    return v


def check_dilution(value: float, flag: str = "--dilution") -> float:
    v = _finite(value, flag)
    if v < 1:
        raise UsageError(f"{flag} is the dilution factor (1 for neat semen, 2 for 1+1), "
                         f"must be >= 1, got {value}")
    return v


@dataclass(frozen=True)
class Calibration:
    """The physical frame of one sample's videos.

    Attributes:
        um_per_px: micrometres per pixel, or None when unknown (then no µm, grades or
            concentration).
        fps: frames per second that overrides every video's container rate (None: the
            container's, which must then be usable).
        chamber_depth_um: depth of the counting chamber in µm (None: no concentration).
        dilution: how much the semen was diluted before loading (1 = neat).
    """

    um_per_px: float | None = None
    fps: float | None = None
    chamber_depth_um: float | None = None
    dilution: float = 1.0

    def __post_init__(self) -> None:
        check_um_per_px(self.um_per_px)
        check_fps(self.fps)
        if self.chamber_depth_um is not None:
            check_depth(self.chamber_depth_um)
        check_dilution(self.dilution)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
