"""Every knob of the synthetic microscopy generator, as one typed dataclass.

Units: lengths in pixels unless the name says ``_um``; speeds in pixels per frame unless the name
says ``_um_per_s`` (those are converted with ``um_per_px`` and ``fps``, so the motility grades
stay physical whatever the frame rate); grey levels on the 0-255 scale. A ``(lo, hi)`` pair is a
range sampled uniformly per object (or per video for the ``*_in_view`` counts and the fluid
drift). The defaults imitate SVIA subset-A (698x528, 30 fps, phase contrast, grey, low
contrast); ``scripts/calibrate_synth.py`` measures how close they come.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

Range = tuple[float, float]

#: Motility grades of the WHO manual (6th edition, 2021), in the order of
#: :attr:`SynthConfig.motility_mix`.
MOTILITY_TYPES = ("rapid_progressive", "slow_progressive", "non_progressive", "immotile")
#: The grades that swim somewhere (the ones that leave the field and get replaced).
PROGRESSIVE_TYPES = MOTILITY_TYPES[:2]

#: WHO grade limits on net progression (µm/s): rapid >= 25, slow 5 to < 25, non-progressive < 5.
RAPID_MIN_UM_PER_S = 25.0
PROGRESSIVE_MIN_UM_PER_S = 5.0


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of :func:`active.data.synth.render_video` (all defaults imitate SVIA)."""

    # Frame and time.
    width: int = 698
    height: int = 528
    fps: float = 30.0
    #: Frames per video (``generate_dataset`` sets it from its ``frames`` argument).
    frames: int = 100
    #: Objects spawn this far outside the frame so that they (and their tails) enter smoothly.
    margin: float = 70.0

    # Physical scale. At 0.35 µm/px a 12-20 px head box (rim included) is 4-7 µm, the size of a
    # human sperm head; SVIA gives no scale, so this is the assumption every µm value rests on.
    um_per_px: float = 0.35
    #: Depth of the counting chamber (µm): the frame area times this is the volume the sperm in
    #: view live in, which turns sperm per frame into a concentration (20 µm: a Leja-type slide).
    chamber_depth_um: float = 20.0

    # How many objects are in view, drawn once per video (per frame, whatever its size: scale
    # these with the frame area for small frames). ``sperm_in_view`` sets the concentration.
    sperm_in_view: Range = (12.0, 62.0)
    impurities_in_view: Range = (0.0, 3.0)
    dots_in_view: Range = (60.0, 140.0)

    #: One drift of the whole fluid per video (magnitude from this range, random direction),
    #: added to every object: immotile sperm and debris are markers of it.
    fluid_drift_um_per_s: Range = (0.0, 6.0)

    # Motility: the mix over MOTILITY_TYPES and each grade's motion, relative to the fluid. The
    # ranges keep every path inside its WHO grade with a margin (see docs/synthetic.md).
    motility_mix: tuple[float, float, float, float] = (0.35, 0.15, 0.15, 0.35)
    #: Speed along the smoothed path (CASA's VAP) of rapid and slow progressive sperm.
    rapid_speed_um_per_s: Range = (32.0, 95.0)
    slow_speed_um_per_s: Range = (8.0, 21.0)
    #: Path curvature of progressive sperm, rad/frame (sign drawn at random).
    progressive_curvature: Range = (0.0, 0.012)
    #: Non-progressive sperm swim small circles: radius, time per turn, and a slow drift of the
    #: circle's centre relative to the fluid.
    non_progressive_radius_um: Range = (1.0, 2.0)
    non_progressive_period_s: Range = (0.3, 0.8)
    non_progressive_drift_um_per_s: Range = (0.0, 0.5)
    #: Bounded Brownian-like jitter of immotile sperm (amplitude in px; their speed is 0).
    immotile_jitter: float = 0.25
    #: Lateral head wobble of swimming sperm (amplitude in px; non-progressive ones get 10 % of
    #: it) and its frequency range (Hz). 1.5-4.5 px (0.5-1.6 µm) gives ALH 0.7-2 µm and
    #: VCL/VAP 1.1-1.5 at 30 fps, what the tracks of the real SVIA sample show.
    wobble: Range = (1.5, 4.5)
    beat_hz: Range = (4.0, 12.0)

    # Sperm appearance: head ellipse (full axes), tail, contrast (darkness units, 1 = dark_gain).
    head_length: Range = (12.0, 20.0)
    #: Head width as a fraction of its length.
    head_aspect: Range = (0.55, 0.8)
    tail_length: Range = (35.0, 60.0)
    tail_amplitude: Range = (1.5, 5.0)
    head_darkness: Range = (0.55, 1.0)
    tail_darkness: Range = (0.10, 0.28)
    #: Fraction of heads showing a bright (acrosome-like) spot inside the dark rim.
    bright_centre_fraction: float = 0.35

    # Impurities: round cells (ring) or irregular blobs; full size range; drift relative to the
    # fluid in px/frame (0.04 px/frame = 0.42 µm/s at the defaults: they move with the fluid).
    impurity_size: Range = (14.0, 36.0)
    impurity_round_fraction: float = 0.6
    impurity_darkness: Range = (0.25, 0.55)
    impurity_drift: Range = (0.0, 0.04)

    # Unlabelled small dark dots (debris), their diameter range and drift relative to the fluid.
    dot_size: Range = (2.0, 6.0)
    dot_darkness: Range = (0.2, 0.7)
    dot_drift: Range = (0.0, 0.04)

    # Optics: in-focus blur, defocused objects, phase-contrast halo.
    background: float = 152.0
    #: Grey levels per darkness unit (how dark a darkness-1 object gets).
    dark_gain: float = 150.0
    #: Grey levels of a full-strength bright feature (halo ring, bright spot in a head).
    bright_gain: float = 60.0
    #: Phase contrast rings every object with light: the ring's width (px), its blur, and its
    #: strength as a fraction of the object's darkness.
    halo_width: float = 3.5
    halo_blur: float = 2.0
    halo_strength: Range = (0.4, 1.0)
    #: Oblique light makes halos lopsided: the ring is shifted this far (px) towards the light.
    halo_offset: float = 1.5
    blur_sigma: float = 0.8
    defocus_fraction: float = 0.15
    defocus_sigma: float = 2.2

    # Illumination and sensor: uneven field (peak-to-peak grey levels), flicker, noise.
    illumination: float = 5.0
    flicker: float = 0.6
    #: Static background texture (grey levels std, fine grain plus blotches) and per-frame
    #: sensor noise (std).
    texture_sigma: float = 3.0
    noise_sigma: float = 2.0
    #: RGB offsets (grey levels): SVIA's frames are slightly green.
    tint: tuple[float, float, float] = (-0.5, 2.0, -1.0)
    #: JPEG round-trip quality imitating the source's compression blocks (None: off).
    jpeg_quality: int | None = 85

    # Motion streaks: probability that a frame is interlaced (odd rows half a frame earlier).
    streak_prob: float = 0.3

    # Boxes: padding around the drawn head/impurity (annotators include the rim), and the
    # smallest visible width/height that still gets a box when an object is cut by the border.
    box_pad: float = 1.5
    min_visible: float = 3.0

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"frame size {self.width}x{self.height} is too small (min 16x16)")
        if self.frames < 1:
            raise ValueError(f"frames must be at least 1, got {self.frames}")
        for name in ("fps", "um_per_px", "chamber_depth_um"):
            if not getattr(self, name) > 0:  # also catches NaN
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        mix = self.motility_mix
        if len(mix) != len(MOTILITY_TYPES) or min(mix) < 0 or sum(mix) <= 0:
            raise ValueError(
                f"motility_mix needs {len(MOTILITY_TYPES)} non-negative weights "
                f"{MOTILITY_TYPES}, not all 0, got {mix}"
            )
        for name, value in asdict(self).items():
            if isinstance(value, tuple) and len(value) == 2 and value[0] > value[1]:
                raise ValueError(f"{name}: range {value} has lo > hi")
        for name in (
            "fluid_drift_um_per_s",
            "rapid_speed_um_per_s",
            "slow_speed_um_per_s",
            "non_progressive_radius_um",
            "non_progressive_drift_um_per_s",
            "impurity_drift",
            "dot_drift",
        ):
            if min(getattr(self, name)) < 0:
                raise ValueError(f"{name}: range {getattr(self, name)} must not be negative")
        if min(self.non_progressive_period_s) <= 0:
            raise ValueError(
                f"non_progressive_period_s: range {self.non_progressive_period_s} must be positive"
            )
        if not 0.0 <= self.streak_prob <= 1.0:
            raise ValueError(f"streak_prob must be in [0, 1], got {self.streak_prob}")

    def px_per_frame(self, um_per_s: float) -> float:
        """A speed in µm/s as pixels per frame at this scale and frame rate."""
        return um_per_s / (self.um_per_px * self.fps)

    def um_per_s(self, px_per_frame: float) -> float:
        """A speed in pixels per frame as µm/s at this scale and frame rate."""
        return px_per_frame * self.um_per_px * self.fps

    @property
    def field_volume_um3(self) -> float:
        """Volume of liquid under the whole frame (µm³)."""
        return self.width * self.height * self.um_per_px**2 * self.chamber_depth_um

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy of every parameter."""
        return asdict(self)
