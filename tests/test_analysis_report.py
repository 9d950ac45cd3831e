"""The analysis report, its figures and the annotated video, on small hand-made detections."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from active.analysis import report as report_mod
from active.analysis.annotate import write_annotated_video
from active.analysis.calibration import Calibration
from active.analysis.grades import GRADE_LABELS, REFERENCE_LIMITS
from active.analysis.plots import GRADE_COLOURS, counts_png, histograms_png, trajectories_png
from active.analysis.report import render_report, write_report
from active.analysis.sample import SampleAnalysis, analyze_detections, combine_sample
from active.data.video import VideoReader, write_video

NAMES = ("sperm", "impurity")
W, H, FPS, N = 160, 128, 30.0, 40
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL = {"weights": "active-s.pt", "sha256": "0123456789abcdef", "backend": "onnx",
         "score_threshold": 0.25, "classes": list(NAMES)}


def _objects(sperm: bool = True) -> list[tuple[int, int, object]]:
    """(class, first frame, t -> centre) of each object; px, 0.5 µm/px when calibrated."""
    objs: list[tuple[int, int, object]] = [
        (1, 0, lambda t: (130.0, 30.0)),  # impurities, still
        (1, 0, lambda t: (95.0, 62.0)),
    ]
    if sperm:
        objs += [
            (0, 0, lambda t: (15.0 + 2.0 * t, 15.0)),  # 30 µm/s: rapid
            (0, 0, lambda t: (20.0 + 0.67 * t, 42.0)),  # 10 µm/s: slow
            (0, 0, lambda t: (125.0 + 6 * np.cos(2 * np.pi * t / 40),  # circling: non-prog.
                              100.0 + 6 * np.sin(2 * np.pi * t / 40))),
            (0, 0, lambda t: (40.0, 100.0)),  # immotile
            (0, 0, lambda t: (75.0, 85.0)),  # immotile
            (0, 20, lambda t: (140.0, 65.0)),  # seen 10 frames: counted, not graded
        ]
    return objs


def _detections(seed: int, sperm: bool = True
                ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    objs = _objects(sperm)
    boxes, classes, scores = [], [], []
    for t in range(N):
        b, c = [], []
        for cls, first, pos in objs:
            if not first <= t < (first + 10 if first else N):
                continue
            x, y = np.asarray(pos(t)) + rng.normal(0, 0.2, 2)
            half = 5.0 if cls == 0 else 7.0
            b.append([x - half, y - half, x + half, y + half])
            c.append(cls)
        boxes.append(np.array(b, np.float64).reshape(-1, 4))
        classes.append(np.array(c, np.int64))
        scores.append(np.full(len(c), 0.9))
    return boxes, classes, scores


def _sample(cal: Calibration, sperm: bool = True, videos: int = 2) -> SampleAnalysis:
    analyses = []
    for i in range(videos):
        b, c, s = _detections(i, sperm)
        analyses.append(analyze_detections(b, c, s, NAMES, (W, H), FPS, cal,
                                           source=f"/data/S_{i + 1:04d}.mp4"))
    return combine_sample("S-42 <pilot>", cal, analyses, MODEL)


@pytest.fixture(scope="module")
def normal() -> SampleAnalysis:
    return _sample(Calibration(um_per_px=0.5, chamber_depth_um=20.0, dilution=2.0))


def _frames(sample: SampleAnalysis) -> dict[str, np.ndarray | None]:
    frame = np.full((H, W, 3), 170, np.uint8)
    return {v.source: (frame if k == 0 else None) for k, v in enumerate(sample.videos)}


def _visible(html: str) -> str:
    """The document without its base64 images (random letters there could spell anything)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)


def _assert_clean(html: str) -> None:
    text = _visible(html)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE), "a NaN reached the report"
    assert "None" not in text
    assert not re.search(r"\binf\b", text, re.IGNORECASE)


def test_sample_is_what_the_report_describes(normal: SampleAnalysis) -> None:
    m = normal.motility
    assert m is not None and m.graded >= 8
    assert m.counts["rapid_progressive"] >= 2 and m.counts["immotile"] >= 4
    assert m.ungraded >= 2
    assert normal.concentration is not None
    assert all(v.drift.measured for v in normal.videos)


def test_report_written_atomically_and_self_contained(normal: SampleAnalysis,
                                                      tmp_path: Path) -> None:
    when = datetime(2024, 5, 6, 7, 8)
    path = write_report(normal, tmp_path / "out", _frames(normal), generated=when)
    assert path == tmp_path / "out" / "report.html"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]
    html = path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "http://" not in html and "https://" not in html
    for attr in re.findall(r'(?:src|href)="([^"]*)"', html):
        assert attr.startswith("data:image/png;base64,")
    assert "<script" not in html and "<link" not in html
    assert "@media print" in html
    # the sample id, escaped
    assert "S-42 &lt;pilot&gt;" in html and "<pilot>" not in html
    assert "2024-05-06 07:08" in html
    for label in GRADE_LABELS.values():
        assert label in html
    assert "tracks shorter than 1 s (counted, not graded)" in html
    assert "16 million/mL" in html and "42 %" in html and "30 %" in html
    assert REFERENCE_LIMITS["total_motility_pct"][0] == 42.0
    assert "VCL underestimated, ALH and BCF unreliable" in html  # 30 fps
    assert "active-s.pt" in html and "0123456789ab" in html
    assert "S_0001.mp4" in html and "S_0002.mp4" in html and "/data/" not in html
    # the PNGs decode: 2 trajectories, histograms, counts
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4
    for b64 in images:
        data = base64.b64decode(b64, validate=True)
        assert data.startswith(PNG_MAGIC)
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape[0] > 50 and img.shape[1] > 100
    _assert_clean(html)


def test_failed_render_leaves_the_old_report(normal: SampleAnalysis, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "report.html").write_text("old", encoding="utf-8")

    def boom(*a: object, **k: object) -> bytes:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(report_mod.plots, "counts_png", boom)
    with pytest.raises(RuntimeError):
        write_report(normal, tmp_path, {})
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == "old"


def test_report_without_um_per_px_says_why() -> None:
    sample = _sample(Calibration())
    assert sample.motility is None and sample.concentration is None
    html = render_report(sample, {})
    _assert_clean(html)
    text = _visible(html)
    assert "not computed — --um-per-px is needed for the imaged volume" in text
    assert "not computed — grades are defined in µm/s" in text
    assert "px/s" in text  # kinematics stay in pixels
    assert "below reference limit" not in text


def test_report_without_sperm() -> None:
    sample = _sample(Calibration(um_per_px=0.5, chamber_depth_um=20.0), sperm=False)
    assert sample.motility is None
    html = render_report(sample, {})
    _assert_clean(html)
    text = _visible(html)
    assert "no sperm was tracked for 1 s or more" in text
    assert "no sperm detected in any frame" in text
    assert "Kinematics: not computed" in text


def test_report_of_one_short_video() -> None:
    """Fewer frames than the 1 s a grade needs, one field: nothing tested, nothing NaN."""
    cal = Calibration(um_per_px=0.5, chamber_depth_um=20.0)
    b, c, s = _detections(0)
    va = analyze_detections(b[:20], c[:20], s[:20], NAMES, (W, H), FPS, cal, source="short.mp4")
    html = render_report(combine_sample("short", cal, [va], {}), {})
    _assert_clean(html)
    assert "not tested — one field" in html


def test_plots_are_pngs(normal: SampleAnalysis) -> None:
    v = normal.videos[0]
    for data in (trajectories_png(None, v), trajectories_png(np.zeros((H, W, 3), np.uint8), v,
                                                             0.5),
                 trajectories_png(np.zeros((H, W), np.uint8), v),
                 histograms_png(normal.videos), counts_png(normal.videos), histograms_png([]),
                 counts_png([])):
        assert data.startswith(PNG_MAGIC)
    assert set(GRADE_COLOURS) == {*GRADE_LABELS, "ungraded"}


def test_annotated_video_has_every_frame(normal: SampleAnalysis, tmp_path: Path) -> None:
    src = tmp_path / "in.mp4"
    frames = [np.full((H, W, 3), 120 + k, np.uint8) for k in range(N)]
    write_video(src, frames, fps=FPS)
    out = tmp_path / "out" / "annotated.mp4"
    video = normal.videos[0]
    assert write_annotated_video(src, video, out, FPS) == out
    assert sorted(p.name for p in out.parent.iterdir()) == ["annotated.mp4"]
    with VideoReader(out) as reader:
        images = [f.image for f in reader]
    assert len(images) == N
    assert images[0].shape == (H, W, 3)
    # the circling (non-progressive, orange) track's tail is drawn at the last frame
    circling = next(r for r in video.tracks if r.grade == "non_progressive")
    x, y = (int(v) for v in circling.track.xy_px[-1])
    patch = images[N - 1][y - 8:y + 8, x - 8:x + 8].astype(int)
    assert (patch[..., 0] - patch[..., 2]).max() > 60


def test_annotated_video_error_leaves_nothing(normal: SampleAnalysis, tmp_path: Path) -> None:
    from active.errors import VideoError

    with pytest.raises(VideoError):
        write_annotated_video(tmp_path / "missing.mp4", normal.videos[0], tmp_path / "a.mp4",
                              FPS)
    assert list(tmp_path.iterdir()) == []
