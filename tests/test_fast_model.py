"""The bundled fast model (issue 31): ``--weights fast``, a 512x384 ReLU network that records the
scale of its own input, so that ``--um-per-px`` feeds it frames at the size it learnt."""

from __future__ import annotations

import numpy as np
import pytest

from active.inference.predictor import (
    FAST_MODEL,
    Predictor,
    bundled_weights,
    onnx_twin,
    resolve_weights,
)


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    from active.data.synth import SynthConfig, render_video

    return render_video(SynthConfig(frames=1), 5, "T").frames[0]  # 698x528, 0.35 µm/px


def test_fast_is_a_bundled_model_with_its_onnx_twin() -> None:
    pt = resolve_weights("fast")
    assert pt == bundled_weights(FAST_MODEL) and pt.stat().st_size < 8e6
    assert onnx_twin(pt) == pt.with_suffix(".onnx")
    p = Predictor("fast")
    assert p.backend.name == "onnx" and p.names == ("sperm", "impurity")
    assert p.imgsz == (384, 512)
    assert p.conf is not None and 0.2 < p.conf < 0.7 and p.operating_point == "model"


def test_fast_model_records_its_input_scale(frame: np.ndarray) -> None:
    """Trained on 698x528 frames letterboxed to 512x384 (x0.727): it saw 0.35 / 0.727 µm/px, so
    a 0.35 µm/px video is shrunk to that input, and a 0.7 µm/px one is not shrunk further."""
    p = Predictor("fast")
    assert p.model_um_per_px == pytest.approx(0.35 / (384 / 528), rel=0.01)
    assert 11 < p.model_head_box_px < 15  # SVIA's 18 px heads at x0.727
    assert p._input_for(frame.shape) == (384, 512)
    p.set_scale(0.35)
    assert p._input_for(frame.shape) == (384, 512)
    p.set_scale(0.7)  # a lower magnification: heads half the size, so the frame is enlarged
    assert p._input_for(frame.shape) == (768, 1024)


def test_fast_model_onnx_matches_torch_and_finds_heads(frame: np.ndarray) -> None:
    from active.models.checkpoint import read_checkpoint

    data = read_checkpoint(resolve_weights("fast"))
    assert data["model_config"]["act"] == "relu"
    a, b = Predictor("fast")(frame), Predictor("fast", backend="torch")(frame)
    assert len(a) == len(b) > 5
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)
