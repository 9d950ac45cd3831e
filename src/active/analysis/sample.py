"""From one video's detections to its tracks, kinematics, grades and count; from a sample's
videos (replicate fields) to the sample's numbers.

:func:`analyze_detections` is the whole analysis of one video given its detections, so it can be
run on any detector's boxes (or on ground truth, as the benchmark does); :mod:`active.analysis.run`
adds the detector and the outputs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from active.analysis.calibration import Calibration
from active.analysis.concentration import Concentration, Field, concentration, field_volume_ml
from active.analysis.concentration import replicates_agree as counts_agree
from active.analysis.drift import Drift, estimate_drift
from active.analysis.grades import GradeConfig, Motility, combine, grade, tally
from active.analysis.grades import replicates_agree as grades_agree
from active.analysis.kinematics import Kinematics, kinematics
from active.analysis.tracking import Track, TrackerConfig, link, small_tracks
from active.data.boxes import long_side

#: Size of a sperm head's box (head plus its dark rim) in µm; converts the tracker's gates to
#: pixels when µm/px is unknown (for linking only: no number in the report uses it).
HEAD_BOX_UM = 5.5
#: A still object's mean velocity scatters by this much (µm/s) around the fluid's drift.
DRIFT_TOLERANCE_UM_PER_S = 3.0

SCHEMA_VERSION = 1
#: The class name of sperm-class tracks that the head-size gate set aside (``small_tracks``).
DEBRIS = "debris"


@dataclass
class TrackResult:
    """One track with its class, kinematics (drift removed; None for impurities) and grade."""

    track: Track
    class_name: str
    kinematics: Kinematics | None
    grade: str | None


@dataclass
class VideoAnalysis:
    """Everything measured on one video.

    ``sperm_per_frame`` counts, per frame, the sperm detections above the score threshold less
    those in tracks set aside as debris or impurities (what concentration uses, see
    :func:`_counted`); ``raw_sperm_per_frame`` every sperm detection above the threshold.
    """

    source: str
    frames: int
    fps: float
    fps_from: str
    size: tuple[int, int]
    unit: str
    tracks: list[TrackResult]
    drift: Drift
    sperm_per_frame: np.ndarray
    raw_sperm_per_frame: np.ndarray
    motility: Motility | None
    field: Field | None
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def sperm_tracks(self) -> list[TrackResult]:
        return [t for t in self.tracks if t.class_name == "sperm"]

    def to_json(self, um_per_px: float | None) -> dict[str, Any]:
        vx, vy = self.drift.velocity_px_per_frame
        scale = um_per_px if um_per_px is not None else 1.0
        drift = {"measured": self.drift.measured, "note": self.drift.note,
                 "tracks_used": self.drift.tracks_used,
                 f"velocity_{self.unit}_per_s": [round(vx * self.fps * scale, 3),
                                                 round(vy * self.fps * scale, 3)]}
        counts = self.sperm_per_frame
        n_debris = sum(t.class_name == DEBRIS for t in self.tracks)
        return {
            "source": self.source, "frames": self.frames, "fps": self.fps,
            "fps_from": self.fps_from, "duration_s": round(self.frames / self.fps, 3),
            "width": self.size[0], "height": self.size[1], "unit": self.unit,
            "tracks": {"sperm": len(self.sperm_tracks), "impurity": len(self.tracks) - len(
                self.sperm_tracks) - n_debris, DEBRIS: n_debris},
            "sperm_per_frame": {"mean": round(float(counts.mean()), 3) if len(counts) else 0.0,
                                "raw_detections_mean": round(float(self.raw_sperm_per_frame
                                                                   .mean()), 3)
                                if len(counts) else 0.0},
            "drift": drift,
            "motility": None if self.motility is None else self.motility.to_json(),
            "field_volume_nl": None if self.field is None else round(self.field.volume_ml * 1e6,
                                                                     4),
            "notes": list(self.notes), "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


def _gate_scale(boxes: list[np.ndarray], classes: list[np.ndarray], sperm: int,
                um_per_px: float | None) -> tuple[float, str | None]:
    """Pixels per µm for the tracker's gates, and a note when it had to be estimated."""
    if um_per_px is not None:
        return 1.0 / um_per_px, None
    sizes = [long_side(b[c == sperm]) for b, c in zip(boxes, classes, strict=True) if len(b)]
    sizes = np.concatenate(sizes) if sizes else np.zeros(0)
    if len(sizes) < 10:
        return 1.0 / 0.35, ("linking gates assume 0.35 µm/px (too few sperm to estimate the "
                            "scale from head size); give --um-per-px")
    px_per_um = float(np.median(sizes)) / HEAD_BOX_UM
    return px_per_um, (f"no µm/px: linking gates scaled from the median head box "
                       f"({np.median(sizes):.1f} px taken as {HEAD_BOX_UM} µm); distances are "
                       "in pixels, motility is not graded and no concentration is computed")


def analyze_detections(boxes: list[np.ndarray], classes: list[np.ndarray],
                       scores: list[np.ndarray], names: tuple[str, ...], size: tuple[int, int],
                       fps: float, calibration: Calibration, source: str = "",
                       fps_from: str = "container", tracker: TrackerConfig | None = None,
                       grading: GradeConfig | None = None, window: int = 5) -> VideoAnalysis:
    """Track, measure, grade and count one video.

    Args:
        boxes: per frame, (N_t, 4) pixel xyxy boxes; classes, scores: (N_t,) each.
        names: class names (``sperm`` must be one; ``impurity`` is used for drift if present).
        size: frame (width, height) in pixels.
        fps: the frame rate to use (the container's or the user's).
    """
    t0 = time.perf_counter()
    sperm = names.index("sperm")
    impurity = names.index("impurity") if "impurity" in names else None
    um = calibration.um_per_px
    unit = "um" if um is not None else "px"
    scale = um if um is not None else 1.0
    notes: list[str] = []
    px_per_um, note = _gate_scale(boxes, classes, sperm, um)
    if note:
        notes.append(note)
    tracker = tracker or TrackerConfig()
    tracks = link(boxes, classes, scores, size, fps, px_per_um, tracker)
    debris, head_px = small_tracks(tracks, sperm, tracker.debris_ratio)
    if debris:
        notes.append(f"{len(debris)} small track(s) counted as debris, not sperm: their median "
                     f"box is under {tracker.debris_ratio:g} x the median sperm box "
                     f"({head_px:.1f} px)")
    t1 = time.perf_counter()
    one_s = int(round(fps)) + 1
    drift = estimate_drift(tracks, impurity, one_s,
                           DRIFT_TOLERANCE_UM_PER_S / fps * px_per_um)
    results = []
    for tr in tracks:
        name = DEBRIS if tr.id in debris else names[tr.cls]
        if name != "sperm":
            results.append(TrackResult(tr, name, None, None))
            continue
        xy = (tr.xy_px - drift.offset(tr.frames)) * scale
        kin = kinematics(xy, fps, unit, window)
        g = grade(kin.net_1s, kin.vap, grading) if um is not None else None
        results.append(TrackResult(tr, name, kin, g))
    n = len(boxes)
    raw = np.array([int((c == sperm).sum()) for c in classes], np.int64)
    counted = _counted(raw, results, sperm)
    motility = None
    if um is None:
        notes.append("motility not graded: grades are defined in µm/s and no --um-per-px was "
                     "given")
    elif n < one_s:
        notes.append(f"motility not graded: the video has {n} frames at {fps:g} fps, shorter "
                     "than the 1 s a track needs to be graded")
    else:
        motility = tally([r.grade for r in results if r.class_name == "sperm"])
        if motility.graded == 0:
            notes.append("motility not graded: no sperm was tracked for 1 s or more")
    if not raw.any():
        notes.append("no sperm detected in any frame")
    fld = None
    if um is not None and calibration.chamber_depth_um is not None:
        fld = Field(float(counted.mean()) if n else 0.0,
                    field_volume_ml(size[0], size[1], um, calibration.chamber_depth_um))
    if not drift.measured:
        notes.append(f"fluid drift {drift.note}")
    seconds = {"tracking": t1 - t0, "kinematics": time.perf_counter() - t1}
    return VideoAnalysis(source, n, fps, fps_from, size, unit, results, drift, counted, raw,
                         motility, fld, notes, seconds)


def _counted(raw: np.ndarray, results: list[TrackResult], sperm: int) -> np.ndarray:
    """Sperm per frame for the concentration: every sperm detection above the score threshold
    (what the model's operating point is fitted to count without bias), less those in tracks the
    analysis set aside: debris (the head-size gate) and tracks whose vote made them impurities.
    Detections in no kept track (fragments shorter than ``min_frames``) still count: in crowded
    frames most are pieces of real heads' broken tracks."""
    counted = raw.copy()
    for r in results:
        if r.class_name == "sperm":
            continue
        t = r.track
        own = t.classes if t.classes is not None else np.full(len(t), t.cls)
        np.subtract.at(counted, t.frames[t.detected & (own == sperm)], 1)
    return counted


@dataclass
class SampleAnalysis:
    """One sample: its replicate videos, combined grades and concentration, and provenance."""

    sample_id: str
    calibration: Calibration
    videos: list[VideoAnalysis]
    motility: Motility | None
    concentration: Concentration | None
    agreement: dict[str, Any]
    model: dict[str, Any]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        from active.version import __version__

        return {
            "schema_version": SCHEMA_VERSION, "active_version": __version__,
            "sample_id": self.sample_id, "calibration": self.calibration.to_json(),
            "model": self.model,
            "motility": None if self.motility is None else self.motility.to_json(),
            "concentration": None if self.concentration is None
            else self.concentration.to_json(),
            "replicates": self.agreement, "notes": list(self.notes),
            "videos": [v.to_json(self.calibration.um_per_px) for v in self.videos],
        }


def combine_fields(calibration: Calibration, motilities: list[Motility | None],
                   fields: list[Field | None]) -> tuple[Motility | None, Concentration | None,
                                                         dict[str, Any], list[str]]:
    """A sample's grades, concentration, replicate checks and notes from its videos' grade counts
    and counted fields (one entry per video; None where a video has none). What
    :func:`combine_sample` does, for callers that kept only these parts of each video (the batch
    catalogue)."""
    notes: list[str] = []
    graded = [m for m in motilities if m is not None]
    motility = combine(graded) if graded else None
    if motility is not None and motility.graded == 0:
        motility = None
    if motility is None:
        notes.append("motility not graded (see the videos' notes)")
    conc = None
    counted = [f for f in fields if f is not None]
    if calibration.um_per_px is None:
        notes.append("no concentration: --um-per-px is needed for the imaged volume")
    elif calibration.chamber_depth_um is None:
        notes.append("no concentration: --chamber-depth is needed for the imaged volume")
    elif counted:
        conc = concentration(counted, calibration.dilution)
        notes.extend(conc.warnings)
    agreement = {"concentration": counts_agree(counted), "motility": grades_agree(graded)}
    for key, check in agreement.items():
        if check.get("tested") and not check.get("agree"):
            notes.append(f"replicates disagree on {key} (p = {check['p_value']}): WHO asks for "
                         "new replicates")
    return motility, conc, agreement, notes


def combine_sample(sample_id: str, calibration: Calibration, videos: list[VideoAnalysis],
                   model: dict[str, Any]) -> SampleAnalysis:
    """The sample's numbers from its videos (each one field of the chamber)."""
    motility, conc, agreement, notes = combine_fields(
        calibration, [v.motility for v in videos], [v.field for v in videos])
    return SampleAnalysis(sample_id, calibration, videos, motility, conc, agreement, model,
                          notes)
