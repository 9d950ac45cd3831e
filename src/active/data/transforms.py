"""Box-aware image transforms for training and inference (numpy + OpenCV).

Boxes are (N, 4) float pixel xyxy throughout. Every random transform takes an explicit
``numpy.random.Generator`` so a seeded run is reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """How an image was fitted into the network input: ``input = original * scale + pad``."""

    scale: float
    pad_x: float
    pad_y: float
    orig_w: int
    orig_h: int

    def undo(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy in input pixels -> (N, 4) xyxy in original pixels, clipped to the frame."""
        b = (np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
             - [self.pad_x, self.pad_y, self.pad_x, self.pad_y]) / self.scale
        b[:, 0::2] = b[:, 0::2].clip(0, self.orig_w)
        b[:, 1::2] = b[:, 1::2].clip(0, self.orig_h)
        return b


def letterbox(image: np.ndarray, size: tuple[int, int], boxes: np.ndarray | None = None,
              scaleup: bool = True, center: bool = True
              ) -> tuple[np.ndarray, np.ndarray | None, Letterbox]:
    """Resize keeping the aspect ratio and pad to ``size = (H, W)``.

    Returns the padded image, the boxes mapped into it (or None) and the :class:`Letterbox`
    that maps predictions back. ``scaleup=False`` only ever shrinks (native-size inference).
    """
    h, w = image.shape[:2]
    th, tw = size
    scale = min(th / h, tw / w)
    if not scaleup:
        scale = min(scale, 1.0)
    nw, nh = round(w * scale), round(h * scale)
    if (nw, nh) != (w, h):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(image, (nw, nh), interpolation=interp)
    px, py = ((tw - nw) / 2, (th - nh) / 2) if center else (0.0, 0.0)
    left, top = int(round(px - 0.1)), int(round(py - 0.1))
    out = cv2.copyMakeBorder(image, top, th - nh - top, left, tw - nw - left,
                             cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3)
    meta = Letterbox(scale, float(left), float(top), w, h)
    if boxes is not None:
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4) * scale
        boxes += np.array([left, top, left, top], dtype=np.float32)
    return out, boxes, meta


def letterbox_batch(images: Sequence[np.ndarray], imgsz: tuple[int, int]
                    ) -> tuple[np.ndarray, list[Letterbox]]:
    """RGB uint8 frames -> a (B, 3, H, W) float32 array in [0, 1] and each frame's letterbox:
    the network batch that PyTorch and ONNX Runtime alike are given (numpy only)."""
    batch = np.empty((len(images), 3, *imgsz), dtype=np.float32)
    metas = []
    for i, img in enumerate(images):
        out, _, meta = letterbox(img, imgsz)
        # one pass from the uint8 HWC frame into its CHW float slot (stacking, transposing and
        # scaling as three passes took ~1 ms a frame more)
        np.divide(out.transpose(2, 0, 1), np.float32(255.0), out=batch[i], dtype=np.float32)
        metas.append(meta)
    return batch, metas


def stride_size(h: int, w: int, stride: int = 32) -> tuple[int, int]:
    """The smallest (H, W) >= (h, w) divisible by ``stride`` (698x528 -> 704x544)."""
    return -(-h // stride) * stride, -(-w // stride) * stride


@dataclass(frozen=True)
class AugmentConfig:
    """Training augmentation; every probability or range 0 turns that transform off."""

    fliplr: float = 0.5
    flipud: float = 0.5
    mosaic: float = 0.5
    scale: float = 0.3          # random zoom in [1 - scale, 1 + scale]
    translate: float = 0.1      # random shift, fraction of the input size
    brightness: float = 0.25    # additive, fraction of 255
    contrast: float = 0.25      # multiplicative around the mean
    blur: float = 0.2           # probability of a Gaussian blur (sigma 0.3 - 1.2 px)
    noise: float = 0.3          # probability of Gaussian sensor noise (std 2 - 8 grey levels)
    min_visible: float = 0.4    # drop boxes that keep less than this fraction of their area
    # Robustness to other microscopes (issue 30); all off by default so that the recipes measured
    # before them train as they did. ``zoom``: with this probability the frame (or a mosaic tile)
    # is scaled by a factor drawn log-uniformly from [zoom_min, zoom_max] instead of 1 +- scale,
    # so heads reach the network from ~0.4x to ~2.5x their native size (other objectives and
    # cameras), cropped anywhere in the frame when it grows past the input.
    zoom: float = 0.0
    zoom_min: float = 0.4
    zoom_max: float = 2.5
    gamma: float = 0.0          # probability of a gamma curve, gamma log-uniform in [0.5, 2]
    defocus: float = 0.0        # probability of a strong blur (sigma 1.2 - 3 px): out of focus
    halo: float = 0.0           # probability of a phase-contrast halo (bright rim around objects)
    background: float = 0.0     # probability of uneven illumination (smooth field, +-20 %)
    negatives: float = 0.0      # probability of pasting unlabelled artefacts (see hard_negatives)
    border: float = 0.0         # probability of a dark band at one edge (frame or stage border)

    @classmethod
    def off(cls) -> AugmentConfig:
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0, 0.4)

    def __post_init__(self) -> None:
        if not 0 < self.zoom_min <= self.zoom_max:
            raise ValueError(f"augment: need 0 < zoom_min <= zoom_max, got {self.zoom_min} and "
                             f"{self.zoom_max}")
        for name in ("fliplr", "flipud", "mosaic", "blur", "noise", "zoom", "gamma", "defocus",
                     "halo", "background", "negatives", "border"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} is a probability in [0, 1], got "
                                 f"{getattr(self, name)}")

    def without_robustness(self) -> AugmentConfig:
        """The same augmentation with the robustness transforms (zoom ... border) off: for a
        last stage that trains on frames as the microscope shows them."""
        return replace(self, zoom=0.0, gamma=0.0, defocus=0.0, halo=0.0, background=0.0,
                       negatives=0.0, border=0.0)

    def draw_zoom(self, rng: np.random.Generator) -> float | None:
        """A zoom factor from [zoom_min, zoom_max] (log-uniform), or None: use 1 +- scale."""
        if self.zoom and rng.random() < self.zoom:
            return float(np.exp(rng.uniform(np.log(self.zoom_min), np.log(self.zoom_max))))
        return None


def flip(image: np.ndarray, boxes: np.ndarray, horizontal: bool) -> tuple[np.ndarray, np.ndarray]:
    """Mirror an image and its boxes left-right (``horizontal``) or top-bottom."""
    h, w = image.shape[:2]
    b = boxes.copy()
    if horizontal:
        b[:, [0, 2]] = w - boxes[:, [2, 0]]
        return image[:, ::-1], b
    b[:, [1, 3]] = h - boxes[:, [3, 1]]
    return image[::-1], b


def random_affine(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, size: tuple[int, int],
                  cfg: AugmentConfig, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``image`` into ``size`` (H, W) with a random zoom and shift; boxes follow and are
    clipped; boxes that keep less than ``cfg.min_visible`` of their area are dropped."""
    h, w = image.shape[:2]
    th, tw = size
    base = min(th / h, tw / w)
    zoom = cfg.draw_zoom(rng)
    if zoom is None:
        s = base * rng.uniform(1 - cfg.scale, 1 + cfg.scale)
        tx = (tw - w * s) / 2 + rng.uniform(-cfg.translate, cfg.translate) * tw
        ty = (th - h * s) / 2 + rng.uniform(-cfg.translate, cfg.translate) * th
    else:  # anywhere: a crop of a large frame, or a small frame placed in the padding
        s = base * zoom
        tx = rng.uniform(min(0.0, tw - w * s), max(0.0, tw - w * s))
        ty = rng.uniform(min(0.0, th - h * s), max(0.0, th - h * s))
    m = np.array([[s, 0, tx], [0, s, ty]], dtype=np.float64)
    out = cv2.warpAffine(image, m, (tw, th), flags=cv2.INTER_LINEAR,
                         borderValue=(PAD_VALUE,) * 3)
    b = boxes.astype(np.float64) * s + [tx, ty, tx, ty]
    return (out, *clip_boxes(b, labels, tw, th, cfg.min_visible))


def clip_boxes(boxes: np.ndarray, labels: np.ndarray, w: int, h: int, min_visible: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Clip (N, 4) xyxy to a w x h image; drop boxes keeping < ``min_visible`` of their area."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    c = boxes.copy()
    c[:, 0::2] = c[:, 0::2].clip(0, w)
    c[:, 1::2] = c[:, 1::2].clip(0, h)
    cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    keep = (cw > 1) & (ch > 1) & (cw * ch >= min_visible * np.maximum(area, 1e-9))
    return c[keep].astype(np.float32), labels[keep]


def photometric(image: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Random optics and camera: phase-contrast halo, defocus, uneven illumination, gamma,
    contrast, brightness, blur and sensor noise (each with its probability in ``cfg``)."""
    img = image.astype(np.float32)
    if cfg.halo and rng.random() < cfg.halo:
        # phase contrast rims every object with light: the image minus its low-pass, added back
        # (an unsharp mask whose radius is a head's size, so rims are a few px wide)
        low = cv2.GaussianBlur(img, (0, 0), rng.uniform(2.0, 5.0))
        img = img + rng.uniform(0.4, 1.5) * (img - low)
    if cfg.defocus and rng.random() < cfg.defocus:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(1.2, 3.0))
    if cfg.background and rng.random() < cfg.background:
        img = img * illumination_field(img.shape[:2], rng)[..., None]
    if cfg.gamma and rng.random() < cfg.gamma:
        g = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        img = 255.0 * (img.clip(0, 255) / 255.0) ** g
    if cfg.contrast:
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - cfg.contrast, 1 + cfg.contrast) + mean
    if cfg.brightness:
        img += rng.uniform(-cfg.brightness, cfg.brightness) * 255
    if cfg.blur and rng.random() < cfg.blur:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 1.2))
    if cfg.noise and rng.random() < cfg.noise:
        img += rng.normal(0, rng.uniform(2, 8), img.shape[:2])[..., None].astype(np.float32)
    return img.clip(0, 255).astype(np.uint8)


def mosaic(images: list[np.ndarray], boxes: list[np.ndarray], labels: list[np.ndarray],
           size: tuple[int, int], cfg: AugmentConfig, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four images, each fitted into one quadrant around a random centre, then clipped to
    ``size``. Objects stay at their native scale range (each image is shrunk by about half)."""
    th, tw = size
    cx = int(rng.uniform(0.3, 0.7) * tw)
    cy = int(rng.uniform(0.3, 0.7) * th)
    canvas = np.full((th, tw, 3), PAD_VALUE, np.uint8)
    quads = [(0, 0, cx, cy), (cx, 0, tw, cy), (0, cy, cx, th), (cx, cy, tw, th)]
    all_b, all_l = [], []
    for img, b, lab, (x0, y0, x1, y1) in zip(images, boxes, labels, quads, strict=True):
        qw, qh = x1 - x0, y1 - y0
        if qw < 2 or qh < 2:
            continue
        h, w = img.shape[:2]
        zoom = cfg.draw_zoom(rng)
        s = max(qw / w, qh / h) * (rng.uniform(1.0, 1 + cfg.scale) if zoom is None else 1.0)
        if zoom is not None:  # the tile is a crop at the drawn zoom when that covers it
            s = max(s, zoom)
        nw, nh = max(1, round(w * s)), max(1, round(h * s))
        resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else
                             cv2.INTER_LINEAR)
        ox = int(rng.integers(0, nw - qw + 1))
        oy = int(rng.integers(0, nh - qh + 1))
        canvas[y0:y1, x0:x1] = resized[oy:oy + qh, ox:ox + qw]
        bb = b.astype(np.float64) * s - [ox, oy, ox, oy]
        bb, ll = clip_boxes(bb, lab, qw, qh, cfg.min_visible)
        all_b.append(bb + np.array([x0, y0, x0, y0], np.float32))
        all_l.append(ll)
    if not all_b:
        return canvas, np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    return canvas, np.concatenate(all_b).astype(np.float32), np.concatenate(all_l)


def illumination_field(shape: tuple[int, int], rng: np.random.Generator,
                       amplitude: float = 0.2) -> np.ndarray:
    """A smooth multiplicative field around 1 (+-``amplitude``): a tilted lamp, vignetting."""
    h, w = shape
    coarse = rng.uniform(1 - amplitude, 1 + amplitude, (3, 3)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(0.3, 2.0)


def _free(mask: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> bool:
    return not mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)].any()


def hard_negatives(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                   margin: int = 4) -> np.ndarray:
    """Paste unlabelled artefacts where no box lies: the look-alikes the detector must learn to
    leave out (dark debris dots smaller than a head, bright specks, scratches on the glass, air
    bubbles' rings). Boxes are unchanged; an artefact that would touch a box (plus ``margin``)
    is not drawn, so no labelled object is covered."""
    out = image.copy()
    h, w = out.shape[:2]
    taken = np.zeros((h, w), bool)
    for b in np.round(boxes).astype(int):
        taken[max(b[1] - margin, 0):b[3] + margin, max(b[0] - margin, 0):b[2] + margin] = True
    level = float(np.median(out))
    for _ in range(int(rng.integers(3, 25))):
        kind = rng.choice(4, p=[0.55, 0.15, 0.15, 0.15])
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:  # dark debris dot, round, no tail, at most a third of a head's length
            r = float(rng.uniform(1.0, 3.0))
            e = int(np.ceil(r)) + 1
            if _free(taken, cx - e, cy - e, cx + e + 1, cy + e + 1):
                shade = level * rng.uniform(0.1, 0.6)
                cv2.circle(out, (cx, cy), max(1, round(r)), (shade,) * 3, -1, cv2.LINE_AA)
        elif kind == 1:  # bright speck
            r = int(rng.integers(1, 3))
            if _free(taken, cx - r - 1, cy - r - 1, cx + r + 2, cy + r + 2):
                shade = min(255.0, level * rng.uniform(1.3, 1.8))
                cv2.circle(out, (cx, cy), r, (shade,) * 3, -1, cv2.LINE_AA)
        elif kind == 2:  # scratch: a thin straight line
            a = rng.uniform(0, np.pi)
            n = rng.uniform(20, 120)
            x1, y1 = int(cx + n * np.cos(a)), int(cy + n * np.sin(a))
            if _free(taken, min(cx, x1) - 2, min(cy, y1) - 2, max(cx, x1) + 3, max(cy, y1) + 3):
                shade = level * rng.uniform(0.5, 1.4)
                cv2.line(out, (cx, cy), (x1, y1), (min(shade, 255.0),) * 3, 1, cv2.LINE_AA)
        else:  # bubble: a ring
            r = int(rng.integers(6, 25))
            if _free(taken, cx - r - 2, cy - r - 2, cx + r + 3, cy + r + 3):
                shade = level * rng.uniform(0.3, 0.8)
                cv2.circle(out, (cx, cy), r, (shade,) * 3, int(rng.integers(1, 3)), cv2.LINE_AA)
    return out


def dark_border(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darken a band along one edge (the field stop or the chamber's edge), never over a box."""
    out = image.copy()
    h, w = out.shape[:2]
    side = int(rng.integers(4))
    limit = {0: boxes[:, 0].min(initial=w), 1: w - boxes[:, 2].max(initial=0),
             2: boxes[:, 1].min(initial=h), 3: h - boxes[:, 3].max(initial=0)}[side]
    width = int(min(rng.uniform(5, 60), limit - 2))
    if width < 3:
        return out
    shade = rng.uniform(0, 60)
    band = {0: np.s_[:, :width], 1: np.s_[:, w - width:], 2: np.s_[:width],
            3: np.s_[h - width:]}[side]
    out[band] = (out[band] * 0.2 + shade * 0.8).astype(out.dtype)
    return out
