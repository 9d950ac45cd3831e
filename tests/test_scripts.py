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



def test_ensemble_table_summarises_every_subset_size(capsys: pytest.CaptureFixture[str]) -> None:
    tables = _load("ensemble_experiment").print_tables
    rows = [{"members": m, "fused": {"sperm": f}, "TTA": {"sperm": t}} for m, f, t in (
        (["a"], 0.90, 0.92), (["b"], 0.88, 0.90), (["a", "b"], 0.91, 0.95))]
    tables(rows, ["a", "b"], "fold 2 test")
    out = capsys.readouterr().out
    assert "| #1 + #2 | 91.0 | 95.0 |" in out
    assert "| 1 | 2 | 89.0 (88.0-90.0) | 91.0 (90.0-92.0) |" in out
