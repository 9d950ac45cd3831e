"""Every shipped config parses into a TrainConfig (unknown keys would be errors)."""

from pathlib import Path

import pytest

from active.training.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(path):
    cfg = load_config(path)
    assert cfg.stages and all(s.epochs > 0 for s in cfg.stages)


def test_a_partial_section_keeps_the_fields_own_defaults(tmp_path):
    """`eval` defaults to the evaluation thresholds (score 0.001), not PostProcessConfig's
    display defaults (0.25): overriding one key of it must not reset the others."""
    from active.training.config import TrainConfig, load_config

    assert TrainConfig().eval.score_threshold == 0.001
    cfg = load_config(overrides=["eval.merge=false"])
    assert cfg.eval.merge is False and cfg.eval.score_threshold == 0.001
    path = tmp_path / "run.yaml"
    path.write_text("eval:\n  iou_threshold: 0.6\nmodel:\n  scale: s\n")
    cfg = load_config(path)
    assert (cfg.eval.iou_threshold, cfg.eval.score_threshold) == (0.6, 0.001)
    assert cfg.model.scale == "s" and cfg.model.variant == "active-i"
    paper = Path(__file__).resolve().parents[1] / "configs" / "paper.yaml"
    assert load_config(paper).eval.score_threshold == 0.001
