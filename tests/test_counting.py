"""The counting operating point: the unbiased threshold, microscope profiles, ``active calibrate``
and ``--profile``, and the model's stored threshold used by default (issue 30)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from active.cli import main
from active.data.ap import ImageResult
from active.errors import DataError, UsageError
from active.evaluation.counting import count_bias, count_threshold
from active.inference.profile import Profile, load_profile


def _result(n_true: int, scores: list[float]) -> ImageResult:
    boxes = np.tile(np.array([[0, 0, 10, 10]], float), (len(scores), 1))
    return ImageResult(np.zeros((n_true, 4)), np.zeros(n_true, int), boxes,
                       np.array(scores, float), np.zeros(len(scores), int))


def test_count_threshold_makes_the_count_exact() -> None:
    results = [_result(3, [0.9, 0.8, 0.6, 0.3, 0.1]), _result(2, [0.95, 0.5, 0.4, 0.2])]
    t = count_threshold(results, 0)
    # 5 annotated boxes: the 5th best score is 0.5, the 6th 0.4 -> halfway
    assert t == pytest.approx(0.45)
    b = count_bias(results, 0, t)
    assert b["bias_pct"] == 0 and b["found_per_frame"] == b["true_per_frame"] == 2.5
    assert count_bias(results, 0, 0.05)["bias_pct"] == pytest.approx(80.0)
    with pytest.raises(ValueError):
        count_threshold([_result(0, [0.5])], 0)


def _profile(tmp_path: Path, **changes: object) -> Path:
    data = Profile("m.pt", "ab" * 32, 0.4, None, {"frames": 3}, {}, "now").to_json()
    data.update(changes)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    return path


def test_profile_round_trip_and_bad_files(tmp_path: Path) -> None:
    p = Profile("m.pt", "ab" * 32, 0.4, 0.35, {"frames": 3}, {"x": 1}, "now")
    assert load_profile(p.save(tmp_path / "ok.json")) == p
    bad = [("{not json", "not JSON"), (json.dumps({"kind": "other"}), "not an ACTIVE profile")]
    for text, msg in bad:
        (tmp_path / "b.json").write_text(text)
        with pytest.raises(DataError, match=msg) as exc:
            load_profile(tmp_path / "b.json")
        assert "b.json" in str(exc.value)
    for change, msg in [({"score_threshold": 1.5}, "between 0 and 1"),
                        ({"score_threshold": "high"}, "score_threshold"),
                        ({"model_sha256": None}, "model_sha256"),
                        ({"um_per_px": 40}, "um_per_px"), ({"schema_version": 9}, "schema")]:
        with pytest.raises(DataError, match=msg):
            load_profile(_profile(tmp_path, **change))
    with pytest.raises(DataError, match="not found"):
        load_profile(tmp_path / "absent.json")
    with pytest.raises(UsageError, match="not for"):
        p.check_model("cd" * 32, "other.pt", "ok.json")


def test_bundled_model_counts_at_its_operating_point() -> None:
    """The bundled checkpoint and its ONNX twin carry the threshold chosen on the leave-one-video-
    out folds (the mean of their unbiased thresholds), whose recorded count on every held-out
    video is within the ±10 % a lab needs; it is the default, and --conf overrides it."""
    from active.inference.predictor import Predictor, bundled_weights
    from active.models.checkpoint import read_checkpoint

    op = read_checkpoint(bundled_weights())["meta"]["operating_point"]
    assert 0.05 < op["score_threshold"] < 0.95
    folds = op["folds"]
    assert len(folds) >= 2 and len({f["video"] for f in folds}) == len(folds)
    mean = sum(f["unbiased_threshold"] for f in folds) / len(folds)
    assert op["score_threshold"] == pytest.approx(mean, abs=1e-3)
    assert all(abs(f["count_at_threshold"]["bias_pct"]) <= 10 for f in folds), folds
    onnx_p, torch_p = Predictor(), Predictor(backend="torch")
    assert onnx_p.backend.name == "onnx"
    assert onnx_p.conf == torch_p.conf == op["score_threshold"]
    assert onnx_p.operating_point == "model"
    assert Predictor(conf=0.3).conf == 0.3


def test_calibrate_cli_and_profile_use(tmp_path: Path, capsys) -> None:
    from conftest import tiny_synth

    data = tiny_synth(tmp_path / "synth", videos=1, frames=4, seed=3)
    prof = tmp_path / "lab.json"
    assert main(["calibrate", str(data), "--out", str(prof), "--um-per-px", "0.35"]) == 0
    out = capsys.readouterr().out
    assert "bias" in out and str(prof) in out
    p = load_profile(prof)
    assert p.model_file == "active-i-n-svia.pt" and p.um_per_px == 0.35
    assert p.metrics["at_fitted"]["threshold"] == p.score_threshold
    clip = next((data / "original videos").glob("*.mp4"))
    assert main(["detect", str(clip), "--profile", str(prof), "--out", str(tmp_path / "d"),
                 "--quiet", "--no-annotated"]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["score_threshold"] == p.score_threshold
    # without --um-per-px the scale is estimated from the annotated heads (same optics: ~0.35)
    est = tmp_path / "est.json"
    assert main(["calibrate", str(data), "--out", str(est)]) == 0
    e = load_profile(est)
    assert e.um_per_px_from == "estimated from head size" and e.measured_scale is None
    assert e.um_per_px == pytest.approx(0.35, rel=0.25)
    # --conf wins over the profile
    assert main(["detect", str(clip), "--profile", str(prof), "--conf", "0.3", "--out",
                 str(tmp_path / "d2"), "--quiet", "--no-annotated"]) == 0
    assert json.loads((tmp_path / "d2" / "summary.json").read_text())["score_threshold"] == 0.3


def test_profile_for_another_model_and_unannotated_data(tmp_path: Path, capsys) -> None:
    other = _profile(tmp_path)
    clip = tmp_path / "c.mp4"
    from active.data.video import write_video

    write_video(clip, [np.full((64, 96, 3), 150, np.uint8)] * 3, fps=30)
    assert main(["detect", str(clip), "--profile", str(other), "--out", str(tmp_path / "o")]
                ) == 2
    err = capsys.readouterr().err
    assert "p.json" in err and "fitted for m.pt" in err
    assert main(["analyze", str(clip), "--profile", str(other)]) == 2
    empty = tmp_path / "empty"
    (empty / "images").mkdir(parents=True)
    (empty / "labels").mkdir()
    from active.data.images import write_image

    write_image(empty / "images" / "a.png", np.full((32, 32, 3), 120, np.uint8))
    (empty / "labels" / "a.txt").write_text("")
    (empty / "classes.txt").write_text("sperm\nimpurity\n")
    assert main(["calibrate", str(empty), "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "no annotated sperm box" in err and not (tmp_path / "x.json").exists()
