"""Where every synthetic object is at any time: analytic paths and the scene's containers.

Paths are closed-form functions of continuous time (in frames), so a frame and the half-frame
before it (for interlaced motion streaks) are evaluated the same way and nothing accumulates.
A :class:`Motion` is the path relative to the fluid; :class:`SimObject` adds the fluid's drift,
which carries every object of a video alike. ``scene.py`` draws the objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SPERM, IMPURITY = 0, 1


@dataclass
class Motion:
    """A path relative to the fluid: centre (x, y) and body angle as functions of time ``tau``
    (frames since birth); all lengths in px, speeds in px/frame.

    ``kind``: ``arc`` (progressive: arc of curvature ``curvature`` at ``speed``), ``circle``
    (non-progressive: circles of ``radius`` at ``speed`` around a centre moving at ``drift``,
    turning the way ``curvature``'s sign says), ``still`` (immotile: bounded jitter only) or
    ``drift`` (debris moving at ``drift`` while it turns at ``spin``). ``speed`` is the speed
    along the smoothed path (CASA's VAP).
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
        if self.kind == "arc":
            h = self.heading + self.curvature * t
            if abs(self.curvature) > 1e-9:
                r = self.speed / self.curvature
                x = o[0] + r * (np.sin(h) - np.sin(self.heading))
                y = o[1] - r * (np.cos(h) - np.cos(self.heading))
            else:
                x = o[0] + self.speed * t * np.cos(h)
                y = o[1] + self.speed * t * np.sin(h)
            xy = np.stack([x, y], axis=1)
        elif self.kind == "circle":
            turn = np.sign(self.curvature) or 1.0
            a = self.phase + turn * (self.speed / max(self.radius, 1e-6)) * t
            centre = o[None, :] + self.drift[None, :] * t[:, None]
            xy = centre + self.radius * np.stack([np.cos(a), np.sin(a)], axis=1)
            h = a + turn * np.pi / 2
        else:  # still or drift
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
    ``fluid`` (2,) is the video's fluid drift in px/frame: the object is at its path relative to
    the fluid plus ``fluid * t`` at absolute frame time ``t`` (whenever it was born).
    """

    uid: int
    label: int
    motility: str | None
    motion: Motion
    look: SpermLook | BlobLook
    birth: int
    death: int
    fluid: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def relative_state(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Centres (T, 2) relative to the fluid and body angles (T,) at absolute times ``t``."""
        return self.motion.at(np.asarray(t, dtype=np.float64) - self.birth)

    def state(self, t: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Centres (T, 2) in the image and body angles (T,) at absolute frame times ``t``."""
        tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
        xy, angle = self.relative_state(tt)
        return xy + self.fluid[None, :] * tt[:, None], angle


@dataclass
class Scene:
    """Every object of a video and the per-frame random choices."""

    sperm: list[SimObject]
    impurities: list[SimObject]
    dots: list[SimObject]
    interlaced: np.ndarray  # (F,) bool
    flicker: np.ndarray  # (F,) grey-level offsets
    light: np.ndarray  # (2,) unit vector towards the light (halos lean that way)
    fluid: np.ndarray  # (2,) the fluid's drift, px/frame, shared by every object
