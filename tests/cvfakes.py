"""What the cross-validation tests share: a tiny training config and stand-ins for training and
evaluation that record their calls (so the tests check what is run, not how well)."""

import json
from dataclasses import replace
from pathlib import Path

from active.evaluation import report
from active.training import trainer
from active.training.config import StageConfig, load_config


def cv_config(root, **kw):
    cfg = load_config(overrides=[
        "model.variant=active-i", "model.scale=tiny", "model.imgsz=[128, 160]",
        f"data.path={root}", "warmup_steps=2", "augment.mosaic=0", "device=cpu",
    ])
    stages = [StageConfig("frozen", 1, 4, 2e-3, True)]  # the cheap stage: frozen backbone
    return replace(cfg, stages=stages, max_steps_per_epoch=1, eval_every=100, **kw)


class FakeRuns:
    """Stands in for training and evaluation: records each call, returns made-up APs."""

    def __init__(self, monkeypatch):
        self.fits: list[tuple[str, tuple[str, ...], int, bool]] = []
        self.seeds: list[int] = []  # the training seed of each fit
        self.evals = 0
        self.fused: list[list[str]] = []  # the weights of each evaluation of several
        monkeypatch.setattr(trainer, "fit", self.fit)
        monkeypatch.setattr(report, "evaluate_checkpoint", self.evaluate)

    def fit(self, cfg, resume=False, progress=True):
        self.fits.append((cfg.model.variant, cfg.model.branches, cfg.data.fold, resume))
        self.seeds.append(cfg.seed)
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        (Path(cfg.out) / "best.pt").write_bytes(b"")
        return {"epochs": 2}

    def evaluate(self, weights, data, split=None, part="test", fold=0, **kw):
        self.evals += 1
        videos = json.loads(Path(split).read_text())["folds"][fold][part]
        ap = 0.1 * (fold + 1) + (0.05 if kw.get("tta") else 0.0)
        if isinstance(weights, list):  # an ensemble: a little better than its runs
            self.fused.append([str(w) for w in weights])
            ap += 0.01 * len(weights)
            Path(kw["out"]).mkdir(parents=True, exist_ok=True)
        gt = {"ground_truth": 3}
        return {"videos": videos, "frames": 4 * len(videos), "ap50": {"sperm": ap,
                "impurity": ap / 2}, "operating_point": {"per_class": {"sperm": gt,
                                                                       "impurity": gt}}}
