"""Ground truth of a synthetic video: per track (path, grade, true WHO kinematics) and per video
(fluid drift, concentration).

All kinematics are taken on the true centres relative to the fluid (the fluid's drift times the
absolute frame time subtracted), because WHO grades describe how a sperm swims through the
liquid, not how the liquid carries it past the camera.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from active.data.record import FrameRecord
from active.data.synth.config import SynthConfig
from active.data.synth.kinematics import kinematics

#: 1 µm³ in mL and in nL.
ML_PER_UM3 = 1e-12
NL_PER_UM3 = 1e-6


def _round(value: float | None, digits: int = 3) -> float | None:
    """JSON-safe rounding: None (undefined) stays None, a non-finite value becomes None."""
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


@dataclass
class TrackTruth:
    """The true path of one annotated object, at the frames where it has a box.

    ``speed_px_per_frame`` is the speed the path was generated with relative to the fluid,
    along its smoothed course (CASA's VAP): 0 for immotile sperm, the circling speed for
    non-progressive ones, the drift through the fluid for impurities. ``centres`` (K, 2) are
    the object's true centres in the image (pixel x, y) at ``frames`` (K,), fluid drift
    included; ``fluid_px_per_frame`` (2,) is that drift, so ``relative_centres`` is the path
    through the liquid that the ``*_um_per_s`` kinematics are measured on.
    """

    id: int
    class_name: str
    motility: str | None
    speed_px_per_frame: float
    fps: float
    frames: np.ndarray
    centres: np.ndarray
    um_per_px: float = 0.35
    fluid_px_per_frame: np.ndarray = field(default_factory=lambda: np.zeros(2))

    @property
    def grade(self) -> str | None:
        """WHO motility grade (one of MOTILITY_TYPES) for sperm, None for impurities."""
        return self.motility

    @property
    def speed_px_per_s(self) -> float:
        return self.speed_px_per_frame * self.fps

    @property
    def vcl_px_per_frame(self) -> float:
        """Mean step in the image between consecutive visible frames (fluid drift included)."""
        steps = np.diff(self.frames) == 1
        if not steps.any():
            return 0.0
        d = np.linalg.norm(np.diff(self.centres, axis=0), axis=1)
        return float(d[steps].mean())

    @property
    def vsl_px_per_frame(self) -> float:
        """Straight-line speed in the image, first to last visible frame (drift included)."""
        span = int(self.frames[-1] - self.frames[0])
        return float(np.linalg.norm(self.centres[-1] - self.centres[0]) / span) if span else 0.0

    @property
    def relative_centres(self) -> np.ndarray:
        """(K, 2) true centres relative to the fluid (px): ``centres - fluid * frame``."""
        return self.centres - self.fluid_px_per_frame[None, :] * self.frames[:, None]

    @cached_property
    def kinematics(self) -> dict[str, float | None]:
        """True VCL, VSL, VAP and 1-s net progression relative to the fluid (µm/s)."""
        return kinematics(self.frames, self.relative_centres * self.um_per_px, self.fps)

    @property
    def vcl_um_per_s(self) -> float | None:
        return self.kinematics["vcl_um_per_s"]

    @property
    def vsl_um_per_s(self) -> float | None:
        return self.kinematics["vsl_um_per_s"]

    @property
    def vap_um_per_s(self) -> float | None:
        return self.kinematics["vap_um_per_s"]

    @property
    def net_1s_um_per_s(self) -> float | None:
        return self.kinematics["net_1s_um_per_s"]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class": self.class_name,
            "motility": self.motility,
            "grade": self.grade,
            "speed_px_per_frame": round(self.speed_px_per_frame, 4),
            "speed_px_per_s": round(self.speed_px_per_s, 3),
            "speed_um_per_s": round(self.speed_px_per_s * self.um_per_px, 3),
            "vcl_px_per_frame": round(self.vcl_px_per_frame, 4),
            "vsl_px_per_frame": round(self.vsl_px_per_frame, 4),
            **{k: _round(v) for k, v in self.kinematics.items()},
            "first_frame": int(self.frames[0]),
            "last_frame": int(self.frames[-1]),
            "points": [
                [int(f), round(float(x), 3), round(float(y), 3)]
                for f, (x, y) in zip(self.frames, self.centres, strict=True)
            ],
        }


def sperm_per_frame_mean(records: Sequence[FrameRecord]) -> float:
    """Mean number of annotated sperm boxes per frame (heads cut by the border included, as
    annotators box them)."""
    sperm = [int((np.asarray(r.labels) == 0).sum()) for r in records]
    return float(np.mean(sperm)) if sperm else 0.0


def concentration_m_per_ml(cfg: SynthConfig, per_frame: float) -> float:
    """What a counting chamber would give: sperm per frame over the volume under the frame,
    in million per mL."""
    return per_frame / (cfg.field_volume_um3 * ML_PER_UM3) / 1e6


def video_truth(
    cfg: SynthConfig, records: Sequence[FrameRecord], fluid_px_per_frame: np.ndarray
) -> dict[str, Any]:
    """Per-video truth, JSON-ready (rounded): scale, fluid drift and realised concentration."""
    per_frame = sperm_per_frame_mean(records)
    fluid = np.asarray(fluid_px_per_frame, dtype=np.float64)
    return {
        "um_per_px": cfg.um_per_px,
        "fps": cfg.fps,
        "chamber_depth_um": cfg.chamber_depth_um,
        "fluid_drift_px_per_frame": [round(float(v), 5) for v in fluid],
        "fluid_drift_um_per_s": [round(cfg.um_per_s(float(v)), 4) for v in fluid],
        "sperm_per_frame_mean": round(per_frame, 4),
        "field_volume_nl": round(cfg.field_volume_um3 * NL_PER_UM3, 6),
        "concentration_m_per_ml": round(concentration_m_per_ml(cfg, per_frame), 4),
    }
