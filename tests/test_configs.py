"""Every shipped config parses into a TrainConfig (unknown keys would be errors)."""

from pathlib import Path

import pytest

from active.training.config import load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_parses(path):
    cfg = load_config(path)
    assert cfg.stages and all(s.epochs > 0 for s in cfg.stages)
