"""The YOLO baselines (issue 6): build, train a step, and detect through the common interface."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from active.inference.predictor import Predictor
from active.models.build import build_model
from active.models.checkpoint import load_model, save_checkpoint
from active.models.info import count_params
from active.models.variants import BASELINES, ModelConfig
from active.training.loss import LossConfig, YoloCriterion


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baseline_builds_trains_a_step_and_detects(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(variant=name, scale="tiny", imgsz=(64, 96))
    model = build_model(cfg)
    outs = model(torch.rand(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 3, 64 // s, 96 // s, 7) for s in (8, 16, 32)]
    crit = YoloCriterion(model.anchors, model.strides, 2, LossConfig())
    targets = torch.tensor([[0, 0, 10, 10, 20, 22], [1, 1, 40, 30, 70, 60]], dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = torch.rand(2, 3, 64, 96)
    before = [p.detach().clone() for p in model.parameters()]
    loss, parts = crit(model(x), targets)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and set(parts) >= {"box", "obj", "cls"}
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    # the common interface: checkpoint -> Predictor -> Results
    save_checkpoint(tmp_path / "m.pt", model.eval())
    reloaded, _ = load_model(tmp_path / "m.pt")
    assert reloaded.config.variant == name
    result = Predictor(tmp_path / "m.pt", backend="torch", conf=0.0001)(
        (np.random.default_rng(0).random((50, 70, 3)) * 255).astype(np.uint8))
    assert result.names == ("sperm", "impurity") and result.xyxy.shape[1] == 4


def test_baselines_are_the_published_sizes_at_paper_scale() -> None:
    """Darknet-53 + FPN ~ 61.9 M parameters (YOLOv3), CSPDarknet53 + SPP + PANet ~ 64 M
    (YOLOv4), both with 80 classes; with 2 classes the heads are smaller by ~0.9 M."""
    v3 = count_params(build_model(ModelConfig(variant="yolov3", scale="paper")))
    v4 = count_params(build_model(ModelConfig(variant="yolov4", scale="paper")))
    assert 60e6 < v3 < 62e6
    assert 62e6 < v4 < 65e6


def test_baselines_reject_branch_settings() -> None:
    with pytest.raises(ValueError, match="branches apply to ACTIVE only"):
        ModelConfig(variant="yolov4", branches=("b1",))


@pytest.mark.parametrize("name", ["faster-rcnn", "ssd"])
def test_torchvision_baseline_trains_a_step_and_detects(name: str, tmp_path: Path) -> None:
    from active.models.postprocess import Detections, PostProcessConfig
    from active.models.torchvision_models import TorchvisionLoss

    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=name, scale="tiny", imgsz=(128, 160)))
    assert not any(type(m).__name__ == "FrozenBatchNorm2d" for m in model.modules())
    targets = torch.tensor([[0, 0, 10, 10, 22, 24], [1, 1, 40, 30, 70, 60]], dtype=torch.float32)
    x = torch.rand(2, 3, 128, 160)
    model.train()
    loss, parts = TorchvisionLoss()(model(x, targets), targets)
    assert torch.isfinite(loss) and len(parts) >= 2
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    dets = model.detect(x, PostProcessConfig(score_threshold=0.0, max_det=20))
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    assert all(len(d) <= 20 and (d.classes >= 0).all() and (d.classes < 2).all() for d in dets)
    save_checkpoint(tmp_path / "m.pt", model.eval())
    p = Predictor(tmp_path / "m.pt", conf=0.0)
    assert p.backend.name == "torch"
    r = p((np.random.default_rng(0).random((100, 140, 3)) * 255).astype(np.uint8))
    assert r.xyxy.shape[1] == 4 and (r.xyxy[:, 2] <= 140).all() and (r.xyxy[:, 3] <= 100).all()


@pytest.mark.parametrize("name", ["faster-rcnn", "ssd"])
def test_torchvision_candidates_agree_with_torchvision_post_processing(name: str) -> None:
    """Our post-processing of ``candidate_rows`` starts from what torchvision's own would: the
    single best (box, score, class) of a frame is the same both ways, also when the frame is not
    the model's input size (torchvision resizes it, both map the boxes back); one class per box;
    and flip TTA runs on these models."""
    from active.models.postprocess import PostProcessConfig
    from active.models.predict import predict_batch

    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=name, scale="tiny", imgsz=(128, 160))).eval()
    with torch.no_grad():  # untrained heads score many boxes alike: make the best one unique
        for param in model.parameters():
            param.add_(0.05 * torch.randn_like(param))
    net = model.net
    if hasattr(net, "roi_heads"):
        net.roi_heads.score_thresh, net.roi_heads.nms_thresh = 0.0, 0.5
    else:
        net.score_thresh, net.nms_thresh = 0.0, 0.5
    for shape in ((128, 160), (96, 136)):
        x = torch.rand(2, 3, *shape)
        with torch.no_grad():
            native = net(list(x))
        ours = model.detect(x, PostProcessConfig(score_threshold=0.0, iou_threshold=0.5,
                                                 merge=False))
        for n, d in zip(native, ours, strict=True):
            i, j = int(n["scores"].argmax()), int(d.scores.argmax())
            assert d.scores[j].item() == pytest.approx(n["scores"][i].item(), abs=1e-5)
            assert int(d.classes[j]) == int(n["labels"][i]) - 1
            torch.testing.assert_close(d.boxes[j], n["boxes"][i], atol=1e-3, rtol=0)
            assert (d.boxes[:, 2:] <= torch.tensor([shape[1], shape[0]]) + 1e-3).all()
    rows = model.candidate_rows(torch.rand(1, 3, 128, 160))[0]
    assert rows.shape[1] == 7 and torch.all(rows[:, 4] == 1)
    assert torch.all(rows[:, 5:].sum(1) <= 1 + 1e-5)  # foreground probabilities of one softmax
    frames = [(np.random.default_rng(1).random((100, 140, 3)) * 255).astype(np.uint8)]
    dets = predict_batch(model, frames, (128, 160), None, PostProcessConfig(score_threshold=0.01),
                         tta=True)
    assert len(dets) == 1 and (dets[0].boxes[:, 2] <= 140 + 1e-3).all()


def test_train_a_baseline_through_the_cli(tmp_path: Path) -> None:
    """`active train --model faster-rcnn` runs the shared trainer (2 steps) and evaluates."""
    from active.cli import main
    from conftest import tiny_synth

    root = tiny_synth(tmp_path / "synth", videos=5, frames=3)
    threads = torch.get_num_threads()
    try:
        code = main(["train", "--model", "faster-rcnn", "--scale", "tiny", "--data", str(root),
                     "--epochs", "1", "--out", str(tmp_path / "run"), "--quiet", "--threads", "1",
                     "--set", "model.imgsz=[128, 160]", "--set", "max_steps_per_epoch=2",
                     "--set", "stages=[{name: all, epochs: 1, batch: 2, lr: 0.001, "
                     "freeze_backbone: false}]"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert code == 0 and "threads: 1" in (tmp_path / "run" / "config.yaml").read_text()
    log = (tmp_path / "run" / "log.csv").read_text()
    assert "val_ap50_sperm" in log.splitlines()[0] and len(log.splitlines()) == 2
    assert load_model(tmp_path / "run" / "best.pt")[0].config.variant == "faster-rcnn"


def _external_step_and_detect(name: str, tmp_path: Path) -> None:
    """One training step changes the weights; detect and Predictor give Detections/Results."""
    from active.models.postprocess import Detections, PostProcessConfig
    from active.models.torchvision_models import TorchvisionLoss

    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=name, scale="tiny", imgsz=(128, 160))).train()
    targets = torch.tensor([[0, 0, 10, 10, 22, 24], [1, 1, 40, 30, 70, 60]], dtype=torch.float32)
    x = torch.rand(2, 3, 128, 160)
    loss, parts = TorchvisionLoss()(model(x, targets), targets)
    assert torch.isfinite(loss) and len(parts) >= 2
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loss.backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    model.freeze_backbone(True)
    assert 0 < sum(p.requires_grad for p in model.parameters()) < len(before)
    model.freeze_backbone(False)
    dets = model.detect(x, PostProcessConfig(score_threshold=0.0, max_det=20))
    assert len(dets) == 2 and all(isinstance(d, Detections) for d in dets)
    for d in dets:
        assert 0 < len(d) <= 20 and (d.classes >= 0).all() and (d.classes < 2).all()
        assert (d.boxes[:, 2] <= 160).all() and (d.boxes[:, 3] <= 128).all()
    save_checkpoint(tmp_path / "m.pt", model.eval())
    reloaded, _ = load_model(tmp_path / "m.pt")
    assert reloaded.config.variant == name
    r = Predictor(tmp_path / "m.pt", conf=0.0)(
        (np.random.default_rng(0).random((100, 140, 3)) * 255).astype(np.uint8))
    assert r.names == ("sperm", "impurity") and r.xyxy.shape[1] == 4 and len(r) > 0


def test_efficientdet_d2_trains_a_step_and_detects(tmp_path: Path) -> None:
    pytest.importorskip("effdet", reason="EfficientDet needs the optional extra: pip install "
                        "-e '.[effdet]'")
    _external_step_and_detect("efficientdet-d2", tmp_path)


def test_efficientdet_d2_is_the_published_size() -> None:
    """EfficientDet-D2 has ~8.1 M parameters with COCO's 90 classes; 2 classes: ~8.0 M."""
    pytest.importorskip("effdet", reason="needs the optional 'effdet' extra")
    n = count_params(build_model(ModelConfig(variant="efficientdet-d2", imgsz=(544, 704))))
    assert 7.8e6 < n < 8.2e6


@pytest.mark.parametrize("name", ["yolov8n", "yolo11n"])
def test_ultralytics_trains_a_step_and_detects(name: str, tmp_path: Path) -> None:
    pytest.importorskip("ultralytics", reason="the Ultralytics baseline is an optional extra "
                        "(pip install --no-deps ultralytics ultralytics-thop)")
    _external_step_and_detect(name, tmp_path)


def test_ultralytics_flip_tta(tmp_path: Path) -> None:
    """Flip TTA works on YOLOv8n through its candidates before NMS: the rows are what the fusion
    expects, the network sees the four mirrored views, and the Predictor and the evaluation path
    give the same fused boxes. (Mirror consistency of the fusion itself: tests/test_tta.py.)"""
    pytest.importorskip("ultralytics", reason="the Ultralytics baseline is an optional extra "
                        "(pip install --no-deps ultralytics ultralytics-thop)")
    from active.models.coder import BoxCoder
    from active.models.postprocess import PostProcessConfig
    from active.models.predict import predict_batch
    from active.models.tta import tta_candidates

    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="yolov8n", imgsz=(64, 96))).eval()
    head = model.net.model[-1]  # untrained, every box is the whole frame and every score ~1e-4:
    with torch.no_grad():       # spread the box sides, let the class scores follow the features
        for branch in head.cv2:
            branch[-1].bias.normal_(0.0, 2.0)
        for branch in head.cv3:
            branch[-1].bias.zero_()
    x = torch.rand(1, 3, 64, 96)
    rows = model.candidate_rows(x)
    assert len(rows) == 1 and rows[0].shape == (8 * 12 + 4 * 6 + 2 * 3, 7)
    assert (rows[0][:, 4] == 1).all() and (rows[0][:, [2, 3]] <= rows[0].new_tensor([96, 64])).all()
    seen = []

    def run(batch):
        seen.append(batch.clone())
        return model.candidate_rows(batch)

    fused = tta_candidates(run, x, PostProcessConfig(score_threshold=0.001, nms="iou"))[0]
    assert len(seen) == 4 and len(fused) > 0
    torch.testing.assert_close(seen[3], x.flip(-2, -1))
    save_checkpoint(tmp_path / "v8.pt", model)
    img = (np.random.default_rng(1).random((60, 90, 3)) * 255).astype(np.uint8)
    r = Predictor(tmp_path / "v8.pt", conf=0.001, tta=True)(img)
    assert "tta=True" in repr(Predictor(tmp_path / "v8.pt", tta=True)) and len(r) > 0
    d = predict_batch(load_model(tmp_path / "v8.pt")[0], [img], (64, 96), BoxCoder(),
                      PostProcessConfig(score_threshold=0.001), tta=True)[0]
    assert len(d) == len(r)
    assert np.abs(r.xyxy[:, None] - d.boxes.numpy()[None]).max(-1).min(1).max() < 1e-3
