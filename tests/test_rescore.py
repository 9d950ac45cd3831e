"""The rescorer (a second look at each detection): crops, candidate labels, score mixing, the
file format and its errors, the predictor path and a tiny end-to-end fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from active.cli import main
from active.data.ap import ImageResult
from active.errors import CheckpointError
from active.models.postprocess import Detections
from active.models.rescore import CropNet, Rescorer, crop_boxes, mix_scores
from active.training.rescore import RescoreConfig, label_candidates
from conftest import tiny_synth


def _fixed(p_background: float, weight: float, num_classes: int = 2) -> Rescorer:
    """A rescorer whose net says P(background) = ``p_background`` for every crop."""
    net = CropNet(num_classes, width=4)
    with torch.no_grad():
        net.head.weight.zero_()
        logit = float(np.log(p_background / (1 - p_background) * num_classes))
        net.head.bias.copy_(torch.tensor([logit] + [0.0] * num_classes))
    return Rescorer(net.eval(), ("sperm", "impurity"), crop=8, context=2.0, weight=weight)


def test_crops_are_squares_around_the_box() -> None:
    image = np.zeros((40, 60, 3), np.uint8)
    image[10:20, 30:40] = 255  # a white square; left of it black
    x = crop_boxes(image, np.array([[30, 10, 40, 20], [20, 10, 30, 20]], np.float32), 8, 1.0)
    assert x.shape == (2, 3, 8, 8)
    inner = (slice(None), slice(1, -1), slice(1, -1))  # the outer ring blends with neighbours
    assert x[0][inner].min() > 0.99 and x[1][inner].max() < 0.01  # the square / beside it
    # a 6 px box with context 2: 12 px around its centre, the 10 px square fills all but the rim
    wide = crop_boxes(image, np.array([[32, 12, 38, 18]], np.float32), 10, 2.0)[0, 0]
    assert wide.shape == (10, 10) and wide[2:-2, 2:-2].min() > 0.99 and wide[0, 0] < 0.1


def test_candidates_are_labelled_by_iou_with_the_truth() -> None:
    gt = np.array([[10, 10, 20, 20], [40, 10, 50, 20]], np.float32)
    det = np.array([[10, 10, 20, 20],    # IoU 1 with the sperm box -> 1
                    [41, 10, 51, 20],    # IoU 0.82 with the impurity -> 2
                    [13, 10, 23, 20],    # IoU 0.54 -> 1
                    [15, 10, 25, 20],    # IoU 0.33: between neg_iou and pos_iou -> left out
                    [0, 30, 8, 38],      # far from both -> background
                    [10, 10, 20, 20]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.001])  # the last one is under min_score
    res = ImageResult(gt, np.array([0, 1]), det, scores, np.zeros(6, int))
    cfg = RescoreConfig(crop=8, context=1.5, jitter=1, min_score=0.01)
    x, y = label_candidates([res], [np.zeros((40, 60, 3), np.uint8)], cfg,
                            np.random.default_rng(0))
    assert y.tolist() == [1, 2, 1, 0, 1, 2]  # 4 candidates, then the jittered truth
    assert x.shape == (6, 3, 8, 8)


def test_score_mixing_and_rescoring_one_frame() -> None:
    scores = np.array([0.9, 0.5, 0.1])
    p = np.array([0.0, 0.5, 1.0])
    assert np.allclose(mix_scores(scores, p, 0.0), scores)
    assert np.allclose(mix_scores(scores, p, 1.0), np.clip(1 - p, 1e-6, 1))
    assert np.allclose(mix_scores(scores, p, 0.5), np.sqrt(scores * np.clip(1 - p, 1e-6, 1)))
    assert torch.allclose(mix_scores(torch.tensor(scores), torch.tensor(p), 0.5),
                          torch.tensor(mix_scores(scores, p, 0.5)))

    image = np.full((40, 60, 3), 128, np.uint8)
    det = Detections(torch.tensor([[5., 5, 15, 15], [20, 5, 30, 15], [40, 20, 50, 30]]),
                     torch.tensor([0.9, 0.6, 0.3]), torch.tensor([0, 1, 0]))
    same = _fixed(0.5, 0.0)(image, det)
    assert torch.allclose(same.scores, det.scores) and torch.equal(same.boxes, det.boxes)
    cut = _fixed(0.75, 0.5)(image, det, score_threshold=0.35)  # sqrt(s * 0.25) = s^0.5 / 2
    assert torch.allclose(cut.scores, torch.tensor([0.9, 0.6]).sqrt() / 2, atol=1e-5)
    assert cut.classes.tolist() == [0, 1] and torch.equal(cut.boxes, det.boxes[:2])


def test_rescorer_file_round_trip_and_errors(tmp_path: Path) -> None:
    r = _fixed(0.3, 0.25)
    r.meta = {"fold": 2}
    path = tmp_path / "r.pt"
    r.save(path)
    back = Rescorer.load(path)
    assert (back.class_names, back.crop, back.context, back.weight, back.meta) == (
        r.class_names, r.crop, r.context, r.weight, r.meta)
    x = torch.rand(3, 3, 8, 8)
    torch.testing.assert_close(back.net(x), r.net(x))
    with pytest.raises(CheckpointError, match="missing.pt: rescorer not found"):
        Rescorer.load(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="bad.pt: corrupt or not a rescorer"):
        Rescorer.load(bad)
    other = tmp_path / "detector.pt"
    torch.save({"format": "active-checkpoint", "model": {}}, other)
    with pytest.raises(CheckpointError, match="detector.pt: not an ACTIVE rescorer"):
        Rescorer.load(other)
    newer = torch.load(path, weights_only=True)
    newer["version"] = 99
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="newer.pt: rescorer format version 99"):
        Rescorer.load(tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match="differ from the rescorer's"):
        back.check_classes(("sperm",), "model.pt")


def test_rescore_results_keeps_boxes_and_changes_the_ranking() -> None:
    gt = np.array([[10, 10, 20, 20]], np.float32)
    res = ImageResult(gt, np.array([0]), np.array([[10, 10, 20, 20], [30, 10, 40, 20]],
                                                  np.float32),
                      np.array([0.2, 0.8]), np.array([0, 0]))
    image = np.zeros((40, 60, 3), np.uint8)
    r = _fixed(0.25, 1.0)  # the crop net alone decides: 1 - 0.25 for every box
    out = r.rescore_results([res], [image])[0]
    np.testing.assert_array_equal(out.boxes, res.boxes)
    np.testing.assert_array_equal(out.labels, res.labels)
    assert np.allclose(out.scores, 0.75, atol=1e-5)
    kept = r.rescore_results([res], [image], weight=0.0)[0]  # the detector alone
    assert np.allclose(kept.scores, res.scores)


@pytest.fixture(scope="module")
def synth_fold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from active.data.dataset import load_dataset
    from active.data.splits import kfold_split

    root = tiny_synth(tmp_path_factory.mktemp("synth"), videos=4, frames=3)
    plan = kfold_split({r.video_id for r in load_dataset(root)}, k=4)
    split = root.parent / "split.json"
    plan.save(split)
    return root, split


def test_fit_eval_and_detect_with_a_rescorer(synth_fold, tmp_path: Path, capsys) -> None:
    """End to end on tiny synthetic data with a random-weight detector that fires everywhere:
    ``active rescorer`` trains and saves, ``active eval --rescorer`` and the Predictor use it."""
    from active.inference.predictor import Predictor
    from active.models.build import build_model
    from active.models.checkpoint import save_checkpoint
    from active.models.variants import ModelConfig

    root, split = synth_fold
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="active-i", scale="tiny", imgsz=(128, 160)))
    with torch.no_grad():
        for conv in model.head.modules():
            if isinstance(conv, torch.nn.Conv2d) and conv.out_channels == 3 * 7:
                conv.bias.view(3, 7)[:, 4:] += 3.0
    weights = tmp_path / "det.pt"
    save_checkpoint(weights, model.eval())
    out = tmp_path / "rescorer.pt"
    assert main(["rescorer", "--weights", str(weights), "--data", str(root), "--split",
                 str(split), "--fold", "0", "--out", str(out), "--epochs", "1", "--crop", "16",
                 "--quiet", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "validation AP50 at weight 0.0" in text and "mixing weight" in text
    r = Rescorer.load(out)
    assert r.meta["fold"] == 0 and r.meta["weight_from"] == "validation"
    assert r.weight in RescoreConfig().weights

    report_dir = tmp_path / "eval"
    assert main(["eval", "--weights", str(weights), "--data", str(root), "--split", str(split),
                 "--fold", "0", "--rescorer", str(out), "--out", str(report_dir),
                 "--device", "cpu"]) == 0
    report = json.loads((report_dir / "report.json").read_text())
    assert report["rescorer"] == {"file": str(out), "weight": r.weight}

    from active.data.dataset import load_dataset

    frame = load_dataset(root)[0].image
    plain = Predictor(weights, backend="torch", conf=0.05)(frame)
    # the predictor's cut before rescoring (conf ** 2 at weight 0.5) loses nothing: the same
    # boxes as rescoring every detection above 0.001 and cutting at conf afterwards
    half = _fixed(0.2, 0.5)
    half.save(out)
    got = Predictor(weights, backend="torch", conf=0.3, rescorer=out)(frame)
    low = Predictor(weights, backend="torch", conf=0.001)(frame)
    want = mix_scores(low.conf, np.full(len(low), 0.2), 0.5)
    assert len(got) == int((want >= 0.3).sum()) > 0
    np.testing.assert_allclose(np.sort(got.conf), np.sort(want[want >= 0.3]), rtol=1e-4)
    r.weight = 1.0
    with torch.no_grad():  # a crop net sure that everything is background: nothing is left
        r.net.head.bias.copy_(torch.tensor([20.0, 0.0, 0.0]))
    r.save(out)
    rescored = Predictor(weights, backend="torch", conf=0.05, rescorer=out)
    assert len(plain) > 0 and len(rescored(frame)) == 0
    assert "rescorer weight 1.0" in repr(rescored)
