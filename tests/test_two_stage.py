"""ACTIVE with a second stage (active.models.two_stage): the RoI head trains with the one-stage
loss, its rows and detections are well-formed, checkpoints round-trip, one-stage weights take a
new second stage, and every inference path that can run it does (ONNX refuses)."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from active.errors import UsageError
from active.models.build import build_model
from active.models.checkpoint import load_model, save_checkpoint
from active.models.coder import BoxCoder
from active.models.postprocess import PostProcessConfig
from active.models.two_stage import POST_NMS, TwoStageCriterion, TwoStageDetector, proposals_from
from active.models.variants import ModelConfig
from active.training import trainer as trainer_mod
from active.training.config import StageConfig, load_config
from active.training.loss import LossConfig, YoloCriterion
from conftest import tiny_synth

SIZE = (128, 160)


def _model(seed: int = 0) -> TwoStageDetector:
    torch.manual_seed(seed)
    return build_model(ModelConfig(scale="tiny", imgsz=SIZE, second_stage=True))


def _targets() -> torch.Tensor:
    return torch.tensor([[0, 0, 20, 30, 36, 46], [0, 1, 60, 60, 100, 90], [1, 0, 5, 5, 21, 19]],
                        dtype=torch.float32)


def test_config_and_build():
    assert isinstance(_model(), TwoStageDetector)
    assert type(build_model(ModelConfig(scale="tiny", imgsz=SIZE))).__name__ == "Detector"
    with pytest.raises(ValueError, match="second_stage applies to ACTIVE"):
        ModelConfig(variant="ssd", second_stage=True)
    assert ModelConfig.from_dict(ModelConfig(second_stage=True).to_dict()).second_stage


def test_training_forward_gives_both_losses_and_gradients_reach_the_backbone():
    model = _model().train()
    criterion = TwoStageCriterion(YoloCriterion(model.anchors, model.strides, 2, LossConfig()))
    assert criterion.takes_targets
    x = torch.rand(2, 3, *SIZE)
    with pytest.raises(ValueError, match="needs targets"):
        model(x)
    loss, parts = criterion(model(x, _targets()), _targets())
    assert {"box", "obj", "cls", "roi_cls", "roi_box"} <= set(parts)
    assert torch.isfinite(loss) and parts["roi_cls"] > 0
    loss.backward()
    for name in ("roi_heads.box_predictor.cls_score.weight", "roi_conv.conv.weight"):
        assert model.get_parameter(name).grad.abs().sum() > 0, name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    # the second stage's loss reaches the backbone (proposals themselves carry no gradient)
    model.zero_grad()
    roi_only = model(x, _targets())[1]
    sum(roi_only.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.head.parameters())


def test_proposals_are_clipped_distinct_and_capped():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(2, 5000, 2, generator=g) * 200 - 20
    wh = torch.rand(2, 5000, 2, generator=g) * 30 + 1
    decoded = torch.cat([xy, xy + wh, torch.rand(2, 5000, 3, generator=g)], -1)
    boxes, scores = proposals_from(decoded, SIZE)
    for b, s in zip(boxes, scores, strict=True):
        assert 0 < len(b) <= POST_NMS and len(b) == len(s)
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= SIZE[1]).all() and (b[:, 3] <= SIZE[0]).all()
        assert (s[:-1] >= s[1:]).all()  # best first
        from torchvision.ops import box_iou

        iou = box_iou(b, b).fill_diagonal_(0)
        assert iou.max() <= 0.7 + 1e-6


def test_rows_and_detections_are_well_formed():
    model = _model().eval()
    x = torch.rand(2, 3, *SIZE)
    rows = model.candidate_rows(x)
    assert len(rows) == 2
    for r in rows:
        assert r.shape[1] == 5 + 2 and len(r) <= POST_NMS
        assert (r[:, 4] == 1).all() and (r[:, 5:] >= 0).all()
        assert (r[:, 5:].sum(1) <= 1 + 1e-5).all()  # softmax: the background holds the rest
        assert (r[:, 0] >= 0).all() and (r[:, 2] <= SIZE[1]).all()
    dets = model.detect(x, PostProcessConfig.for_evaluation())
    for d, r in zip(dets, rows, strict=True):
        assert 0 < len(d) <= len(r)
        assert (d.scores[:-1] >= d.scores[1:]).all()
    assert isinstance(model(x), list)  # eval forward: the first stage's raw outputs


def test_checkpoint_round_trip_keeps_the_coder(tmp_path):
    model = _model().eval()
    coder = BoxCoder(mode="exp", scale_xy=1.1)
    path = tmp_path / "two.pt"
    save_checkpoint(path, model, LossConfig(decode="exp", scale_xy=1.1).to_dict())
    again, _ = load_model(path)
    assert isinstance(again, TwoStageDetector) and again.coder == coder
    model.coder = coder
    x = torch.rand(1, 3, *SIZE)
    for a, b in zip(model.candidate_rows(x), again.candidate_rows(x), strict=True):
        torch.testing.assert_close(a, b)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth2s"), videos=4, frames=4)


def _config(root, out, **kw):
    cfg = load_config(overrides=[
        "model.variant=active-i", "model.scale=tiny", f"model.imgsz={list(SIZE)}",
        f"data.path={root}", f"out={out}", "warmup_steps=2", "augment.mosaic=0",
    ])
    return replace(cfg, stages=[StageConfig("scratch", 4, 2, 5e-3, False)], **kw)


def test_trains_end_to_end_and_every_inference_path_runs(synth_root, tmp_path):
    from active.inference.predictor import Predictor

    cfg = _config(synth_root, tmp_path / "run", ema=False, eval_every=2)
    cfg = replace(cfg, model=replace(cfg.model, second_stage=True))
    summary = trainer_mod.fit(cfg, progress=False)
    history = summary["history"]
    assert history[-1]["roi_cls"] < history[0]["roi_cls"], history
    assert history[1]["val_map50"] >= 0  # validated through the second stage
    weights = tmp_path / "run" / "last.pt"
    frame = (np.random.default_rng(0).random((128, 160, 3)) * 255).astype(np.uint8)
    plain = Predictor(weights, conf=0.001)(frame)
    flipped = Predictor(weights, conf=0.001, tta=True)(frame)
    assert len(plain) > 0 and len(flipped) > 0
    with pytest.raises(UsageError, match="torch backend only"):
        Predictor(weights, backend="onnx")
    from active.models.export import export_onnx

    with pytest.raises(UsageError, match="second stage does not export"):
        export_onnx(weights, tmp_path / "two.onnx")
    assert not (tmp_path / "two.onnx").exists()


def test_one_stage_weights_take_a_new_second_stage(synth_root, tmp_path):
    one = _config(synth_root, tmp_path / "one", ema=False, eval_every=100)
    one = replace(one, stages=[StageConfig("scratch", 1, 2, 1e-3, False)])
    trainer_mod.fit(one, progress=False)
    first, _ = load_model(tmp_path / "one" / "last.pt")
    two = replace(one, out=tmp_path / "two", init_weights=tmp_path / "one" / "last.pt",
                  model=replace(one.model, second_stage=True),
                  stages=[StageConfig("scratch", 1, 2, 0.0, False)])
    trainer_mod.fit(two, progress=False)
    model, _ = load_model(tmp_path / "two" / "last.pt")
    assert isinstance(model, TwoStageDetector)
    theirs = dict(model.named_parameters())  # lr 0: the first stage's weights are the loaded ones
    for name, p in first.named_parameters():
        torch.testing.assert_close(p, theirs[name])
    assert {n.split(".")[0] for n in theirs if n not in dict(first.named_parameters())} == {
        "roi_conv", "roi_heads"}


def test_context_pooling_reads_outside_the_proposal_and_round_trips(tmp_path):
    from active.models.two_stage import ContextRoIPool, widen_boxes

    with pytest.raises(ValueError, match="roi_context applies to the second stage"):
        ModelConfig(roi_context=2.0)
    with pytest.raises(ValueError, match=r"roi_context must be in \[1, 8\]"):
        ModelConfig(second_stage=True, roi_context=0.5)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 30.0]])
    torch.testing.assert_close(widen_boxes(boxes, 3.0), torch.tensor([[-10.0, 10.0, 50.0, 40.0]]))
    torch.manual_seed(0)
    model = build_model(ModelConfig(scale="tiny", imgsz=SIZE, second_stage=True,
                                    roi_context=3.0)).eval()
    pool = model.roi_heads.box_roi_pool
    assert isinstance(pool, ContextRoIPool)
    # a feature map that is zero inside the proposal and one around it: only the context sees it
    feat = torch.ones(1, 4, SIZE[0] // 8, SIZE[1] // 8)
    feat[..., 1:8, 1:8] = 0
    pooled = pool({"p3": feat}, [torch.tensor([[16.0, 16.0, 48.0, 48.0]])], [SIZE])
    assert pooled.shape == (1, 8, 7, 7)
    assert pooled[:, :4].abs().max() < 1e-6 and pooled[:, 4:].max() > 0.5
    path = tmp_path / "ctx.pt"
    save_checkpoint(path, model, LossConfig().to_dict())
    again, _ = load_model(path)
    assert again.config.roi_context == 3.0
    x = torch.rand(1, 3, *SIZE)
    for a, b in zip(model.candidate_rows(x), again.candidate_rows(x), strict=True):
        torch.testing.assert_close(a, b)
    # a config without the key (older checkpoints) reads as no context
    old = ModelConfig(second_stage=True).to_dict()
    del old["roi_context"]
    assert ModelConfig.from_dict(old).roi_context == 1.0
