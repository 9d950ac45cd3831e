"""The analysis layer on hand-made paths and detections: each kinematic parameter against a value
computed by hand, the tracker on crossings, gaps and edges, drift, grades, concentration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from active.analysis import Calibration, analyze_detections
from active.analysis.concentration import (
    Field,
    concentration,
    field_volume_ml,
    poisson_interval,
    replicates_agree,
)
from active.analysis.grades import GradeConfig, grade, tally
from active.analysis.kinematics import average_path, kinematics, net_progression
from active.analysis.tracking import TrackerConfig, link
from active.errors import UsageError

FPS = 30.0
NAMES = ("sperm", "impurity")


# --- kinematics ---------------------------------------------------------------------------------

def test_straight_line() -> None:
    t = np.arange(61) / FPS
    xy = np.stack([10 + 40.0 * t, 5 + 30.0 * t], axis=1)  # 50 µm/s
    k = kinematics(xy, FPS)
    assert k.vcl == pytest.approx(50) and k.vsl == pytest.approx(50) and k.vap == pytest.approx(50)
    assert k.lin == pytest.approx(1) and k.str_ == pytest.approx(1) and k.wob == pytest.approx(1)
    assert k.alh_mean == pytest.approx(0, abs=1e-9) and k.bcf_hz == 0
    assert k.mad_deg == pytest.approx(0, abs=1e-9)
    assert k.net_1s == pytest.approx(50)
    assert k.flags  # 30 fps is below 60: VCL/ALH/BCF flagged


def test_circle_vcl_and_vsl() -> None:
    r, period_s = 10.0, 1.0  # 60 points = exactly two turns
    a = 2 * np.pi * np.arange(61) / (period_s * FPS)
    xy = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)
    k = kinematics(xy, FPS)
    chord = 2 * r * math.sin(np.pi / (period_s * FPS))  # one step of the sampled circle
    assert k.vcl == pytest.approx(chord * FPS)
    assert k.vsl == pytest.approx(0, abs=1e-9)  # back where it started
    assert k.net_1s == pytest.approx(0, abs=1e-9)  # one full turn per second
    assert k.mad_deg == pytest.approx(360 / (period_s * FPS))


def test_zigzag_alh_and_bcf() -> None:
    """x advances 2 per frame, y = A sin(2 pi k / 5): the 5-point average path is the x axis, so
    the lateral offsets are the y values themselves."""
    amp, n = 3.0, 101
    k_idx = np.arange(n)
    xy = np.stack([2.0 * k_idx, amp * np.sin(2 * np.pi * k_idx / 5)], axis=1)
    avg = average_path(xy, 5)
    assert np.allclose(avg[:, 1], 0, atol=1e-9)
    kin = kinematics(xy, FPS)
    ys = np.abs(xy[2:2 + len(avg), 1])
    assert kin.alh_mean == pytest.approx(2 * ys.mean())
    assert kin.alh_max == pytest.approx(2 * amp * math.sin(2 * np.pi / 5))
    # Two crossings per 5-frame beat: 2 * 30 / 5 = 12 per second.
    assert kin.bcf_hz == pytest.approx(12, rel=0.05)
    assert kin.vap == pytest.approx(2 * FPS)
    assert kin.vcl > kin.vap and kin.lin < 1


def test_short_path() -> None:
    k = kinematics(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]]), FPS)
    assert k.vap is None and k.alh_mean is None and k.net_1s is None
    assert net_progression(np.zeros((30, 2)), FPS) is None  # 30 frames < 1 s + 1
    with pytest.raises(ValueError):
        kinematics(np.zeros((1, 2)), FPS)


# --- grades ---------------------------------------------------------------------------------------

def test_grades() -> None:
    assert grade(30.0, 40.0) == "rapid_progressive"
    assert grade(25.0, 40.0) == "rapid_progressive"
    assert grade(24.9, 40.0) == "slow_progressive"
    assert grade(5.0, 6.0) == "slow_progressive"
    assert grade(4.9, 12.0) == "non_progressive"
    assert grade(1.0, 2.0) == "immotile"
    assert grade(None, 50.0) is None
    assert grade(4.0, 4.0, GradeConfig(motile_vap_um_per_s=3.0)) == "non_progressive"
    m = tally(["rapid_progressive", "immotile", None, "slow_progressive", "non_progressive"])
    assert m.graded == 4 and m.ungraded == 1
    assert m.progressive_pct == 50 and m.total_motility_pct == 75
    j = m.to_json()
    assert j["below_reference"] == {"progressive_motility_pct": False,
                                    "total_motility_pct": False}


# --- concentration --------------------------------------------------------------------------------

def test_concentration_and_interval() -> None:
    vol = field_volume_ml(1000, 1000, 0.5, 20.0)
    assert vol == pytest.approx(5e-6)
    c = concentration([Field(100.0, vol)], dilution=2.0)
    assert c.m_per_ml == pytest.approx(100 / 5e-6 * 2 / 1e6)  # 40 million/mL
    lo, hi = poisson_interval(100)
    assert (lo, hi) == pytest.approx((81.37, 121.63), abs=0.01)  # exact Poisson, tables
    assert c.ci95_m_per_ml == pytest.approx((lo * 0.4, hi * 0.4))
    assert c.warnings and "200" in c.warnings[0]
    assert not concentration([Field(250.0, vol)], 1.0).warnings
    assert poisson_interval(0)[0] == 0 and poisson_interval(0)[1] == pytest.approx(3.689, 1e-3)


def test_replicate_counts() -> None:
    v = 1e-6
    assert replicates_agree([Field(100, v), Field(110, v)])["agree"]
    bad = replicates_agree([Field(100, v), Field(200, v)])
    assert not bad["agree"] and bad["p_value"] < 0.001
    # two fields: the dispersion test is WHO's |n1 - n2| <= 1.96 sqrt(n1 + n2)
    n1, n2 = 100, 100 + 1.9 * math.sqrt(200)
    assert replicates_agree([Field(n1, v), Field(n2, v)])["agree"]
    assert stats.chi2.sf((n2 - n1) ** 2 / (n1 + n2), 1) > 0.05
    assert not replicates_agree([Field(10, v)])["tested"]


# --- calibration ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,flag", [
    ({"um_per_px": 0.0}, "--um-per-px"), ({"um_per_px": -1.0}, "--um-per-px"),
    ({"um_per_px": 12.0}, "--um-per-px"), ({"um_per_px": float("nan")}, "--um-per-px"),
    ({"chamber_depth_um": 0.0}, "--chamber-depth"), ({"chamber_depth_um": -5}, "--chamber-depth"),
    ({"fps": 0.0}, "--fps"), ({"dilution": 0.5}, "--dilution"),
])
def test_impossible_calibration(kwargs: dict, flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        Calibration(**kwargs)


# --- tracking -------------------------------------------------------------------------------------

def _box(x: float, y: float, s: float = 8.0) -> list[float]:
    return [x - s, y - s, x + s, y + s]


def _frames(paths: list[np.ndarray], n: int, drop: set[tuple[int, int]] = frozenset()):
    boxes, classes, scores = [], [], []
    for t in range(n):
        b = [_box(*p[t]) for i, p in enumerate(paths) if (i, t) not in drop
             and not np.isnan(p[t]).any()]
        boxes.append(np.array(b, float).reshape(-1, 4))
        classes.append(np.zeros(len(b), int))
        scores.append(np.ones(len(b)))
    return boxes, classes, scores


def test_crossing_paths_keep_their_identity() -> None:
    """Two heads at 8 px/frame crossing at a shallow angle: nearest neighbour would swap them at
    the crossing, the motion model does not."""
    n = 40
    t = np.arange(n, dtype=float)
    a = np.stack([20 + 8 * t, 100 + 1.5 * t], axis=1)
    b = np.stack([20 + 8 * t, 160 - 1.5 * t], axis=1)
    tracks = link(*_frames([a, b], n), (400, 300), FPS, px_per_um=1 / 0.35)
    assert len(tracks) == 2
    for tr in tracks:
        assert len(tr) == n
        ys = tr.xy_px[:, 1]
        assert abs(ys[-1] - ys[0]) == pytest.approx(1.5 * (n - 1), abs=0.5)  # never swapped


def test_gap_closing_and_spurious() -> None:
    n = 30
    t = np.arange(n, dtype=float)
    a = np.stack([50 + 5 * t, 80 + 0 * t], axis=1)
    boxes, classes, scores = _frames([a], n, drop={(0, 10), (0, 11), (0, 12)})
    boxes[5] = np.vstack([boxes[5], _box(300, 250)])  # a one-frame false detection
    classes[5] = np.r_[classes[5], 0]
    scores[5] = np.r_[scores[5], 0.5]
    tracks = link(boxes, classes, scores, (400, 300), FPS, px_per_um=1 / 0.35)
    assert len(tracks) == 1
    tr = tracks[0]
    assert len(tr) == n and (~tr.detected).sum() == 3
    assert tr.xy_px[11] == pytest.approx(a[11])  # the gap is interpolated on the line


def test_edge_exit_ends_track() -> None:
    n = 40
    t = np.arange(n, dtype=float)
    a = np.stack([300 + 6 * t, 100 + 0 * t], axis=1)  # leaves a 400 px frame after ~17 frames
    a[a[:, 0] >= 400] = np.nan
    b = np.stack([395 - 0 * t, 102 + 0 * t], axis=1)  # a still head just inside the edge
    b[:30] = np.nan  # appears only late
    tracks = link(*_frames([a, b], n), (400, 300), FPS, px_per_um=1 / 0.35,
                  config=TrackerConfig(max_gap_s=20 / FPS))
    assert len(tracks) == 2  # the late head is not the exited one coasting back


# --- one video end to end -------------------------------------------------------------------------

def _scene(drift=(0.6, -0.3), n=90, seed=0):
    """4 swimmers, 4 still sperm and 2 impurities, all carried by a drift (px/frame)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)[:, None]
    d = np.asarray(drift)[None, :] * t
    swim = [np.array([60 + 70 * i, 40.0]) + np.array([0.0, 3.0]) * t for i in range(4)]
    still = [np.array([80 + 90 * i, 250.0]) + 0 * t for i in range(4)]
    imp = [np.array([150.0, 150.0]) + 0 * t, np.array([380.0, 180.0]) + 0 * t]
    boxes, classes, scores = [], [], []
    for k in range(n):
        pts = [p[k] + d[k] + rng.normal(0, 0.3, 2) for p in swim + still + imp]
        boxes.append(np.array([_box(*p) for p in pts]))
        classes.append(np.array([0] * 8 + [1] * 2))
        scores.append(np.full(10, 0.9))
    return boxes, classes, scores


def test_video_analysis_measures_drift_and_grades() -> None:
    boxes, classes, scores = _scene()
    cal = Calibration(um_per_px=0.5, chamber_depth_um=20.0)
    va = analyze_detections(boxes, classes, scores, NAMES, (480, 320), FPS, cal)
    assert va.drift.measured
    assert va.drift.velocity_px_per_frame == pytest.approx((0.6, -0.3), abs=0.05)
    assert len(va.sperm_tracks) == 8
    m = va.motility
    # swimmers: 3 px/frame * 0.5 µm/px * 30 = 45 µm/s relative to the fluid -> rapid
    assert m.counts["rapid_progressive"] == 4 and m.counts["immotile"] == 4
    assert va.sperm_per_frame.mean() == pytest.approx(8)
    assert va.field.volume_ml == pytest.approx(480 * 320 * 0.25 * 20 * 1e-12)
    swim = [r for r in va.sperm_tracks if r.grade == "rapid_progressive"]
    assert all(r.kinematics.vsl == pytest.approx(45, rel=0.03) for r in swim)


def test_small_debris_tracks_are_not_counted_as_sperm() -> None:
    """Dark dots the detector calls sperm frame after frame: their tracks' boxes are half a
    head's, so the head-size gate sets them aside as debris (not counted, not graded), while
    heads of ordinary spread (0.8x-1.2x) are all kept; with the gate off they count as sperm."""
    boxes, classes, scores = _scene()
    rng = np.random.default_rng(1)
    dots = [(40.0 + 45 * i, 300.0) for i in range(3)]
    for k in range(len(boxes)):
        boxes[k][:8] = [_box(*((b[:2] + b[2:]) / 2), s=8 * f)
                        for b, f in zip(boxes[k][:8], np.linspace(0.8, 1.2, 8), strict=True)]
        dot = np.array([_box(x + 0.6 * k + rng.normal(0, 0.3), y - 0.3 * k, s=4.0)
                        for x, y in dots])  # carried by the scene's drift
        boxes[k] = np.vstack([boxes[k], dot])
        classes[k] = np.r_[classes[k], 0, 0, 0]
        scores[k] = np.r_[scores[k], 0.5, 0.5, 0.5]
    cal = Calibration(um_per_px=0.5, chamber_depth_um=20.0)
    va = analyze_detections(boxes, classes, scores, NAMES, (480, 320), FPS, cal)
    assert len(va.sperm_tracks) == 8
    assert sum(r.class_name == "debris" for r in va.tracks) == 3
    assert va.sperm_per_frame.mean() == pytest.approx(8)
    assert va.motility.counts["immotile"] == 4
    assert va.to_json(0.5)["tracks"] == {"sperm": 8, "impurity": 2, "debris": 3}
    assert any("debris" in n for n in va.notes)
    off = analyze_detections(boxes, classes, scores, NAMES, (480, 320), FPS, cal,
                             tracker=TrackerConfig(debris_ratio=0))
    assert len(off.sperm_tracks) == 11 and off.motility.counts["immotile"] == 7


def test_concentration_counts_detections_less_the_objects_set_aside() -> None:
    """The count for the concentration is every sperm detection (what the operating point is
    fitted to count), less those inside tracks that are not sperm: an impurity the detector
    called sperm in a few frames does not count there; a 3-frame fragment of a head, too short
    to be a track, does."""
    boxes, classes, scores = _scene()
    for k in (10, 11, 12, 13):  # impurity 0 (row 8) called sperm, at a low score
        classes[k][8], scores[k][8] = 0, 0.3
    for k in (40, 41, 42):  # a head seen for three frames only
        boxes[k] = np.vstack([boxes[k], _box(420, 60)])
        classes[k], scores[k] = np.r_[classes[k], 0], np.r_[scores[k], 0.9]
    cal = Calibration(um_per_px=0.5, chamber_depth_um=20.0)
    va = analyze_detections(boxes, classes, scores, NAMES, (480, 320), FPS, cal)
    assert len(va.sperm_tracks) == 8
    expected = np.full(len(boxes), 8)
    expected[[40, 41, 42]] += 1
    assert va.raw_sperm_per_frame[10] == 9
    np.testing.assert_array_equal(va.sperm_per_frame, expected)


def test_without_scale_nothing_physical() -> None:
    boxes, classes, scores = _scene()
    va = analyze_detections(boxes, classes, scores, NAMES, (480, 320), FPS, Calibration())
    assert va.unit == "px" and va.motility is None and va.field is None
    assert any("um-per-px" in n for n in va.notes)
    assert va.sperm_tracks[0].kinematics.unit == "px"


def test_too_short_and_empty_videos_say_so() -> None:
    boxes, classes, scores = _scene(n=20)
    cal = Calibration(um_per_px=0.5, chamber_depth_um=20.0)
    va = analyze_detections(boxes, classes, scores, NAMES, (480, 320), FPS, cal)
    assert va.motility is None and any("shorter than the 1 s" in n for n in va.notes)
    empty = [np.zeros((0, 4))] * 40
    ids = [np.zeros(0, int)] * 40
    va = analyze_detections(empty, ids, [np.zeros(0)] * 40, NAMES, (480, 320), FPS, cal)
    assert any("no sperm detected" in n for n in va.notes)
    assert va.field.cells == 0 and va.tracks == []


def test_analysis_layer_imports_no_torch_and_no_training() -> None:
    """The analysis layer sits above inference and must run in an install without PyTorch."""
    import subprocess
    import sys

    code = ("import sys, active.analysis, active.analysis.report, active.analysis.plots, "
            "active.analysis.annotate, active.analysis.outputs, active.analysis.report_text\n"
            "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('active.training', "
            "'active.models', 'active.evaluation', 'active.experiments'))]\n"
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_drift_from_immotile_cells_when_impurities_mislead() -> None:
    """Two 'impurity' tracks that do not move with the fluid (a misclassified swimmer, a stuck
    particle) must not set the drift when many immotile sperm agree on it."""
    from active.analysis.drift import estimate_drift
    from active.analysis.tracking import Track

    def track(i: int, v: tuple[float, float], cls: int, n: int = 60) -> Track:
        t = np.arange(n)
        xy = np.array([100.0 + 10 * i, 100.0])[None] + np.outer(t, v)
        boxes = np.hstack([xy - 8, xy + 8])
        return Track(i, t, xy, boxes, np.ones(n), np.ones(n, bool), cls)

    fluid = (0.45, -0.1)
    tracks = [track(i, fluid, 0) for i in range(6)]  # immotile sperm
    tracks += [track(10, (0.0, 0.17), 1), track(11, (-0.8, 0.8), 1)]  # misleading impurities
    tracks += [track(20 + i, (3 * np.cos(a), 3 * np.sin(a)), 0) for i, a in enumerate(
        np.linspace(0, 6, 8))]  # swimmers in every direction
    d = estimate_drift(tracks, impurity=1, min_frames=31, tolerance_px_per_frame=0.3)
    assert d.measured and d.velocity_px_per_frame == pytest.approx(fluid, abs=1e-6)
