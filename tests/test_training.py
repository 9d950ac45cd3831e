"""Tiny end-to-end training runs on synthetic data: the loss falls, checkpoints round-trip,
an interrupted run resumes to the same state, configs reject unknown keys."""

from dataclasses import replace

import pytest
import torch

from active.errors import CheckpointError
from active.models.checkpoint import (
    checkpoint_coder,
    load_model,
    read_checkpoint,
    save_checkpoint,
)
from active.training import trainer as trainer_mod
from active.training.config import StageConfig, load_config
from active.training.loss import LossConfig
from active.utils.config import ConfigError
from conftest import tiny_synth


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"), videos=5, frames=6)


def _config(root, out, epochs=(1, 1), **kw):
    cfg = load_config(overrides=[
        "model.variant=active-i", "model.scale=tiny", "model.imgsz=[128, 160]",
        f"data.path={root}", f"out={out}", "warmup_steps=2", "augment.mosaic=0",
    ])
    stages = [StageConfig("frozen", epochs[0], 4, 2e-3, True),
              StageConfig("unfrozen", epochs[1], 2, 1e-3, False)]
    return replace(cfg, stages=stages, **kw)


def test_loss_falls(synth_root, tmp_path):
    cfg = _config(synth_root, tmp_path, epochs=(0, 8), ema=False, eval_every=100)
    cfg = replace(cfg, augment=replace(cfg.augment, fliplr=0, flipud=0, scale=0, translate=0),
                  stages=[StageConfig("unfrozen", 8, 2, 5e-3, False)])
    summary = trainer_mod.fit(cfg, progress=False)
    totals = [r["total"] for r in summary["history"]]
    assert totals[-1] < 0.7 * totals[0], totals
    assert (tmp_path / "log.csv").read_text().count("\n") == 9
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "config.yaml").is_file()


def test_checkpoint_round_trip_and_errors(synth_root, tmp_path):
    summary = trainer_mod.fit(_config(synth_root, tmp_path, epochs=(1, 0)), progress=False)
    model, data = load_model(tmp_path / "best.pt")
    assert data["class_names"] == ["sperm", "impurity"]
    assert torch.equal(model.anchors, torch.tensor(data["anchors"]))
    again = tmp_path / "again.pt"
    save_checkpoint(again, model, data["loss_config"])
    model2, _ = load_model(again)
    x = torch.rand(1, 3, 128, 160)
    for a, b in zip(model(x), model2(x), strict=True):
        torch.testing.assert_close(a, b)
    assert summary["epochs"] == 1
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        read_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(again.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt.pt: corrupt or not a checkpoint"):
        read_checkpoint(bad)
    payload = torch.load(again, weights_only=True)
    torch.save(dict(payload, version=99), bad)
    with pytest.raises(CheckpointError, match="version 99 is newer"):
        read_checkpoint(bad)
    torch.save(dict(payload, model_config=dict(payload["model_config"], scale="huge")), bad)
    with pytest.raises(CheckpointError, match="incompatible checkpoint"):
        load_model(bad)
    torch.save(dict(payload, loss_config={"decode": "log"}), bad)
    with pytest.raises(CheckpointError, match="incompatible checkpoint: decode mode"):
        load_model(bad)


@pytest.mark.parametrize("loss", [LossConfig(), LossConfig(decode="exp", scale_xy=1.1)])
def test_checkpoint_coder_is_the_loss_configs(loss):
    """Inference reads the box coder from a checkpoint's stored loss config as plain data (it
    imports no training code); it is the coder that config trained with."""
    assert checkpoint_coder({"loss_config": loss.to_dict()}) == loss.coder()
    assert checkpoint_coder({"loss_config": {}}) == checkpoint_coder({}) == LossConfig().coder()


def test_resume_continues_to_the_same_state(synth_root, tmp_path, monkeypatch):
    full = trainer_mod.fit(_config(synth_root, tmp_path / "full", epochs=(1, 2)), progress=False)
    calls = {"n": 0}
    real = trainer_mod.train_one_epoch

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "train_one_epoch", interrupted)
    cfg = _config(synth_root, tmp_path / "cut", epochs=(1, 2))
    with pytest.raises(KeyboardInterrupt):
        trainer_mod.fit(cfg, progress=False)
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["train_state"]["epoch"] == 1
    monkeypatch.setattr(trainer_mod, "train_one_epoch", real)
    resumed = trainer_mod.fit(cfg, resume=True, progress=False)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3]
    a = read_checkpoint(tmp_path / "full" / "last.pt")["model"]
    b = read_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], msg=k)
    assert resumed["history"][-1]["total"] == pytest.approx(full["history"][-1]["total"])


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'model.scal'"):
        load_config(overrides=["model.scal=n"])
    path = tmp_path / "c.yaml"
    path.write_text("stages:\n  - {epochs: 2, batchsize: 4}\n")
    with pytest.raises(ConfigError, match="c.yaml: unknown config key 'stages\\[0\\].batchsize'"):
        load_config(path)
    path.write_text("seed: [1\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_config(path)
    with pytest.raises(ConfigError, match="precision: 'fp8' is not one of"):
        load_config(overrides=["precision=fp8"])


def test_bf16_warning_only_on_a_cpu_without_native_bf16(monkeypatch):
    from active.training import engine

    assert isinstance(engine.cpu_has_native_bf16(), bool)  # this machine's answer, either way
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    assert "precision=bf16" in engine.precision_warning(cpu, "bf16")
    assert engine.precision_warning(cpu, "fp32") is None
    assert engine.precision_warning(cuda, "bf16") is None
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: True)
    assert engine.precision_warning(cpu, "bf16") is None


def test_training_without_a_validation_video_keeps_the_last_weights(synth_root, tmp_path):
    """A split with ``"val": []`` (every video but the test one trains, as in training.md's
    three-video run) trains, logs no validation columns and writes best.pt = the last epoch."""
    from active.data.dataset import load_dataset
    from active.data.splits import kfold_split

    videos = {r.video_id for r in load_dataset(synth_root)}
    plan = kfold_split(videos, k=len(videos), val=False)
    assert plan.folds[0].val == [] and len(plan.folds[0].train) == len(videos) - 1
    plan.save(tmp_path / "split.json")
    cfg = _config(synth_root, tmp_path / "run", epochs=(0, 2), eval_every=1)
    cfg = replace(cfg, data=replace(cfg.data, split=str(tmp_path / "split.json"), fold=0))
    summary = trainer_mod.fit(cfg, progress=False)
    assert summary["best_val_map50"] == -1.0
    assert all("val_map50" not in row for row in summary["history"])
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    assert best["meta"]["epoch"] == last["meta"]["epoch"] == 2
    for name, tensor in last["model"].items():
        assert torch.equal(tensor, best["model"][name]), name


def test_ema_ramp_sets_how_fast_the_average_follows_the_weights():
    """The EMA's decay ramps up over ``ema_ramp`` updates: a weight that jumps from 0 to 1 is
    followed to exactly ``1 - prod(d_k)``; a shorter ramp averages more (follows slower)."""
    import math

    from torch import nn

    from active.training.engine import ModelEMA

    def followed(ramp: float) -> float:
        """100 updates at weight 0, then 10 at weight 1: where the average is."""
        model = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(model.weight)
        ema = ModelEMA(model, decay=0.99, ramp=ramp)
        for k in range(110):
            if k == 100:
                nn.init.ones_(model.weight)
            ema.update(model)
        return float(ema.module.weight)

    for ramp in (10.0, 2000.0):
        stay = math.prod(0.99 * (1 - math.exp(-k / ramp)) for k in range(101, 111))
        assert followed(ramp) == pytest.approx(1 - stay, abs=1e-6)
    # a short ramp averages ~100 updates by then; YOLOv5's 2000 still only the last one or two
    assert followed(10.0) < 0.2 and followed(2000.0) > 0.99
    with pytest.raises(ConfigError, match="ema_ramp"):
        load_config(None, ["ema_ramp=0"])


def _ap(name, ap, num_gt):
    import numpy as np

    from active.data.ap import ClassAP

    empty = np.zeros(0)
    return ClassAP(name, ap, num_gt, 0, empty, empty, empty)


def test_fitness_rules():
    """map50 is the plain mean; weighted counts each class's boxes; a class name is its AP."""
    nan = float("nan")
    aps = {"sperm": _ap("sperm", 0.9, 1000), "impurity": _ap("impurity", 0.1, 10)}
    assert trainer_mod.fitness(aps, "map50") == pytest.approx(0.5)
    assert trainer_mod.fitness(aps, "weighted") == pytest.approx((900 + 1) / 1010)
    assert trainer_mod.fitness(aps, "impurity") == pytest.approx(0.1)
    aps["impurity"] = _ap("impurity", nan, 0)  # no impurity in the validation frames
    assert trainer_mod.fitness(aps, "weighted") == pytest.approx(0.9)
    assert trainer_mod.fitness(aps, "map50") == pytest.approx(0.9)


def test_best_by_picks_best_pt_and_bad_values_are_refused(synth_root, tmp_path, monkeypatch):
    """With scripted validation APs the two rules keep different epochs: the mean prefers epoch
    2 (a lucky impurity AP on 5 boxes), the box-weighted score epoch 3 (better sperm)."""
    def scripted(*args, **kwargs):
        sperm, impurity = next(script)
        return {"sperm": _ap("sperm", sperm, 500), "impurity": _ap("impurity", impurity, 5)}

    for rule, epoch in (("map50", 2), ("weighted", 3), ("sperm", 3)):
        script = iter([(0.80, 0.20), (0.82, 0.90), (0.90, 0.10)])  # (sperm, impurity) by epoch
        monkeypatch.setattr(trainer_mod, "evaluate", scripted)
        out = tmp_path / rule
        cfg = _config(synth_root, out, epochs=(0, 3), eval_every=1, best_by=rule,
                      max_steps_per_epoch=1, save_every=2 if rule == "sperm" else 0)
        summary = trainer_mod.fit(cfg, progress=False)
        meta = read_checkpoint(out / "best.pt")["meta"]
        assert meta["epoch"] == epoch, rule
        assert meta["best_by"] == rule
        assert summary["best_val_map50"] == pytest.approx(summary["history"][epoch - 1]
                                                          ["val_map50"])
        assert ("val_score" in (out / "log.csv").read_text()) == (rule != "map50")
    # save_every=2 keeps epoch 2's weights beside best.pt and last.pt, and nothing else
    assert sorted(p.name for p in out.glob("*.pt")) == ["best.pt", "epoch2.pt", "last.pt"]
    assert read_checkpoint(out / "epoch2.pt")["meta"]["epoch"] == 2
    with pytest.raises(ConfigError, match='best_by: "motile" is neither'):
        trainer_mod.fit(_config(synth_root, tmp_path / "x", epochs=(0, 1), best_by="motile"),
                        progress=False)
    with pytest.raises(ConfigError, match="best_by"):
        load_config(overrides=["best_by="])
    import numpy as np

    from active.data.record import FrameRecord

    only_sperm = [FrameRecord(np.array([[1, 1, 5, 5]], np.float32), np.array([0]),
                              ("sperm", "impurity"), "v", 0, 10, 10)]
    with pytest.raises(ConfigError, match='hold no "impurity" box'):
        trainer_mod.check_best_by("impurity", ("sperm", "impurity"), only_sperm)
    trainer_mod.check_best_by("sperm", ("sperm", "impurity"), only_sperm)


@pytest.mark.parametrize("precision, hint", [("fp32", "lower the lr"),
                                             ("bf16", "try precision=fp32")])
def test_a_non_finite_loss_stops_training_with_a_hint(precision, hint):
    from active.training.engine import train_one_epoch

    model = torch.nn.Linear(2, 2)

    def criterion(raw, targets):
        return raw.sum() * float("nan"), {}

    optimizer = torch.optim.Adam(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    loader = [(torch.ones(1, 2), torch.zeros(0, 6))]
    with pytest.raises(FloatingPointError, match=f"nan at step 0; {hint}"):
        train_one_epoch(model, criterion, loader, optimizer, scheduler, torch.device("cpu"),
                        precision)
