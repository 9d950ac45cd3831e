"""Physical scale (issue 30): frames resized so that heads reach the model at its training
scale, whatever the objective and camera; a warning when a large frame is shrunk without it."""

from __future__ import annotations

import warnings
from dataclasses import replace

import cv2
import numpy as np
import pytest

from active.data.ap import ImageResult
from active.errors import UsageError
from active.evaluation.report import operating_point
from active.inference.predictor import Predictor


@pytest.fixture(scope="module")
def scenes() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One synthetic field at the model's scale (0.35 µm/px), and a 2x2 mosaic of four fields
    (a camera with twice the field of view) at 0.35 and, halved, at 0.7 µm/px."""
    from active.data.synth import SynthConfig, render_video

    v = render_video(replace(SynthConfig(), frames=4, sperm_in_view=(30.0, 40.0)), 11, "T")
    h, w = v.frames[0].shape[:2]
    big = np.vstack([np.hstack(v.frames[:2]), np.hstack(v.frames[2:])])
    shifts = [(0, 0), (w, 0), (0, h), (w, h)]
    boxes = np.concatenate([r.boxes + np.array([dx, dy, dx, dy], np.float32)
                            for r, (dx, dy) in zip(v.records, shifts, strict=True)])
    labels = np.concatenate([r.labels for r in v.records])
    small = cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA)
    return {"native": (v.frames[0], v.records[0].boxes, v.records[0].labels),
            "big": (big, boxes, labels), "small": (small, boxes / 2, labels)}


def _recall(pred: Predictor, scene: tuple[np.ndarray, np.ndarray, np.ndarray]) -> float:
    img, boxes, labels = scene
    d = pred(img)
    op = operating_point([ImageResult(boxes, labels, d.xyxy, d.conf, d.cls)], pred.names, 0.25)
    return op["per_class"]["sperm"]["recall"]


def test_resizing_to_the_model_scale_recovers_recall(scenes) -> None:
    native = _recall(Predictor(conf=0.25), scenes["native"])
    for name, um in (("big", 0.35), ("small", 0.7)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plain = _recall(Predictor(conf=0.25), scenes[name])
        scaled = _recall(Predictor(conf=0.25, um_per_px=um), scenes[name])
        assert scaled >= native - 0.05, (name, scaled, native)
        assert scaled > plain, (name, scaled, plain)


def test_onnx_and_torch_agree_at_a_resized_input(scenes) -> None:
    img = scenes["small"][0]
    a = Predictor(conf=0.25, um_per_px=0.7)(img)
    b = Predictor(conf=0.25, um_per_px=0.7, backend="torch")(img)
    assert a.shape == img.shape[:2] and len(a) == len(b) > 10
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.05)


def test_large_frame_without_scale_warns(scenes) -> None:
    with pytest.warns(UserWarning, match="--um-per-px"):
        Predictor(conf=0.25)(scenes["big"][0])


def test_scale_errors() -> None:
    with pytest.raises(UsageError, match="um-per-px"):
        Predictor(um_per_px=20.0)
    with pytest.raises(UsageError, match="imgsz or um_per_px"):
        Predictor(um_per_px=0.35, imgsz=(544, 704))


def test_training_scale_is_the_network_inputs() -> None:
    """A model fine-tuned at a smaller input than its frames saw them shrunk: its recorded
    µm/px and head size are the network input's, so --um-per-px resizes frames to match."""
    from active.data.scale import training_scale

    boxes = np.array([[0, 0, 18, 12], [10, 10, 26, 30], [5, 5, 23, 15]], float)  # 18, 20, 18
    native = training_scale(boxes, (528, 698), (544, 704), 0.35)
    small = training_scale(boxes, (528, 698), (384, 512), 0.35)
    assert native["letterbox"] == pytest.approx(704 / 698, abs=1e-4)
    assert small["letterbox"] == pytest.approx(384 / 528, abs=1e-4)
    assert small["um_per_px"] == pytest.approx(0.35 * 528 / 384, abs=1e-3)
    assert small["head_box_px"] == pytest.approx(18 * 384 / 528, abs=0.01)
    # the physical head length is the same whatever the input size
    for s in (native, small):
        assert s["um_per_px"] * s["head_box_px"] == pytest.approx(0.35 * 18, rel=1e-3)
    with pytest.raises(ValueError, match="no sperm box"):
        training_scale(np.zeros((0, 4)), (528, 698), (384, 512), 0.35)
