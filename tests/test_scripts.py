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


def test_bench_pipeline_yolo_postprocess_matches_torchvision() -> None:
    """The torch-free YOLOv8n post-processing of bench_pipeline (OpenCV's batched NMS) keeps the
    boxes torchvision's batched_nms keeps, on random overlapping candidates of two classes."""
    import types

    import numpy as np
    import torch
    from torchvision.ops import batched_nms

    bench = _load("bench_pipeline")
    rng = np.random.default_rng(5)
    n = 400
    xy = rng.uniform(20, 300, (n, 2))
    wh = rng.uniform(8, 30, (n, 2))
    scores = rng.uniform(0, 1, (n, 2)) * (rng.uniform(size=(n, 1)) > 0.3)
    raw = np.concatenate([xy, wh, scores], 1).T[None].astype(np.float32)  # (1, 4 + nc, N)
    pipe = object.__new__(bench.YoloOnnx)
    pipe.backend = types.SimpleNamespace(run=lambda batch: [raw])
    pipe.names, pipe.imgsz = ("sperm", "impurity"), (320, 320)
    pipe.conf, pipe.iou, pipe.max_det = 0.25, 0.45, 300
    pipe.timings = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}
    got = pipe.predict_frames([np.zeros((320, 320, 3), np.uint8)])[0]

    p = torch.from_numpy(raw[0].T)
    best, cls = p[:, 4:].max(1)
    keep = best > 0.25
    p, best, cls = p[keep], best[keep], cls[keep]
    boxes = torch.cat([p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2], 1).clamp(0, 320)
    k = batched_nms(boxes, best, cls, 0.45)
    assert len(got.conf) == len(k) > 10
    np.testing.assert_allclose(np.sort(got.conf), np.sort(best[k].numpy()), rtol=1e-6)


def test_shipped_recipe_polish_data_links_both_sources_and_adds_clips_to_every_fold(
        tmp_path: Path) -> None:
    """The polish step of scripts/train_shipped_model.py trains on real videos and synthetic
    clips side by side: one SVIA-layout folder of links (nothing copied, a second call adds
    nothing), and every fold's training part gains the clips while its test part is unchanged.
    A source without the SVIA layout is refused, naming it."""
    import json

    mod = _load("train_shipped_model")
    real, synth = tmp_path / "real", tmp_path / "synth"
    for src, video in ((real, "S_0001"), (synth, "SYN_0001")):
        for folder in mod.SVIA_FOLDERS:
            (src / folder).mkdir(parents=True)
            (src / folder / f"{video}_{folder[:3]}.txt").write_text(video)
    dest = tmp_path / "mix"
    for _ in range(2):
        mod.link_svia([real, synth], dest)
    for folder in mod.SVIA_FOLDERS:
        files = sorted((dest / folder).iterdir())
        assert [f.name for f in files] == [f"SYN_0001_{folder[:3]}.txt", f"S_0001_{folder[:3]}.txt"]
        assert all(f.is_symlink() for f in files)
    assert (dest / "Subset-A" / "S_0001_Sub.txt").read_text() == "S_0001"
    split = tmp_path / "lovo.json"
    split.write_text(json.dumps({"kind": "kfold", "seed": 0, "videos": ["A", "B"], "folds": [
        {"train": ["A"], "val": [], "test": ["B"]}, {"train": ["B"], "val": [], "test": ["A"]}]}))
    plan = json.loads(mod.with_videos(split, ["SYN_1"], tmp_path / "mixed.json").read_text())
    assert plan["videos"] == ["A", "B", "SYN_1"]
    assert [f["train"] for f in plan["folds"]] == [["A", "SYN_1"], ["B", "SYN_1"]]
    assert [f["test"] for f in plan["folds"]] == [["B"], ["A"]]
    (tmp_path / "flat").mkdir()
    with pytest.raises(SystemExit, match="flat"):
        mod.link_svia([tmp_path / "flat"], tmp_path / "mix2")
