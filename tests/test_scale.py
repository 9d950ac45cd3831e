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
