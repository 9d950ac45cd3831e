"""Where every synthetic object is at any time: analytic paths and the scene's object lists.

Paths are closed-form functions of continuous time (in frames), so a frame and the half-frame
before it (for interlaced motion streaks) are evaluated the same way and nothing accumulates.
Sperm that leave the field (the frame plus ``margin`` on each side) are replaced by a new
progressive sperm entering from the border, which keeps the density steady and gives tracks that
start and end inside a video.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from active.data.synth.config import MOTILITY_TYPES, Range, SynthConfig

SPERM, IMPURITY = 0, 1


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


@dataclass
class Motion:
    """A path: centre (x, y) and body angle as functions of time ``tau`` (frames since birth).

    ``kind``: ``progressive`` (arc of curvature ``curvature`` at ``speed``), ``non_progressive``
    (circles of ``radius`` at ``speed`` around a centre drifting by ``drift``, turning the way
    ``curvature``'s sign says), ``immotile``
    (still, with bounded jitter) or ``drift`` (debris carried at ``drift`` while it turns at
    ``spin``). ``speed`` is the speed along the smoothed path (CASA's VAP), in px/frame.
    """

    kind: str
    origin: np.ndarray
    heading: float
    speed: float = 0.0
    curvature: float = 0.0
    radius: float = 0.0
    drift: np.ndarray = field(default_factory=lambda: np.zeros(2))
    spin: float = 0.0
    wobble: float = 0.0
    beat: float = 0.0
    phase: float = 0.0
    #: (K, 4) rows of (amplitude x, amplitude y, angular frequency, phase) summed as jitter.
    jitter: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    def at(self, tau: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Centres (T, 2) and body angles (T,) in radians at times ``tau`` (T,)."""
        t = np.atleast_1d(np.asarray(tau, dtype=np.float64))
        o = self.origin
        if self.kind == "progressive":
            h = self.heading + self.curvature * t
            if abs(self.curvature) > 1e-9:
                r = self.speed / self.curvature
                x = o[0] + r * (np.sin(h) - np.sin(self.heading))
                y = o[1] - r * (np.cos(h) - np.cos(self.heading))
            else:
                x = o[0] + self.speed * t * np.cos(h)
                y = o[1] + self.speed * t * np.sin(h)
            xy = np.stack([x, y], axis=1)
        elif self.kind == "non_progressive":
            turn = np.sign(self.curvature) or 1.0
            a = self.phase + turn * (self.speed / max(self.radius, 1e-6)) * t
            centre = o[None, :] + self.drift[None, :] * t[:, None]
            xy = centre + self.radius * np.stack([np.cos(a), np.sin(a)], axis=1)
            h = a + turn * np.pi / 2
        else:  # immotile or drift
            xy = o[None, :] + self.drift[None, :] * t[:, None]
            h = self.heading + self.spin * t
        if self.wobble > 0:
            lateral = self.wobble * np.sin(2 * np.pi * self.beat * t + self.phase)
            xy = xy + lateral[:, None] * np.stack([-np.sin(h), np.cos(h)], axis=1)
            h = h + 0.12 * np.cos(2 * np.pi * self.beat * t + self.phase)
        if len(self.jitter):
            j = self.jitter
            s = np.sin(t[:, None] * j[None, :, 2] + j[None, :, 3])
            xy = xy + np.stack([s @ j[:, 0], s @ j[:, 1]], axis=1)
        return xy, np.asarray(h, dtype=np.float64) * np.ones_like(t)


@dataclass
class SpermLook:
    """Appearance of one sperm: head ellipse (full axes, px), tail, darkness, focus."""

    length: float
    width: float
    tail_length: float
    tail_amplitude: float
    head_darkness: float
    tail_darkness: float
    bright_centre: bool
    defocus: bool
    halo: float
    roll_rate: float  # head roll, cycles per frame
    roll_phase: float
    tail_bend: float


@dataclass
class BlobLook:
    """Appearance of an impurity or a dot: ``radii`` (K,) of its outline around the centre."""

    kind: str  # "round" (cell with a ring), "blob" (irregular) or "dot"
    radii: np.ndarray
    darkness: float
    defocus: bool
    halo: float

    def outline(self, centre: np.ndarray, angle: float, grow: float = 0.0) -> np.ndarray:
        """(K, 2) outline points at ``centre`` turned by ``angle``, pushed out by ``grow`` px."""
        a = angle + np.linspace(0, 2 * np.pi, len(self.radii), endpoint=False)
        r = self.radii[:, None] + grow
        return centre[None, :] + r * np.stack([np.cos(a), np.sin(a)], axis=1)


@dataclass
class SimObject:
    """One object of the scene, alive for frames ``birth <= t < death``.

    ``uid`` is its track id (dots have -1: they are not annotated); ``label`` indexes
    ``("sperm", "impurity")``; ``motility`` is one of MOTILITY_TYPES for sperm, else None.
    """

    uid: int
    label: int
    motility: str | None
    motion: Motion
    look: SpermLook | BlobLook
    birth: int
    death: int

    def state(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Centres (T, 2) and body angles (T,) at absolute frame times ``t``."""
        return self.motion.at(np.asarray(t, dtype=np.float64) - self.birth)


@dataclass
class Scene:
    """Every object of a video and the per-frame random choices."""

    sperm: list[SimObject]
    impurities: list[SimObject]
    dots: list[SimObject]
    interlaced: np.ndarray  # (F,) bool
    flicker: np.ndarray  # (F,) grey-level offsets
    light: np.ndarray  # (2,) unit vector towards the light (halos lean that way)


def _jitter(rng: np.random.Generator, amplitude: float, k: int = 3) -> np.ndarray:
    if amplitude <= 0:
        return np.zeros((0, 4))
    amp = rng.uniform(-1, 1, size=(k, 2)) * amplitude / np.sqrt(k)
    freq = rng.uniform(0.05, 0.6, size=(k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(k, 1))
    return np.hstack([amp, freq, phase])


def _sperm_motion(
    cfg: SynthConfig, rng: np.random.Generator, kind: str, origin: np.ndarray, heading: float
) -> Motion:
    beat = _uniform(rng, cfg.beat_hz) / cfg.fps
    phase = float(rng.uniform(0, 2 * np.pi))
    if kind == "progressive":
        sign = rng.choice([-1.0, 1.0])
        return Motion(
            kind,
            origin,
            heading,
            speed=_uniform(rng, cfg.progressive_speed),
            curvature=sign * _uniform(rng, cfg.progressive_curvature),
            wobble=_uniform(rng, cfg.wobble),
            beat=beat,
            phase=phase,
        )
    if kind == "non_progressive":
        drift_angle = rng.uniform(0, 2 * np.pi)
        drift = _uniform(rng, cfg.non_progressive_drift) * np.array(
            [np.cos(drift_angle), np.sin(drift_angle)]
        )
        return Motion(
            kind,
            origin,
            heading,
            speed=_uniform(rng, cfg.non_progressive_speed),
            curvature=float(rng.choice([-1.0, 1.0])),
            radius=_uniform(rng, cfg.non_progressive_radius),
            drift=drift,
            wobble=0.5 * _uniform(rng, cfg.wobble),
            beat=beat,
            phase=phase,
        )
    return Motion(kind, origin, heading, jitter=_jitter(rng, cfg.immotile_jitter), phase=phase)


def _halo(cfg: SynthConfig, rng: np.random.Generator, darkness: float, defocus: bool) -> float:
    return min(1.0, darkness * _uniform(rng, cfg.halo_strength) * (0.4 if defocus else 1.0))


def _sperm_look(cfg: SynthConfig, rng: np.random.Generator) -> SpermLook:
    darkness = _uniform(rng, cfg.head_darkness)
    defocus = bool(rng.random() < cfg.defocus_fraction)
    length = _uniform(rng, cfg.head_length)
    return SpermLook(
        length=length,
        width=length * _uniform(rng, cfg.head_aspect),
        tail_length=_uniform(rng, cfg.tail_length),
        tail_amplitude=_uniform(rng, cfg.tail_amplitude),
        head_darkness=darkness,
        tail_darkness=_uniform(rng, cfg.tail_darkness),
        bright_centre=bool(rng.random() < cfg.bright_centre_fraction),
        defocus=defocus,
        halo=_halo(cfg, rng, darkness, defocus),
        roll_rate=float(rng.uniform(0.5, 3.0)) / cfg.fps,
        roll_phase=float(rng.uniform(0, 2 * np.pi)),
        tail_bend=float(rng.uniform(-1.0, 1.0)),
    )


def _field_box(cfg: SynthConfig) -> tuple[float, float, float, float]:
    m = cfg.margin
    return -m, -m, cfg.width + m, cfg.height + m


def _random_point(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    x0, y0, x1, y1 = _field_box(cfg)
    return np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])


def _border_entry(cfg: SynthConfig, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A point on the field's border and a heading pointing into the field."""
    x0, y0, x1, y1 = _field_box(cfg)
    w, h = x1 - x0, y1 - y0
    u = rng.uniform(0, 2 * (w + h))
    if u < w:
        p, normal = np.array([x0 + u, y0]), np.pi / 2
    elif u < 2 * w:
        p, normal = np.array([x0 + u - w, y1]), -np.pi / 2
    elif u < 2 * w + h:
        p, normal = np.array([x0, y0 + u - 2 * w]), 0.0
    else:
        p, normal = np.array([x1, y0 + u - 2 * w - h]), np.pi
    return p, normal + float(rng.uniform(-1.0, 1.0))


def _exit_frame(obj: SimObject, cfg: SynthConfig, frames: int) -> int:
    """First frame at which ``obj``'s centre is outside the field, or ``frames`` if none."""
    if obj.motility == "immotile" or obj.birth >= frames:
        return frames
    t = np.arange(obj.birth + 1, frames)
    if len(t) == 0:
        return frames
    xy, _ = obj.state(t)
    x0, y0, x1, y1 = _field_box(cfg)
    out = (xy[:, 0] < x0) | (xy[:, 0] > x1) | (xy[:, 1] < y0) | (xy[:, 1] > y1)
    return int(t[np.argmax(out)]) if out.any() else frames


def _count(cfg: SynthConfig, rng: np.random.Generator, in_view: Range) -> int:
    """Objects to place in the whole field so that about ``in_view`` fall inside the frame."""
    x0, y0, x1, y1 = _field_box(cfg)
    ratio = (x1 - x0) * (y1 - y0) / (cfg.width * cfg.height)
    return int(rng.poisson(_uniform(rng, in_view) * ratio))


def _blob(cfg: SynthConfig, rng: np.random.Generator, kind: str, size: float) -> BlobLook:
    k = 16 if kind != "dot" else 8
    radii = np.full(k, size / 2)
    if kind == "blob":
        # Smooth random outline: a few low harmonics of the radius.
        a = np.linspace(0, 2 * np.pi, k, endpoint=False)
        for n in (2, 3, 5):
            radii = radii + size * 0.08 * rng.normal() * np.cos(n * a + rng.uniform(0, 2 * np.pi))
        radii = np.clip(radii, size * 0.25, size * 0.55)
    darkness = _uniform(rng, cfg.dot_darkness if kind == "dot" else cfg.impurity_darkness)
    defocus = bool(rng.random() < cfg.defocus_fraction)
    return BlobLook(kind, radii, darkness, defocus, _halo(cfg, rng, darkness, defocus))


def _drifter(
    cfg: SynthConfig, rng: np.random.Generator, uid: int, label: int, look: BlobLook, speed: Range
) -> SimObject:
    angle = rng.uniform(0, 2 * np.pi)
    drift = _uniform(rng, speed) * np.array([np.cos(angle), np.sin(angle)])
    motion = Motion(
        "drift",
        _random_point(cfg, rng),
        float(rng.uniform(0, 2 * np.pi)),
        drift=drift,
        spin=float(rng.normal(0, 0.01)),
        jitter=_jitter(rng, 0.15),
    )
    return SimObject(uid, label, None, motion, look, 0, 0)


def simulate(cfg: SynthConfig, rng: np.random.Generator, frames: int) -> Scene:
    """Draw every object of a ``frames``-long video and its path (no pixels yet)."""
    mix = np.asarray(cfg.motility_mix, dtype=np.float64)
    mix = mix / mix.sum()
    uid = 0
    sperm: list[SimObject] = []
    pending: list[SimObject] = []
    for _ in range(_count(cfg, rng, cfg.sperm_in_view)):
        kind = MOTILITY_TYPES[int(rng.choice(3, p=mix))]
        uid += 1
        heading = float(rng.uniform(0, 2 * np.pi))
        motion = _sperm_motion(cfg, rng, kind, _random_point(cfg, rng), heading)
        pending.append(SimObject(uid, SPERM, kind, motion, _sperm_look(cfg, rng), 0, frames))
    while pending:
        obj = pending.pop(0)
        obj.death = _exit_frame(obj, cfg, frames)
        sperm.append(obj)
        if obj.death < frames:  # replaced by a newcomer entering from the border
            uid += 1
            origin, heading = _border_entry(cfg, rng)
            motion = _sperm_motion(cfg, rng, "progressive", origin, heading)
            look = _sperm_look(cfg, rng)
            pending.append(SimObject(uid, SPERM, "progressive", motion, look, obj.death, frames))
    impurities = []
    for _ in range(_count(cfg, rng, cfg.impurities_in_view)):
        uid += 1
        kind = "round" if rng.random() < cfg.impurity_round_fraction else "blob"
        look = _blob(cfg, rng, kind, _uniform(rng, cfg.impurity_size))
        obj = _drifter(cfg, rng, uid, IMPURITY, look, cfg.impurity_drift)
        obj.death = frames
        impurities.append(obj)
    dots = []
    for _ in range(_count(cfg, rng, cfg.dots_in_view)):
        look = _blob(cfg, rng, "dot", _uniform(rng, cfg.dot_size))
        obj = _drifter(cfg, rng, -1, -1, look, cfg.dot_drift)
        obj.death = frames
        dots.append(obj)
    interlaced = rng.random(frames) < cfg.streak_prob
    flicker = rng.normal(0.0, cfg.flicker, size=frames) if cfg.flicker > 0 else np.zeros(frames)
    light_angle = rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(light_angle), np.sin(light_angle)])
    return Scene(sperm, impurities, dots, interlaced, flicker, light)
