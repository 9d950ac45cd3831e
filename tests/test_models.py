"""Tests of the ACTIVE network: variants x scales, shapes, ablation, freezing, anchors, ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from active.models.anchors import anchor_fitness, kmeans_anchors, letterbox_wh, wh_iou
from active.models.build import build_model
from active.models.detector import Detector
from active.models.info import format_info, model_info
from active.models.layers import SPP, MBConv
from active.models.necks import CCFPN_SPECS
from active.models.variants import SCALES, VARIANTS, ModelConfig, get_variant

torch.set_num_threads(2)


def tiny(variant: str = "active-i", **kw) -> Detector:
    torch.manual_seed(0)
    return build_model(ModelConfig(variant=variant, scale="tiny", **kw))


def expected_shapes(b: int, h: int, w: int, na: int = 3, nc: int = 2) -> list[tuple[int, ...]]:
    return [(b, na, h // s, w // s, 5 + nc) for s in (8, 16, 32)]


@pytest.mark.parametrize("scale", sorted(SCALES))
def test_every_variant_builds(scale: str) -> None:
    sizes = {}
    for name in VARIANTS:
        model = build_model(ModelConfig(variant=name, scale=scale))
        assert model.strides == (8, 16, 32)
        assert model.anchors.shape == (3, 3, 2) and model.anchors.dtype == torch.float32
        assert model.num_classes == 2 and model.class_names == ("sperm", "impurity")
        assert model.config.variant == name
        sizes[name] = sum(p.numel() for p in model.parameters())
    # the dense and SPP variants add neck parameters on top of their simpler siblings
    assert sizes["active-ii"] > sizes["active-i"] and sizes["active-v"] > sizes["active-i"]
    assert sizes["active-iv"] > sizes["active-iii"] > sizes["active-i"]
    if scale == "paper":  # CSPDarknet53 + EfficientNet-B0 size range
        assert min(sizes.values()) > 20e6 and max(sizes.values()) < 100e6
    if scale == "tiny":
        assert max(sizes.values()) < 300_000


def test_n_scale_speed_tweaks_keep_both_branches_and_strides() -> None:
    model = build_model(ModelConfig(variant="active-i", scale="n"))
    b1, b2 = model.backbone.b1, model.backbone.b2
    assert b1.stem.conv.stride == (2, 2) and len(b1.stages) == 4
    assert len(b2.blocks) == 6 and len(b2.blocks[0].block) == 3  # stage 1 dropped, no expansion
    assert b1.out_channels == (64, 128, 256) and b2.out_channels == (16, 32, 80)
    paper = build_model(ModelConfig(variant="active-i", scale="paper"))
    assert len(paper.backbone.b1.stages) == 5 and len(paper.backbone.b2.blocks) == 16
    assert paper.backbone.b1.out_channels == (256, 512, 1024)
    assert paper.backbone.b2.out_channels == (40, 112, 320)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_tiny_forward_shapes(variant: str) -> None:
    model = tiny(variant).eval()
    with torch.no_grad():
        outs = model(torch.rand(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == expected_shapes(2, 64, 96)
    assert all(torch.isfinite(o).all() for o in outs)


def test_train_and_eval_return_the_same_structure() -> None:
    model = tiny("active-viii")
    x = torch.rand(2, 3, 64, 64)
    train_out = model.train()(x)
    with torch.no_grad():
        eval_out = model.eval()(x)
    assert isinstance(train_out, list) and isinstance(eval_out, list)
    assert [o.shape for o in train_out] == [o.shape for o in eval_out]


def test_gradients_reach_both_branches_neck_and_head() -> None:
    model = tiny("active-iv").train()
    loss = sum(o.square().mean() for o in model(torch.rand(2, 3, 64, 64)))
    loss.backward()
    for prefix in ("backbone.b1.", "backbone.b2.", "backbone.fuse.", "neck.", "head."):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix)]
        assert grads and all(g is not None for g in grads), prefix
        assert any(g.abs().sum() > 0 for g in grads), prefix


@pytest.mark.parametrize("branches", [("b1",), ("b2",)])
def test_ablation_holds_one_branch_and_the_same_neck_and_head(branches: tuple[str, ...]) -> None:
    full, single = tiny("active-ii"), tiny("active-ii", branches=branches)
    names = {n.split(".")[1] for n, _ in single.backbone.named_parameters(prefix="backbone")}
    assert names == {branches[0], "fuse"}
    for part in ("neck", "head"):
        shapes = {k: v.shape for k, v in getattr(full, part).state_dict().items()}
        assert shapes == {k: v.shape for k, v in getattr(single, part).state_dict().items()}
    # only the fusion convs' input width differs
    assert single.backbone.fuse[0].conv.in_channels < full.backbone.fuse[0].conv.in_channels
    outs = single.eval()(torch.rand(1, 3, 64, 64))
    assert [tuple(o.shape) for o in outs] == expected_shapes(1, 64, 64)


def test_freeze_backbone_stops_grads_and_statistics_in_the_backbone_only() -> None:
    model = tiny("active-v")
    model.freeze_backbone(True)
    model.train()
    bn = model.backbone.b1.stem.bn
    assert not bn.training and model.neck.training
    stats = bn.running_mean.clone()
    sum(o.sum() for o in model(torch.rand(2, 3, 64, 64))).backward()
    assert torch.equal(stats, bn.running_mean)
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.neck.parameters())
    assert all(p.grad is not None for p in model.head.parameters())
    model.freeze_backbone(False)
    assert bn.training and all(p.requires_grad for p in model.backbone.parameters())


def test_head_bias_priors() -> None:
    model = tiny()
    for conv, stride in zip(model.head.convs, model.strides, strict=True):
        bias = conv.bias.detach().view(3, 7)
        cells = (416 / stride) ** 2 * 3
        obj = torch.sigmoid(bias[:, 4])
        assert torch.allclose(obj, torch.full_like(obj, 10 / cells), rtol=1e-3)
        assert torch.allclose(torch.sigmoid(bias[:, 5:]), torch.tensor(0.01), rtol=1e-3)
        assert bias[:, :4].abs().max() == 0


def test_anchors_are_config_data_and_a_buffer() -> None:
    anchors = [[float(i), float(i)] for i in range(9, 0, -1)]  # reverse order: sorted by area
    model = tiny(anchors=anchors)
    assert model.anchors[0, 0].tolist() == [1.0, 1.0] and model.anchors[2, 2].tolist() == [9.0, 9.0]
    assert "anchors" in model.state_dict()


def test_config_round_trip_and_validation() -> None:
    cfg = ModelConfig(variant="ACTIVE-VII", scale="s", branches=["b2"], imgsz=[544, 704])
    assert cfg.variant == "active-vii" and get_variant("Active-VII").spp
    data = json.loads(json.dumps(cfg.to_dict()))
    assert ModelConfig.from_dict(data) == cfg
    assert isinstance(data["anchors"], list) and isinstance(data["anchors"][0], list)
    with pytest.raises(ValueError, match="unknown variant"):
        ModelConfig(variant="active-ix")
    with pytest.raises(ValueError, match="unknown scale"):
        ModelConfig(scale="xl")
    with pytest.raises(ValueError, match="branches"):
        ModelConfig(branches=("b3",))
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({"variantt": "active-i"})
    with pytest.raises(ValueError, match="classes"):
        ModelConfig(num_classes=3)


def test_ccfpn_specs_follow_the_equations() -> None:
    # each output starts from its own level; II and IV keep the finest level as is
    for spec in CCFPN_SPECS.values():
        assert sorted(t for t, _ in spec) == [0, 1, 2]
        assert all(sources[0] == ("P", t) for t, sources in spec)
    assert [len(s) for _, s in CCFPN_SPECS["III"]] == [3, 3, 3]
    assert CCFPN_SPECS["IV"][2] == (2, (("P", 2), ("O", 1), ("O", 0)))
    assert [len(tiny(v).neck.stages) for v in ("active-i", "active-ii", "active-iv")] == [1, 2, 2]


def test_spp_serial_pools_equal_parallel_5_9_13() -> None:
    spp = SPP(8, 8).eval()
    x = torch.randn(1, 4, 20, 20)
    serial = [x]
    for pool in spp.pools:
        serial.append(pool(serial[-1]))
    parallel = [x] + [nn.functional.max_pool2d(x, k, 1, k // 2) for k in (5, 9, 13)]
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel, strict=True))


def test_mbconv_skip_only_when_shape_is_kept() -> None:
    assert MBConv(16, 16, 1).skip and not MBConv(16, 24, 1).skip and not MBConv(16, 16, 2).skip
    assert len(MBConv(16, 16, expand=1).block) == 3  # no expansion conv at ratio 1


def test_kmeans_recovers_planted_clusters_sorted_by_area() -> None:
    rng = np.random.default_rng(1)
    centers = np.array([[6, 8], [12, 10], [20, 30], [40, 35], [70, 90], [120, 100]], float)
    wh = np.concatenate([c * rng.uniform(0.95, 1.05, size=(200, 2)) for c in centers])
    fit = kmeans_anchors(wh, num_anchors=6, seed=0)
    assert np.allclose(fit.anchors, centers, rtol=0.05)
    areas = fit.anchors.prod(axis=1)
    assert np.all(np.diff(areas) > 0)
    assert fit.mean_iou > 0.85 and fit.recall == 1.0
    again = kmeans_anchors(wh, num_anchors=6, seed=0)
    assert np.array_equal(fit.anchors, again.anchors)
    assert anchor_fitness(wh, fit.anchors) == (fit.mean_iou, fit.recall)
    assert len(fit.as_config()) == 6 and ModelConfig(anchors=kmeans_anchors(wh).as_config())


def test_wh_helpers() -> None:
    assert wh_iou(np.array([[2.0, 2.0]]), np.array([[2.0, 2.0], [4.0, 1.0]])).tolist() == [
        [1.0, 2 / 6]
    ]
    scaled = letterbox_wh([[698 / 2, 528 / 2]], (528, 698), (416, 416))
    assert np.allclose(scaled, [[208.0, 208 * 528 / 698]])


def test_model_info_and_format() -> None:
    info = model_info("active-ii", "tiny", imgsz=(64, 96), runs=2, warmup=1)
    assert info["output_shapes"] == [list(s) for s in expected_shapes(1, 64, 96)]
    assert info["params"] > info["params_backbone"] > 0 and info["gflops"] > 0
    assert info["latency_ms"] > 0
    json.dumps(info)
    assert "active-ii" in format_info(info) and "GFLOPs" in format_info(info)
    assert "1x3x8x12x7" in format_info(info)  # stride-8 map: 3 anchors x (4 + 1 + 2)
    # a detector that returns detections (torchvision's) prints the word, not its letters
    assert "outputs     detections\n" in format_info({**info, "output_shapes": ["detections"]})


def test_onnx_export_with_dynamic_shapes_matches_torch() -> None:
    ort = pytest.importorskip("onnxruntime")
    from torch.export import Dim

    model = tiny("active-viii").eval()
    batch, h, w = Dim("batch", min=1, max=16), Dim("h", min=1, max=64), Dim("w", min=1, max=64)
    program = torch.onnx.export(
        model,
        (torch.rand(1, 3, 64, 96),),
        dynamo=True,
        input_names=["images"],
        dynamic_shapes=({0: batch, 2: 32 * h, 3: 32 * w},),
        verbose=False,
    )
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for shape in [(1, 3, 64, 96), (2, 3, 128, 64)]:
        x = torch.rand(*shape)
        outs = session.run(None, {"images": x.numpy()})
        with torch.no_grad():
            ref = model(x)
        assert len(outs) == 3
        for got, want in zip(outs, ref, strict=True):
            assert got.shape == tuple(want.shape)
            np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("scale", ["paper", "s", "n"])
def test_real_scales_forward_at_416(scale: str) -> None:
    model = build_model(ModelConfig(variant="active-viii", scale=scale)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 416, 416))
    assert [tuple(o.shape) for o in outs] == expected_shapes(1, 416, 416)


def test_stripped_export_drops_training_state_and_unmeasured_scores(tmp_path) -> None:
    """A model trained without validation records NaN validation scores; the released copy
    leaves them out (a NaN is never a number a lab reads) and keeps the rest of ``meta``."""
    from active.models.checkpoint import read_checkpoint, save_checkpoint
    from active.models.export import export_stripped

    src = tmp_path / "last.pt"
    model = build_model(ModelConfig(variant="active-i", scale="tiny", imgsz=(64, 64)))
    save_checkpoint(src, model, train_state={"epoch": 3},
                    meta={"epoch": 3, "val_map50": float("nan"), "best_by": "map50"})
    data = read_checkpoint(export_stripped(src, tmp_path / "ship.pt", {"note": "x"}))
    assert "train_state" not in data
    assert "val_map50" not in data["meta"]
    assert data["meta"]["epoch"] == 3 and data["meta"]["note"] == "x"
    assert data["meta"]["exported_from"] == str(src)
