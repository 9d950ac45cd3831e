"""Pixels: draws a :class:`~active.data.synth.motion.Scene` at one frame, with its boxes.

Objects are drawn with anti-aliased, sub-pixel OpenCV primitives into three uint8 layers:
darkness in focus, darkness out of focus, and light (the phase-contrast halo ring around every
object, bright spots). Each layer is blurred by its own amount and added to an unevenly lit,
textured background; sensor noise, a JPEG round trip (the source videos' compression blocks) and
a green tint follow. An interlaced frame takes its odd rows from the scene half a frame earlier,
which combs fast objects the way SVIA's videos do.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from active.data.synth.config import SynthConfig
from active.data.synth.motion import BlobLook, Scene, SimObject, SpermLook

_SHIFT = 4  # sub-pixel bits for OpenCV drawing
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA


@dataclass
class Visible:
    """One annotated object in a frame: its track id, label, clipped xyxy box and true centre."""

    uid: int
    label: int
    box: np.ndarray  # (4,) float pixel xyxy, 0-based, exclusive right/bottom, clipped
    centre: np.ndarray  # (2,) the object's true centre at the frame time (may lie outside)


def _fx(v: np.ndarray | float) -> np.ndarray:
    return np.rint(np.asarray(v, dtype=np.float64) * _ONE).astype(np.int32)


def _fs(v: float) -> int:
    return round(float(v) * _ONE)


def _grey(v: float) -> int:
    return min(255, max(0, round(255 * float(v))))


def background(cfg: SynthConfig, rng: np.random.Generator) -> np.ndarray:
    """(H, W) float32 static background: uneven illumination plus a fine and a blotchy texture."""
    h, w = cfg.height, cfg.width
    coarse = rng.normal(size=(3, 4)).astype(np.float32)
    light = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
    light = light - 2.0 * r2  # a mild vignette under the random shading
    span = float(light.max() - light.min())
    light = (light - light.mean()) * (cfg.illumination / span if span > 0 else 0.0)
    out = np.full((h, w), cfg.background, dtype=np.float32) + light
    if cfg.texture_sigma > 0:
        for sigma, share in ((1.0, 0.7), (4.0, 0.35)):
            tex = cv2.GaussianBlur(rng.standard_normal((h, w), dtype=np.float32), (0, 0), sigma)
            out += tex * (share * cfg.texture_sigma / max(float(tex.std()), 1e-6))
    return out


class _Layers:
    """The uint8 layers of one (field of a) frame: darkness in and out of focus, and light."""

    def __init__(self, cfg: SynthConfig, light: np.ndarray) -> None:
        h, w = cfg.height, cfg.width
        self.cfg = cfg
        self.focus = np.zeros((h, w), np.uint8)
        self.defocus = np.zeros((h, w), np.uint8)
        self.bright = np.zeros((h, w), np.uint8)
        self.halo_shift = cfg.halo_offset * light

    def dark(self, defocus: bool) -> np.ndarray:
        return self.defocus if defocus else self.focus

    def halo_ellipse(
        self, xy: np.ndarray, a: float, b: float, deg: float, strength: float, width: float
    ) -> None:
        """A light ring ``width`` px wide just outside an ellipse with semi-axes ``a``, ``b``."""
        if strength <= 0 or width <= 0:
            return
        axes = (_fs(a + width / 2), _fs(b + width / 2))
        centre = tuple(_fx(xy + self.halo_shift))
        cv2.ellipse(
            self.bright,
            centre,
            axes,
            deg,
            0,
            360,
            _grey(strength),
            max(1, round(width)),
            _AA,
            _SHIFT,
        )

    def optics(self) -> np.ndarray:
        """(H, W) float32 grey-level change the layers make to the background."""
        cfg = self.cfg
        f = self.focus.astype(np.float32) * (1 / 255)
        d = self.defocus.astype(np.float32) * (1 / 255)
        b = self.bright.astype(np.float32) * (1 / 255)
        dark = cv2.GaussianBlur(f, (0, 0), cfg.blur_sigma)
        dark += cv2.GaussianBlur(d, (0, 0), cfg.defocus_sigma)
        light = cv2.GaussianBlur(b, (0, 0), cfg.halo_blur)
        return cfg.bright_gain * light - cfg.dark_gain * dark


def _head_axes(obj: SimObject, t: float) -> tuple[float, float]:
    look = obj.look
    assert isinstance(look, SpermLook)
    if obj.motility == "immotile":
        return look.length / 2, look.width / 2
    # The head rolls as it swims, so its apparent width changes.
    roll = np.cos(2 * np.pi * look.roll_rate * t + look.roll_phase)
    return look.length / 2, look.width / 2 * (0.7 + 0.3 * abs(roll))


def head_box(centre: np.ndarray, angle: float, a: float, b: float, pad: float) -> np.ndarray:
    """Tight xyxy box of an ellipse with semi-axes ``a`` (along ``angle``) and ``b``, padded."""
    c, s = np.cos(angle), np.sin(angle)
    hw = np.sqrt((a * c) ** 2 + (b * s) ** 2) + pad
    hh = np.sqrt((a * s) ** 2 + (b * c) ** 2) + pad
    return np.array([centre[0] - hw, centre[1] - hh, centre[0] + hw, centre[1] + hh])


def _draw_sperm(layers: _Layers, obj: SimObject, t: float, xy: np.ndarray, angle: float) -> None:
    look = obj.look
    assert isinstance(look, SpermLook)
    a, b = _head_axes(obj, t)
    c, s = np.cos(angle), np.sin(angle)
    dark = layers.dark(look.defocus)
    # Tail: a travelling wave growing towards the end, behind the head.
    sv = np.linspace(0.0, look.tail_length, 16)
    beat = obj.motion.beat * (t - obj.birth)
    wave = (
        look.tail_amplitude
        * (sv / look.tail_length) ** 1.2
        * np.sin(2 * np.pi * (beat - sv / (0.8 * look.tail_length)) + obj.motion.phase)
    )
    bx = -(a - 1.0) - sv
    by = wave + look.tail_bend * 0.25 * sv**2 / look.tail_length
    pts = np.stack([xy[0] + bx * c - by * s, xy[1] + bx * s + by * c], axis=1)
    tail = _grey(look.tail_darkness)
    cv2.polylines(dark, [_fx(pts)], False, tail, 1, _AA, _SHIFT)
    cv2.polylines(dark, [_fx(pts[:4])], False, _grey(1.6 * look.tail_darkness), 1, _AA, _SHIFT)
    # Head: a dark core in a lighter oval ringed by the halo, sometimes with a bright spot.
    centre, axes = tuple(_fx(xy)), (_fs(a), _fs(b))
    deg = float(np.degrees(angle))
    layers.halo_ellipse(xy, a, b, deg, look.halo, layers.cfg.halo_width)
    cv2.ellipse(dark, centre, axes, deg, 0, 360, _grey(0.5 * look.head_darkness), -1, _AA, _SHIFT)
    core = (_fs(0.6 * a), _fs(0.6 * b))
    front = tuple(_fx(xy + 0.15 * a * np.array([c, s])))  # the nucleus sits forward
    cv2.ellipse(dark, front, core, deg, 0, 360, _grey(look.head_darkness), -1, _AA, _SHIFT)
    if look.bright_centre:
        spot = (_fs(a * 0.35), _fs(b * 0.35))
        fwd = tuple(_fx(xy + 0.2 * a * np.array([c, s])))
        cv2.ellipse(layers.bright, fwd, spot, deg, 0, 360, 160, -1, _AA, _SHIFT)


def _draw_blob(layers: _Layers, look: BlobLook, xy: np.ndarray, angle: float) -> None:
    dark = layers.dark(look.defocus)
    if look.kind == "dot":
        r = max(float(look.radii[0]), 0.5)
        width = min(layers.cfg.halo_width, 1.5)  # debris rings are thin and faint
        layers.halo_ellipse(xy, r, r, 0.0, 0.6 * look.halo, width)
        cv2.circle(dark, tuple(_fx(xy)), _fs(r), _grey(look.darkness), -1, _AA, _SHIFT)
        return
    pts = _fx(look.outline(xy, angle))
    if look.halo > 0:
        ring = _fx(look.outline(xy + layers.halo_shift, angle, grow=1.5))
        width = max(1, round(layers.cfg.halo_width))
        cv2.polylines(layers.bright, [ring], True, _grey(look.halo), width, _AA, _SHIFT)
    if look.kind == "round":
        # A cell: faint inside, a dark ring, a small nucleus off centre.
        cv2.fillPoly(dark, [pts], _grey(0.2 * look.darkness), _AA, _SHIFT)
        cv2.polylines(dark, [pts], True, _grey(look.darkness), 2, _AA, _SHIFT)
        r = float(look.radii.mean())
        nucleus = tuple(_fx(xy + 0.2 * r * np.array([np.cos(angle), np.sin(angle)])))
        cv2.circle(dark, nucleus, _fs(0.22 * r), _grey(0.6 * look.darkness), -1, _AA, _SHIFT)
    else:
        cv2.fillPoly(dark, [pts], _grey(0.6 * look.darkness), _AA, _SHIFT)
        cv2.polylines(dark, [pts], True, _grey(look.darkness), 1, _AA, _SHIFT)


def _blob_box(look: BlobLook, xy: np.ndarray, angle: float, pad: float) -> np.ndarray:
    pts = look.outline(xy, angle)
    ring = 1.0 if look.kind == "round" else 0.5
    lo, hi = pts.min(axis=0) - ring - pad, pts.max(axis=0) + ring + pad
    return np.concatenate([lo, hi])


def _near(xy: np.ndarray, cfg: SynthConfig, reach: float) -> bool:
    return bool(-reach < xy[0] < cfg.width + reach and -reach < xy[1] < cfg.height + reach)


def render_frame(
    cfg: SynthConfig, scene: Scene, t: int, base: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, list[Visible]]:
    """Frame ``t`` as (H, W, 3) uint8 RGB and the objects that get a box in it."""
    h, w = cfg.height, cfg.width
    times = [float(t), t - 0.5] if scene.interlaced[t] else [float(t)]
    fields = [_Layers(cfg, scene.light) for _ in times]
    boxes: dict[int, tuple[int, np.ndarray, np.ndarray]] = {}
    for obj in scene.dots:
        for layers, tt in zip(fields, times, strict=True):
            xy, ang = obj.state(tt)
            if _near(xy[0], cfg, 5):
                _draw_blob(layers, obj.look, xy[0], float(ang[0]))
    for group in (scene.impurities, scene.sperm):
        for obj in group:
            if not obj.birth <= t < obj.death:
                continue
            for k, (layers, tt) in enumerate(zip(fields, times, strict=True)):
                xy, ang = obj.state(tt)
                p, a = xy[0], float(ang[0])
                if not _near(p, cfg, cfg.margin):
                    continue
                if isinstance(obj.look, SpermLook):
                    _draw_sperm(layers, obj, tt, p, a)
                    box = head_box(p, a, *_head_axes(obj, tt), cfg.box_pad)
                else:
                    _draw_blob(layers, obj.look, p, a)
                    box = _blob_box(obj.look, p, a, cfg.box_pad)
                if k == 0:
                    boxes[obj.uid] = (obj.label, box, p)
                elif obj.uid in boxes:  # a combed object: its box covers both fields
                    label, b0, p0 = boxes[obj.uid]
                    union = np.concatenate(
                        [np.minimum(b0[:2], box[:2]), np.maximum(b0[2:], box[2:])]
                    )
                    boxes[obj.uid] = (label, union, p0)
    change = fields[0].optics()
    if len(fields) > 1:
        change[1::2] = fields[1].optics()[1::2]
    grey = base + change + float(scene.flicker[t])
    if cfg.noise_sigma > 0:
        grey += rng.standard_normal((h, w), dtype=np.float32) * cfg.noise_sigma
    grey8 = np.rint(np.clip(grey, 0, 255)).astype(np.uint8)
    if cfg.jpeg_quality is not None:
        ok, buf = cv2.imencode(".jpg", grey8, [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
        if ok:
            grey8 = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    # The tint goes on after the compression, whose chroma steps would round it off.
    tint = np.asarray(cfg.tint, np.float32)
    rgb = np.rint(np.clip(grey8[:, :, None].astype(np.float32) + tint, 0, 255)).astype(np.uint8)
    visible = []
    for uid, (label, box, centre) in boxes.items():
        clipped = np.clip(box, 0, [w, h, w, h])
        if min(clipped[2] - clipped[0], clipped[3] - clipped[1]) >= cfg.min_visible:
            visible.append(Visible(uid, label, clipped, centre))
    return rgb, visible
