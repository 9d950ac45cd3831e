"""Model ensembles (active.models.ensemble): the fusion rule, the checks on members, and the
evaluation / Predictor / CLI paths that take several checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from active.errors import UsageError
from active.inference.predictor import Predictor
from active.models.build import build_model
from active.models.checkpoint import save_checkpoint
from active.models.coder import BoxCoder
from active.models.ensemble import Ensemble
from active.models.postprocess import PostProcessConfig, postprocess
from active.models.variants import ModelConfig
from conftest import tiny_synth

SIZE = (128, 160)


class Fixed(nn.Module):
    """A stand-in member that always proposes the same candidate rows."""

    def __init__(self, rows: torch.Tensor, names=("sperm", "impurity")) -> None:
        super().__init__()
        self.rows, self.class_names = rows, tuple(names)
        self.config = ModelConfig(variant="active-i", scale="tiny")

    def candidate_rows(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.rows.clone() for _ in range(x.shape[0])]


def _rows(boxes, scores, cls):
    out = torch.zeros(len(boxes), 7)
    out[:, :4] = torch.tensor(boxes, dtype=torch.float32)
    out[:, 4] = torch.tensor(scores)
    out[torch.arange(len(cls)), 5 + torch.tensor(cls)] = 1.0
    return out


def _tiny(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(variant="active-i", scale="tiny", imgsz=SIZE))
    with torch.no_grad():
        for conv in model.head.modules():
            if isinstance(conv, nn.Conv2d) and conv.out_channels == 3 * 7:
                conv.bias.view(3, 7)[:, 4:] += 3.0 + seed  # confident enough to give boxes
    return model.eval()


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("ens")
    paths = []
    for seed in (0, 1):
        paths.append(root / f"m{seed}.pt")
        save_checkpoint(paths[-1], _tiny(seed))
    return paths


def test_agreement_keeps_its_score_and_a_lone_find_is_divided():
    """Two members find box A; only the first finds box B: A keeps the mean of its two best
    scores and the mean of their boxes, B is scored at half its score."""
    a = Fixed(_rows([[10, 10, 30, 30], [60, 60, 80, 80]], [0.9, 0.8], [0, 1]))
    b = Fixed(_rows([[12, 10, 32, 30]], [0.7], [0]))
    dets = Ensemble([a, b]).detect(torch.zeros(1, 3, 96, 96), PostProcessConfig(0.01))[0]
    assert dets.classes.tolist() == [0, 1]
    torch.testing.assert_close(dets.scores, torch.tensor([0.8, 0.4]))
    expected = (0.9 * torch.tensor([10.0, 10, 30, 30]) + 0.7 * torch.tensor([12.0, 10, 32, 30]))
    torch.testing.assert_close(dets.boxes[0], expected / 1.6)


class ConvNet(nn.Module):
    """A stand-in one-stage member: one strided random convolution as its head (an untrained
    detector scores every prior alike, which makes ties everywhere)."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.kernel = torch.randn(7, 3, 8, 8, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("anchors", torch.tensor([[[12.0, 12.0]]]))
        self.strides, self.class_names = (8,), ("sperm", "impurity")
        self.config = ModelConfig(variant="active-i", scale="tiny")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = nn.functional.conv2d(x, self.kernel * 0.2, stride=8)
        return [out.permute(0, 2, 3, 1)[:, None]]


def test_identical_members_give_one_members_merged_detections():
    """One member, or the same member twice, is that model's merged NMS output; a second
    member that differs changes the ranking."""
    model = ConvNet(0)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    cfg = PostProcessConfig(score_threshold=0.2)
    alone = postprocess(model(x), model.anchors, model.strides, BoxCoder(), cfg)
    for ens in (Ensemble([model]), Ensemble([model, model])):
        for got, want in zip(ens.detect(x, cfg), alone, strict=True):
            assert len(want) > 3
            torch.testing.assert_close(got.boxes, want.boxes)
            torch.testing.assert_close(got.scores, want.scores)
    mixed = Ensemble([model, ConvNet(1)]).detect(x, cfg)[0]
    assert len(mixed) != len(alone[0]) or not torch.allclose(mixed.scores, alone[0].scores)


def test_members_must_share_classes_and_give_candidates():
    rows = _rows([[0, 0, 5, 5]], [0.5], [0])
    with pytest.raises(UsageError, match="b.pt: classes"):
        Ensemble([Fixed(rows), Fixed(rows, ("cell", "debris"))], sources=["a.pt", "b.pt"])
    final_only = nn.Module()
    final_only.class_names, final_only.returns_detections = ("sperm", "impurity"), True
    final_only.config = ModelConfig(variant="efficientdet-d2", scale="n")
    with pytest.raises(UsageError, match="efficientdet-d2 returns final detections only"):
        Ensemble([final_only])
    with pytest.raises(UsageError, match="at least one"):
        Ensemble([])


def test_predictor_and_eval_take_several_weights(ckpts, tmp_path, capsys):
    from active.cli import main
    from active.evaluation.report import evaluate_checkpoint

    img = (np.random.default_rng(5).random((100, 140, 3)) * 255).astype(np.uint8)
    one = Predictor(ckpts[0], backend="torch", conf=0.05)(img)
    twice = Predictor([ckpts[0], ckpts[0]], backend="torch", conf=0.05)(img)
    assert len(one) > 3
    assert len(twice) == len(one)  # the same boxes (an untrained model's scores tie: any order)
    assert np.abs(twice.xyxy[:, None] - one.xyxy[None]).max(-1).min(1).max() < 1e-3
    np.testing.assert_allclose(np.sort(twice.conf), np.sort(one.conf), atol=1e-5)
    both = Predictor(ckpts, backend="torch", conf=0.05, tta=True)
    assert f"[{ckpts[0]}, {ckpts[1]}]" in repr(both) and "tta=True" in repr(both)
    assert len(both(img)) > 0
    with pytest.raises(UsageError, match="torch backend"):
        Predictor(ckpts, backend="onnx")

    data = tiny_synth(tmp_path / "data", videos=1, frames=2)
    same = evaluate_checkpoint([ckpts[0], ckpts[0]], data, device="cpu", merge=False)
    assert same["ensemble"] == 2 and same["merge"] is True  # fusing merges
    assert 0.0 <= same["ap50"]["sperm"] <= 1.0  # (equal to one member's: tested above; an
    # untrained model's tied scores make AP order-dependent, so not compared here)
    assert main(["eval", "--weights", *map(str, ckpts), "--data", str(data), "--tta",
                 "--device", "cpu", "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert report["weights"] == [str(p) for p in ckpts] and report["tta"] is True
    assert "an ensemble of 2 models" in capsys.readouterr().out
