"""Link detections into tracks: a constant-velocity Kalman filter per track, optimal assignment
per frame, a gate in micrometres, coasting over a few missed frames, and death at the frame's edge.

Why this and not an overlap tracker: sperm heads are ~15 px boxes moving up to ~10 px per frame,
so a head's boxes in consecutive frames often do not overlap at all; what carries identity is
where the head will be, which a motion model predicts. Why our own filter and not filterpy: the
state of every live track is updated in one vectorised step (a 4-state filter is a few lines of
numpy), which keeps tracking a small fraction of detection's time; the assignment itself is
scipy's ``linear_sum_assignment``.

Positions are box centres in pixels, as detected (the filter only predicts and gates; the
kinematics are measured on the detections, not on the smoothed state, as CASA instruments do).
Frames where a track was coasting get linearly interpolated points, flagged as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from active.data.boxes import long_side


@dataclass(frozen=True)
class TrackerConfig:
    """Linking parameters, in physical units (converted with µm/px and fps).

    Attributes:
        max_speed_um_per_s: the fastest head speed linked between two frames (VCL of human sperm
            rarely exceeds 250 µm/s); the gate of a track that has no velocity yet.
        min_gate_um: smallest gate of an established track (localisation noise + head wobble).
        gate_sigmas: an established track's gate, in standard deviations of its prediction.
        max_gap_s: how long a track may go undetected and still be continued (gap closing).
        min_frames: tracks with fewer detections are dropped as spurious.
        accel_um_per_s2: the filter's process noise: how sharply the head's *average* path may
            change velocity (sperm turn slowly; a stiff model keeps identities through
            crossings).
        measurement_um: the filter's measurement noise: the head's lateral excursion about its
            average path (ALH / 2, about 1-2 µm for human sperm) plus the box's localisation
            error. The wiggle is noise around a smooth path, not a change of course.
        cascade: match established tracks first, then coasting ones, then new ones (a new
            track never takes a detection an established track explains).
    """

    max_speed_um_per_s: float = 250.0
    min_gate_um: float = 2.5
    gate_sigmas: float = 4.0
    max_gap_s: float = 0.5
    min_frames: int = 5
    accel_um_per_s2: float = 80.0
    measurement_um: float = 1.5
    cascade: bool = True
    debris_ratio: float = 0.65

    def max_gap_frames(self, fps: float) -> int:
        return max(1, int(round(self.max_gap_s * fps)))


@dataclass
class Track:
    """One linked object. Arrays have one row per frame from its first to its last detection.

    Attributes:
        id: 1, 2, ... in order of first appearance (among kept tracks).
        frames: (K,) consecutive frame indices.
        xy_px: (K, 2) box centres in pixels (x, y); interpolated where ``detected`` is False.
        boxes: (K, 4) pixel xyxy boxes (interpolated likewise).
        scores: (K,) detection scores (0 where interpolated).
        detected: (K,) bool.
        cls: the track's class id (score-weighted vote of its detections).
        classes: (K,) each detection's own class id (-1 where interpolated); None: all ``cls``.
    """

    id: int
    frames: np.ndarray
    xy_px: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    detected: np.ndarray
    cls: int
    classes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class _Live:
    """A track being built: its detections so far (frame -> row of the frame's detections)."""

    frames: list[int] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)
    missed: int = 0


def _motion_matrices(q: float, r: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """F, Q, H, R of a constant-velocity model with one-frame steps (units: px, frames)."""
    f = np.eye(4)
    f[0, 2] = f[1, 3] = 1.0
    g = np.array([[0.5, 0.0], [0.0, 0.5], [1.0, 0.0], [0.0, 1.0]])  # white acceleration
    qm = g @ g.T * q**2
    h = np.zeros((2, 4))
    h[0, 0] = h[1, 1] = 1.0
    return f, qm, h, np.eye(2) * r**2


def link(boxes: Sequence[np.ndarray], classes: Sequence[np.ndarray],
         scores: Sequence[np.ndarray], size: tuple[int, int], fps: float, px_per_um: float,
         config: TrackerConfig | None = None) -> list[Track]:
    """Tracks from per-frame detections.

    Args:
        boxes: per frame, (N_t, 4) pixel xyxy boxes.
        classes, scores: per frame, (N_t,) class ids and scores.
        size: the frames' (width, height) in pixels; a track predicted outside ends there.
        fps: frames per second (converts the speeds of ``config``).
        px_per_um: pixels per micrometre (converts its lengths).
    """
    cfg = config or TrackerConfig()
    max_step = cfg.max_speed_um_per_s / fps * px_per_um
    min_gate = cfg.min_gate_um * px_per_um
    max_gap = cfg.max_gap_frames(fps)
    f, q, h, r = _motion_matrices(cfg.accel_um_per_s2 / fps**2 * px_per_um,
                                  cfg.measurement_um * px_per_um)
    width, height = size
    live: list[_Live] = []
    x = np.zeros((0, 4))
    p = np.zeros((0, 4, 4))
    done: list[_Live] = []
    for t, (bt, ct, st) in enumerate(zip(boxes, classes, scores, strict=True)):
        bt = np.asarray(bt, np.float64).reshape(-1, 4)
        centres = (bt[:, :2] + bt[:, 2:]) / 2
        # Predict every live track one frame ahead.
        x = x @ f.T
        p = f @ p @ f.T + q
        pred = x[:, :2]
        s = p[:, :2, :2] + r  # innovation covariance
        sigma = np.sqrt(np.maximum(s[:, 0, 0], s[:, 1, 1]))
        new_track = np.array([len(tr.frames) < 2 for tr in live], bool)
        gate = np.where(new_track, max_step + min_gate,
                        np.clip(cfg.gate_sigmas * sigma, min_gate, max_step + min_gate))
        matched_t = np.zeros(len(live), bool)
        matched_d = np.zeros(len(centres), bool)
        if len(live) and len(centres):
            d = np.linalg.norm(pred[:, None, :] - centres[None, :, :], axis=2)
            allowed = d <= gate[:, None]
            tiers = (np.array([_tier(tr) for tr in live]) if cfg.cascade
                     else np.zeros(len(live), int))
            pairs = []
            for tier in np.unique(tiers):
                ti = np.flatnonzero(tiers == tier)
                dj = np.flatnonzero(~matched_d)
                if not len(dj):
                    break
                sub = np.where(allowed[np.ix_(ti, dj)], d[np.ix_(ti, dj)], 1e9)
                rows, cols = linear_sum_assignment(sub)
                ok = sub[rows, cols] < 1e9
                pairs += list(zip(ti[rows[ok]], dj[cols[ok]], strict=True))
                matched_d[dj[cols[ok]]] = True
            for i, j in pairs:
                tr = live[i]
                tr.frames.append(t)
                tr.boxes.append(bt[j])
                tr.scores.append(float(st[j]))
                tr.classes.append(int(ct[j]))
                tr.missed = 0
                # Kalman update with the detection.
                k = p[i] @ h.T @ np.linalg.inv(s[i])
                if len(tr.frames) == 2:  # second point: start from the observed velocity
                    dt = tr.frames[1] - tr.frames[0]
                    x[i] = np.r_[centres[j], (centres[j] - _centre(tr.boxes[0])) / dt]
                    var = r[0, 0]
                    p[i] = np.diag([var, var, 2 * var / dt**2, 2 * var / dt**2]) + q
                else:
                    x[i] = x[i] + k @ (centres[j] - pred[i])
                    p[i] = (np.eye(4) - k @ h) @ p[i]
                matched_t[i] = matched_d[j] = True
        keep = np.ones(len(live), bool)
        for i, tr in enumerate(live):
            if matched_t[i]:
                continue
            tr.missed += 1
            px, py = x[i, 0], x[i, 1]
            outside = px < 0 or py < 0 or px >= width or py >= height
            if tr.missed > max_gap or outside:
                keep[i] = False
                done.append(tr)
        live = [tr for i, tr in enumerate(live) if keep[i]]
        x, p = x[keep], p[keep]
        # Unmatched detections start tracks (position known, velocity not).
        fresh = np.flatnonzero(~matched_d)
        if len(fresh):
            for j in fresh:
                live.append(_Live([t], [bt[j]], [float(st[j])], [int(ct[j])]))
            x0 = np.zeros((len(fresh), 4))
            x0[:, :2] = centres[fresh]
            p0 = np.zeros((len(fresh), 4, 4))
            p0[:, :2, :2] = r
            p0[:, 2:, 2:] = np.eye(2) * (max_step / 2) ** 2
            x, p = np.concatenate([x, x0]), np.concatenate([p, p0])
    done.extend(live)
    return _finish(done, cfg.min_frames)


def _tier(tr: _Live) -> int:
    """Matching order: confirmed tracks seen last frame, then confirmed tracks coasting through
    a gap, then new tracks (which must not take a detection an established track can explain)."""
    if len(tr.frames) >= 3:
        return 0 if tr.missed == 0 else 1
    return 2


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2] + box[2:]) / 2


def _finish(raw: list[_Live], min_frames: int) -> list[Track]:
    """Kept tracks with gaps filled by linear interpolation, numbered by first appearance."""
    raw = [tr for tr in raw if len(tr.frames) >= min_frames]
    raw.sort(key=lambda tr: (tr.frames[0], tuple(tr.boxes[0])))
    tracks = []
    for n, tr in enumerate(raw, start=1):
        fr = np.asarray(tr.frames)
        full = np.arange(fr[0], fr[-1] + 1)
        b = np.asarray(tr.boxes, np.float64)
        boxes = np.stack([np.interp(full, fr, b[:, k]) for k in range(4)], axis=1)
        detected = np.isin(full, fr)
        scores = np.zeros(len(full))
        scores[detected] = tr.scores
        classes = np.full(len(full), -1, np.int64)
        classes[detected] = tr.classes
        weights = np.bincount(tr.classes, weights=tr.scores, minlength=2)
        tracks.append(Track(n, full, (boxes[:, :2] + boxes[:, 2:]) / 2, boxes, scores, detected,
                            int(np.argmax(weights)), classes))
    return tracks


def small_tracks(tracks: Sequence[Track], cls: int, ratio: float,
                 min_boxes: int = 20) -> tuple[set[int], float | None]:
    """Ids of the ``cls`` tracks too small to be that object, and the reference size (px).

    A CASA head-size gate. The detector calls some dark debris dots sperm, frame after frame;
    linked, they become still "immotile sperm" that inflate the count and the immotile share. One
    detection's box says little, but a track's median box does: a dot's is about half a head's.
    The reference is the median longer box side over every detection of the ``cls`` tracks, so
    the gate needs no scale and follows the microscope. Annotated heads vary little about that
    median (SVIA: 1st percentile 0.75x), so ``ratio`` 0.65 leaves real heads alone. With fewer
    than ``min_boxes`` detections there is no reliable median and nothing is gated.
    """
    if ratio <= 0:
        return set(), None
    own = [t for t in tracks if t.cls == cls]
    sides = [long_side(t.boxes[t.detected]) for t in own]
    every = np.concatenate(sides) if sides else np.zeros(0)
    if len(every) < min_boxes:
        return set(), None
    ref = float(np.median(every))
    return {t.id for t, s in zip(own, sides, strict=True) if np.median(s) < ratio * ref}, ref
