"""Draws every object of a synthetic video (its motility grade, path and look): no pixels yet.

The fluid drifts as a whole (one velocity per video) and carries every object. Sperm that swim
(the two progressive grades) and leave the field (the frame plus ``margin`` on each side) are
replaced by a newcomer of the same grade entering from the border, which keeps the density and
the mix in view steady and gives tracks that start and end inside a video. Everything the
fluid merely carries (non-progressive and immotile sperm, impurities, dots) is instead placed
over the field extended upstream by the distance the fluid travels in the video, so the fluid
brings in as many as it takes out and the frame's density stays steady too.
"""

from __future__ import annotations

import numpy as np

from active.data.synth.config import MOTILITY_TYPES, PROGRESSIVE_TYPES, Range, SynthConfig
from active.data.synth.motion import IMPURITY, SPERM, BlobLook, Motion, Scene, SimObject, SpermLook

Box = tuple[float, float, float, float]


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def _direction(rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)])


def _jitter(rng: np.random.Generator, amplitude: float, k: int = 3) -> np.ndarray:
    if amplitude <= 0:
        return np.zeros((0, 4))
    amp = rng.uniform(-1, 1, size=(k, 2)) * amplitude / np.sqrt(k)
    freq = rng.uniform(0.05, 0.6, size=(k, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(k, 1))
    return np.hstack([amp, freq, phase])


def _sperm_motion(
    cfg: SynthConfig, rng: np.random.Generator, grade: str, origin: np.ndarray, heading: float
) -> Motion:
    """The path (relative to the fluid) of a sperm of motility ``grade``, in px and frames."""
    beat = _uniform(rng, cfg.beat_hz) / cfg.fps
    phase = float(rng.uniform(0, 2 * np.pi))
    if grade in PROGRESSIVE_TYPES:
        rapid = grade == "rapid_progressive"
        speeds = cfg.rapid_speed_um_per_s if rapid else cfg.slow_speed_um_per_s
        sign = rng.choice([-1.0, 1.0])
        return Motion(
            "arc",
            origin,
            heading,
            speed=cfg.px_per_frame(_uniform(rng, speeds)),
            curvature=sign * _uniform(rng, cfg.progressive_curvature),
            wobble=_uniform(rng, cfg.wobble),
            beat=beat,
            phase=phase,
        )
    if grade == "non_progressive":
        radius_px = _uniform(rng, cfg.non_progressive_radius_um) / cfg.um_per_px
        period_frames = _uniform(rng, cfg.non_progressive_period_s) * cfg.fps
        drift = cfg.px_per_frame(_uniform(rng, cfg.non_progressive_drift_um_per_s))
        return Motion(
            "circle",
            origin,
            heading,
            speed=2 * np.pi * radius_px / period_frames,
            curvature=float(rng.choice([-1.0, 1.0])),
            radius=radius_px,
            drift=drift * _direction(rng),
            # A small wobble only: circles 2-4 µm across must stay under 5 µm net per second.
            wobble=0.1 * _uniform(rng, cfg.wobble),
            beat=beat,
            phase=phase,
        )
    return Motion("still", origin, heading, jitter=_jitter(rng, cfg.immotile_jitter), phase=phase)


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


def _field_box(cfg: SynthConfig) -> Box:
    m = cfg.margin
    return -m, -m, cfg.width + m, cfg.height + m


def _upstream_box(cfg: SynthConfig, fluid: np.ndarray, frames: int) -> Box:
    """The field plus where the fluid that passes through it during the video starts from."""
    x0, y0, x1, y1 = _field_box(cfg)
    dx, dy = fluid * frames
    return x0 - max(dx, 0.0), y0 - max(dy, 0.0), x1 - min(dx, 0.0), y1 - min(dy, 0.0)


def _inside(p: np.ndarray, box: Box) -> bool:
    return bool(box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3])


def _random_point(rng: np.random.Generator, box: Box) -> np.ndarray:
    return np.array([rng.uniform(box[0], box[2]), rng.uniform(box[1], box[3])])


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
    """First frame at which a swimming ``obj``'s centre is outside the field, else ``frames``.

    Only progressive sperm leave this way; what the fluid carries out is not replaced (the
    fluid brings the same density in from upstream), so it lives to the end of the video.
    """
    if obj.motility not in PROGRESSIVE_TYPES or obj.birth >= frames:
        return frames
    t = np.arange(obj.birth + 1, frames)
    if len(t) == 0:
        return frames
    xy, _ = obj.state(t)
    x0, y0, x1, y1 = _field_box(cfg)
    out = (xy[:, 0] < x0) | (xy[:, 0] > x1) | (xy[:, 1] < y0) | (xy[:, 1] > y1)
    return int(t[np.argmax(out)]) if out.any() else frames


def _count(cfg: SynthConfig, rng: np.random.Generator, in_view: Range, box: Box) -> int:
    """Objects to place in ``box`` so that about ``in_view`` fall inside the frame."""
    ratio = (box[2] - box[0]) * (box[3] - box[1]) / (cfg.width * cfg.height)
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
    rng: np.random.Generator,
    uid: int,
    label: int,
    look: BlobLook,
    speed: Range,
    where: tuple[Box, np.ndarray, int],
) -> SimObject:
    """Debris placed in the upstream box, moving ``speed`` px/frame relative to the fluid."""
    box, fluid, frames = where
    motion = Motion(
        "drift",
        _random_point(rng, box),
        float(rng.uniform(0, 2 * np.pi)),
        drift=_uniform(rng, speed) * _direction(rng),
        spin=float(rng.normal(0, 0.01)),
        jitter=_jitter(rng, 0.15),
    )
    return SimObject(uid, label, None, motion, look, 0, frames, fluid)


def simulate(cfg: SynthConfig, rng: np.random.Generator, frames: int) -> Scene:
    """Draw every object of a ``frames``-long video and its path (no pixels yet)."""
    fluid = cfg.px_per_frame(_uniform(rng, cfg.fluid_drift_um_per_s)) * _direction(rng)
    field, upstream = _field_box(cfg), _upstream_box(cfg, fluid, frames)
    mix = np.asarray(cfg.motility_mix, dtype=np.float64)
    mix = mix / mix.sum()
    uid = 0
    sperm: list[SimObject] = []
    pending: list[SimObject] = []
    for _ in range(_count(cfg, rng, cfg.sperm_in_view, upstream)):
        grade = MOTILITY_TYPES[int(rng.choice(len(MOTILITY_TYPES), p=mix))]
        origin = _random_point(rng, upstream)
        if grade in PROGRESSIVE_TYPES and not _inside(origin, field):
            continue  # swimmers are kept steady by replacement, not brought by the fluid
        uid += 1
        motion = _sperm_motion(cfg, rng, grade, origin, float(rng.uniform(0, 2 * np.pi)))
        look = _sperm_look(cfg, rng)
        pending.append(SimObject(uid, SPERM, grade, motion, look, 0, frames, fluid))
    while pending:
        obj = pending.pop(0)
        obj.death = _exit_frame(obj, cfg, frames)
        sperm.append(obj)
        if obj.death < frames:  # replaced by a swimmer of the same grade from the border
            uid += 1
            # The same grade, not one drawn from the mix: fast sperm leave sooner, so a drawn
            # grade would shift the mix in view towards slow sperm as the video goes on.
            grade = obj.motility
            entry, heading = _border_entry(cfg, rng)
            # The path is relative to the fluid, which has carried its origin since frame 0.
            origin = entry - fluid * obj.death
            motion = _sperm_motion(cfg, rng, grade, origin, heading)
            look = _sperm_look(cfg, rng)
            pending.append(SimObject(uid, SPERM, grade, motion, look, obj.death, frames, fluid))
    where = (upstream, fluid, frames)
    impurities = []
    for _ in range(_count(cfg, rng, cfg.impurities_in_view, upstream)):
        uid += 1
        kind = "round" if rng.random() < cfg.impurity_round_fraction else "blob"
        look = _blob(cfg, rng, kind, _uniform(rng, cfg.impurity_size))
        impurities.append(_drifter(rng, uid, IMPURITY, look, cfg.impurity_drift, where))
    dots = []
    for _ in range(_count(cfg, rng, cfg.dots_in_view, upstream)):
        look = _blob(cfg, rng, "dot", _uniform(rng, cfg.dot_size))
        dots.append(_drifter(rng, -1, -1, look, cfg.dot_drift, where))
    interlaced = rng.random(frames) < cfg.streak_prob
    flicker = rng.normal(0.0, cfg.flicker, size=frames) if cfg.flicker > 0 else np.zeros(frames)
    light = _direction(rng)
    return Scene(sperm, impurities, dots, interlaced, flicker, light, fluid)
