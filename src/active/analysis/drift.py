"""The drift of the fluid, measured on the objects that do not swim, and removed before kinematics.

A sample in a chamber often flows slowly for the first minutes. Every object moves with the
fluid; sperm swim on top of it. Impurities and immotile sperm therefore all share one velocity,
the drift, while swimming sperm scatter in every direction. The estimate is the centre of that
cluster (the mode of the tracks' mean velocities): the track velocity with the most track-time
within ``tolerance`` of it (impurities weigh double: they never swim) starts it; then the
duration-weighted median of the tracks within ``tolerance`` refines it until it settles. (A
median of the impurities alone fails when the detector tracks only a couple of them, or mistakes
a swimming sperm for one.) It is one constant velocity per video (a
slowly changing flow over a 10-30 s clip is not modelled); with fewer than ``min_tracks``
objects in the cluster the drift is reported as not measured and nothing is subtracted (the
report says so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from active.analysis.tracking import Track


@dataclass(frozen=True)
class Drift:
    """The fluid's velocity in px per frame (x, y), and from how many tracks it was measured."""

    velocity_px_per_frame: tuple[float, float]
    tracks_used: int
    measured: bool
    note: str

    def offset(self, frames: np.ndarray) -> np.ndarray:
        """(K, 2) displacement of the fluid at ``frames`` since frame 0, in px."""
        v = np.asarray(self.velocity_px_per_frame)
        return np.asarray(frames, np.float64)[:, None] * v[None, :]


def _mean_velocity(track: Track) -> np.ndarray:
    span = track.frames[-1] - track.frames[0]
    return (track.xy_px[-1] - track.xy_px[0]) / span


def estimate_drift(tracks: list[Track], impurity: int | None, min_frames: int,
                   tolerance_px_per_frame: float, min_tracks: int = 3) -> Drift:
    """The drift from ``tracks`` at least ``min_frames`` long; ``impurity`` is the class id of
    impurities (None if the model has none)."""
    usable = [t for t in tracks if len(t) >= min_frames]
    if not usable:
        return Drift((0.0, 0.0), 0, False, "not measured: no track long enough")
    v = np.array([_mean_velocity(t) for t in usable])
    w = np.array([len(t) for t in usable], float)
    imp = np.array([t.cls == impurity for t in usable])
    support = (np.linalg.norm(v[:, None] - v[None], axis=2) <= tolerance_px_per_frame) @ (
        w * np.where(imp, 2.0, 1.0))
    centre = v[int(np.argmax(support))]
    near = np.zeros(len(v), bool)
    for _ in range(10):
        near = np.linalg.norm(v - centre, axis=1) <= tolerance_px_per_frame
        if not near.any():
            break
        new = np.array([_weighted_median(v[near, k], w[near]) for k in range(2)])
        if np.allclose(new, centre, atol=1e-6):
            break
        centre = new
    n = int(near.sum())
    if n < min_tracks:
        return Drift((0.0, 0.0), n, False,
                     f"not measured: {n} non-swimming object(s), at least {min_tracks} needed; "
                     "kinematics are relative to the image, not the fluid")
    return Drift((float(centre[0]), float(centre[1])), n, True,
                 f"measured on {n} non-swimming objects ({int((near & imp).sum())} impurities)")


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    c = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(c, c[-1] / 2)])
