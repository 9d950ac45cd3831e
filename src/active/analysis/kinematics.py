"""Sperm kinematics as the WHO laboratory manual (6th edition, 2021, section 3.5 / CASA) defines
them, one function per parameter; the average path is computed once and handed to those that
need it.

Every function takes a path ``xy`` (K, 2) sampled at consecutive frames (one row per frame, gaps
already interpolated) in a length unit (µm when calibrated, else px) and the frame rate; speeds
come back in that unit per second. Below 60 frames/s VCL is underestimated (the head's wiggle
between frames is missed) and ALH and BCF are unreliable; :func:`kinematics` says so in
``flags``, it does not hide the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: WHO: "VCL ... is underestimated at low frame rates"; 60 Hz is the rate the manual asks for.
MIN_RELIABLE_FPS = 60.0


def average_path(xy: np.ndarray, window: int = 5) -> np.ndarray:
    """Centred moving average of ``window`` points: (K - window + 1, 2), empty if K < window."""
    k = len(xy)
    if window < 1 or k < window:
        return np.zeros((0, 2))
    c = np.cumsum(np.vstack([np.zeros((1, 2)), xy]), axis=0)
    return (c[window:] - c[:-window]) / window


def _steps(xy: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(xy, axis=0), axis=1)


def vcl(xy: np.ndarray, fps: float) -> float:
    """Curvilinear velocity: the path's length point to point over its duration."""
    return float(_steps(xy).sum() * fps / (len(xy) - 1)) if len(xy) > 1 else 0.0


def vsl(xy: np.ndarray, fps: float) -> float:
    """Straight-line velocity: first to last point over the duration."""
    return float(np.linalg.norm(xy[-1] - xy[0]) * fps / (len(xy) - 1)) if len(xy) > 1 else 0.0


def vap(avg: np.ndarray, fps: float) -> float:
    """Average-path velocity: the length of the average path over its duration."""
    return vcl(avg, fps)


def lateral_offsets(xy: np.ndarray, avg: np.ndarray, window: int) -> np.ndarray:
    """Signed distance of each head position from the average path at the same time (K', ):
    positive on the left of the average path's direction of travel."""
    half = window // 2
    pts = xy[half:half + len(avg)]
    if len(avg) < 2:
        return np.zeros(len(pts))
    direction = np.gradient(avg, axis=0)
    norm = np.linalg.norm(direction, axis=1, keepdims=True)
    direction = np.divide(direction, norm, out=np.zeros_like(direction), where=norm > 0)
    rel = pts - avg
    return direction[:, 0] * rel[:, 1] - direction[:, 1] * rel[:, 0]


def alh(offsets: np.ndarray) -> tuple[float, float]:
    """Amplitude of lateral head displacement, mean and max: twice the head's distance from the
    average path (a full side-to-side excursion), averaged over points and at its largest."""
    if len(offsets) == 0:
        return 0.0, 0.0
    a = 2 * np.abs(offsets)
    return float(a.mean()), float(a.max())


def bcf(offsets: np.ndarray, fps: float) -> float:
    """Beat-cross frequency (Hz): how often per second the curvilinear path crosses the average
    path (sign changes of the lateral offset)."""
    s = np.sign(offsets[np.abs(offsets) > 1e-9])
    if len(offsets) < 2:
        return 0.0
    return float((s[1:] != s[:-1]).sum() * fps / (len(offsets) - 1))


def mad(xy: np.ndarray) -> float:
    """Mean angular displacement (degrees): mean absolute turning angle between steps."""
    d = np.diff(xy, axis=0)
    d = d[np.linalg.norm(d, axis=1) > 1e-9]
    if len(d) < 2:
        return 0.0
    a = np.arctan2(d[:, 1], d[:, 0])
    turn = np.angle(np.exp(1j * np.diff(a)))
    return float(np.degrees(np.abs(turn)).mean())


def net_progression(xy: np.ndarray, fps: float, seconds: float = 1.0) -> float | None:
    """Median straight-line displacement over every ``seconds``-long window, per second (the
    progression WHO grades on); None when the path is shorter than the window."""
    n = int(round(seconds * fps))
    if n < 1 or len(xy) <= n:
        return None
    disp = np.linalg.norm(xy[n:] - xy[:-n], axis=1)
    return float(np.median(disp) / (n / fps))


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


@dataclass
class Kinematics:
    """Every WHO parameter of one track, in ``unit`` (``um`` or ``px``) and seconds.

    Ratios (LIN, STR, WOB) are None when their denominator is 0; ``vap`` and everything that
    needs the average path are None for tracks shorter than the smoothing window.
    """

    unit: str
    duration_s: float
    vcl: float
    vsl: float
    vap: float | None
    lin: float | None
    str_: float | None
    wob: float | None
    alh_mean: float | None
    alh_max: float | None
    bcf_hz: float | None
    mad_deg: float
    net_1s: float | None
    flags: list[str] = field(default_factory=list)

    def to_row(self) -> dict[str, float | str | None]:
        u = self.unit
        r = {"duration_s": self.duration_s, f"vcl_{u}_per_s": self.vcl,
             f"vsl_{u}_per_s": self.vsl, f"vap_{u}_per_s": self.vap, "lin": self.lin,
             "str": self.str_, "wob": self.wob, f"alh_mean_{u}": self.alh_mean,
             f"alh_max_{u}": self.alh_max, "bcf_hz": self.bcf_hz, "mad_deg": self.mad_deg,
             f"net_1s_{u}_per_s": self.net_1s}
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}


def kinematics(xy: np.ndarray, fps: float, unit: str = "um", window: int = 5) -> Kinematics:
    """All parameters of one path ``xy`` (K >= 2, consecutive frames, drift removed)."""
    if len(xy) < 2:
        raise ValueError("a path needs at least two points")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"the average path needs an odd window (centred), got {window}")
    avg = average_path(xy, window)
    cl, sl = vcl(xy, fps), vsl(xy, fps)
    ap = vap(avg, fps) if len(avg) >= 2 else None
    offsets = lateral_offsets(xy, avg, window) if ap is not None else None
    a_mean, a_max = alh(offsets) if offsets is not None else (None, None)
    flags = []
    if fps < MIN_RELIABLE_FPS:
        flags.append(f"{fps:g} fps < {MIN_RELIABLE_FPS:g}: VCL underestimated, ALH and BCF "
                     "unreliable")
    k = Kinematics(
        unit=unit, duration_s=(len(xy) - 1) / fps, vcl=cl, vsl=sl, vap=ap, lin=_ratio(sl, cl),
        str_=None if ap is None else _ratio(sl, ap), wob=None if ap is None else _ratio(ap, cl),
        alh_mean=a_mean, alh_max=a_max,
        bcf_hz=None if offsets is None else bcf(offsets, fps), mad_deg=mad(xy),
        net_1s=net_progression(xy, fps), flags=flags)
    for name in ("vcl", "vsl", "vap", "lin", "str_", "wob", "alh_mean", "alh_max", "bcf_hz",
                 "mad_deg", "net_1s"):
        v = getattr(k, name)
        if v is not None and not math.isfinite(v):  # never a NaN in a report
            raise FloatingPointError(f"{name} is not finite for a path of {len(xy)} points")
    return k
