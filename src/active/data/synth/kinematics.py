"""WHO/CASA kinematics of a true path, in plain numpy.

The synthetic ground truth needs VCL, VSL, VAP and net progression, but the synth package sits
below ``active.analysis`` (layers point one way), so it carries its own small implementation.
Every function takes the frame indices (K,) at which the object is seen and its points (K, 2)
in µm, and returns µm/s or None where the quantity is undefined (never NaN, so it can go to
JSON as is). Steps are taken only between consecutive frames: a gap in the frames (an object
cut by the border for a while) splits the path into runs.
"""

from __future__ import annotations

import numpy as np

#: Points in CASA's moving average that smooths the path before VAP.
VAP_WINDOW = 5


def _runs(frames: np.ndarray) -> list[slice]:
    """Slices of ``frames`` that are runs of consecutive frame indices."""
    if len(frames) == 0:
        return []
    cuts = np.flatnonzero(np.diff(frames) != 1) + 1
    edges = [0, *cuts.tolist(), len(frames)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def vcl(frames: np.ndarray, points_um: np.ndarray, fps: float) -> float | None:
    """Curvilinear velocity: mean step length between consecutive frames, per second."""
    steps = np.diff(frames) == 1
    if not steps.any():
        return None
    d = np.linalg.norm(np.diff(points_um, axis=0), axis=1)
    return float(d[steps].mean() * fps)


def vsl(frames: np.ndarray, points_um: np.ndarray, fps: float) -> float | None:
    """Straight-line velocity: first-to-last distance over the time between them."""
    if len(frames) < 2 or frames[-1] == frames[0]:
        return None
    span_s = float(frames[-1] - frames[0]) / fps
    return float(np.linalg.norm(points_um[-1] - points_um[0]) / span_s)


def vap(frames: np.ndarray, points_um: np.ndarray, fps: float) -> float | None:
    """Average-path velocity: mean step speed of the centred 5-point moving average.

    A run of K consecutive points gives K - 4 full-window averages (no padded ends), hence
    K - 5 steps; runs shorter than 6 points give none, and no step at all gives None.
    """
    steps = []
    kernel = np.ones(VAP_WINDOW) / VAP_WINDOW
    for run in _runs(frames):
        p = points_um[run]
        if len(p) <= VAP_WINDOW:
            continue
        smooth = np.stack([np.convolve(p[:, k], kernel, mode="valid") for k in (0, 1)], axis=1)
        steps.append(np.linalg.norm(np.diff(smooth, axis=0), axis=1))
    if not steps:
        return None
    return float(np.concatenate(steps).mean() * fps)


def net_1s(frames: np.ndarray, points_um: np.ndarray, fps: float) -> float | None:
    """Median net displacement over 1-second windows (µm/s), the WHO progression measure.

    A window runs from a seen frame to the frame ``round(fps)`` later, which must be seen too
    (the frames between need not be: net displacement only uses the ends). None when no such
    window fits, i.e. the object is seen for less than a second.
    """
    n = max(1, round(fps))
    if len(frames) < 2:
        return None
    ends = np.searchsorted(frames, frames + n)
    ok = ends < len(frames)
    ok[ok] = frames[ends[ok]] == frames[ok] + n
    if not ok.any():
        return None
    start = np.flatnonzero(ok)
    d = np.linalg.norm(points_um[ends[start]] - points_um[start], axis=1)
    return float(np.median(d) / (n / fps))


def kinematics(frames: np.ndarray, points_um: np.ndarray, fps: float) -> dict[str, float | None]:
    """All four, keyed ``vcl_um_per_s``, ``vsl_um_per_s``, ``vap_um_per_s``, ``net_1s_um_per_s``."""
    frames = np.asarray(frames, dtype=np.int64)
    points_um = np.asarray(points_um, dtype=np.float64).reshape(-1, 2)
    return {
        "vcl_um_per_s": vcl(frames, points_um, fps),
        "vsl_um_per_s": vsl(frames, points_um, fps),
        "vap_um_per_s": vap(frames, points_um, fps),
        "net_1s_um_per_s": net_1s(frames, points_um, fps),
    }
