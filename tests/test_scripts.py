"""The analysis scripts under scripts/ that the docs quote: their measuring functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from active.data.record import FrameRecord

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("dx, dy", [(0.0, 0.0), (1.0, 0.0), (-2.0, 1.0)])
def test_centroid_offset_finds_where_a_dark_blob_sits_in_its_box(dx: float, dy: float) -> None:
    """A symmetric dark disc drawn ``(dx, dy)`` px off the centre of its box: the measured
    offset is ``(dx, dy)``; boxes of the other class and boxes at the border are skipped."""
    offsets = _load("box_offsets").centroid_offsets
    h, w = 60, 80
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    cx, cy = 40.0 + dx, 30.0 + dy  # the disc's centre; the box is centred on (40, 30)
    disc = np.clip(4.5 - np.hypot(xs - cx, ys - cy), 0, 1)  # anti-aliased, radius ~4 px
    image = np.repeat((200 - 150 * disc)[..., None], 3, axis=2).astype(np.uint8)
    boxes = np.array([[32, 22, 48, 38], [32, 22, 48, 38], [0, 0, 10, 10]], dtype=np.float32)
    rec = FrameRecord(boxes=boxes, labels=np.array([0, 1, 0]), class_names=("sperm", "impurity"),
                      video_id="v", frame_index=0, width=w, height=h, image_array=image)
    got = offsets([rec])
    assert got.shape == (1, 2)
    np.testing.assert_allclose(got[0], [dx, dy], atol=0.05)


def test_rescore_crops_labels_and_score_mixing() -> None:
    """rescore_experiment.py: a crop is the square around the box (context x its longer side),
    candidates are labelled by IoU with the truth, and w mixes detector score and crop net."""
    from types import SimpleNamespace

    from active.evaluation.ap import ImageResult

    mod = _load("rescore_experiment")
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:20, 30:40] = 255  # a white square; left of it black
    x = mod.crops(image, np.array([[30, 10, 40, 20], [20, 10, 30, 20]], np.float32), 8, 1.0)
    assert x.shape == (2, 3, 8, 8)
    inner = (slice(None), slice(1, -1), slice(1, -1))  # the outer ring blends with neighbours
    assert x[0][inner].min() > 0.99 and x[1][inner].max() < 0.01  # the square / beside it
    wide = mod.crops(image, np.array([[32, 12, 38, 18]], np.float32), 10, 2.0)[0, 0]
    # a 6 px box with context 2: 12 px around its centre, so the 10 px square fills all but the
    # border of the crop
    assert wide.shape == (10, 10) and wide[2:-2, 2:-2].min() > 0.99 and wide[0, 0] < 0.1

    gt = np.array([[10, 10, 20, 20], [40, 10, 50, 20]], np.float32)
    det = np.array([[10, 10, 20, 20],    # IoU 1 with a sperm box -> label 1
                    [41, 10, 51, 20],    # IoU 0.82 with the impurity -> label 2
                    [13, 10, 23, 20],    # IoU 0.54 -> label 1
                    [15, 10, 25, 20],    # IoU 0.33 -> left out
                    [0, 30, 8, 38],      # far from both -> background
                    [10, 10, 20, 20]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.001])  # the last one is under min_score
    res = ImageResult(gt, np.array([0, 1]), det, scores, np.zeros(6, int))
    args = SimpleNamespace(min_score=0.01, jitter=1, crop=8, context=1.5)
    crops_, labels = mod.candidate_set([res], [np.zeros((40, 60, 3), np.uint8)], args,
                                       np.random.default_rng(0))
    assert labels.tolist() == [1, 2, 1, 0, 1, 2]  # 4 candidates kept, then jittered truth
    assert crops_.shape == (6, 3, 8, 8)

    p_bg = [np.array([0.0, 0.5, 1.0, 0.2, 0.9, 0.1])]
    assert np.allclose(mod.rescored([res], p_bg, 0.0)[0].scores, scores)
    assert np.allclose(mod.rescored([res], p_bg, 1.0)[0].scores,
                       np.clip(1 - p_bg[0], 1e-6, 1))
    half = mod.rescored([res], p_bg, 0.5)[0].scores
    assert np.allclose(half, np.sqrt(scores * np.clip(1 - p_bg[0], 1e-6, 1)))
