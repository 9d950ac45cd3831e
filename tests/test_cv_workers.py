"""Cross-validation by several workers and several training seeds: claims keep two processes off
one run, a dead process's claim is taken over, results written at once are merged, ``seeds``
trains one run per seed and fuses each fold's runs once all of them exist."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict, replace

import pytest

from active.cli import main
from active.experiments.crossval import FoldResult, run_cv
from active.experiments.cvstore import ResultStore, fingerprint
from active.training import trainer
from active.utils.config import ConfigError
from conftest import tiny_synth
from cvfakes import FakeRuns, cv_config


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"), videos=3, frames=3)


def test_parallel_processes_share_the_folds(synth_root, tmp_path, monkeypatch):
    """A fold claimed by a live process is left to it; a dead process's claim is taken over;
    results written by two stores at once are merged, not overwritten."""
    out = tmp_path / "cv"
    fake = FakeRuns(monkeypatch)
    host = socket.gethostname()
    (out / "active-i" / "fold1").mkdir(parents=True)
    (out / "active-i" / "fold1" / "claim").write_text(json.dumps({"host": host,
                                                                  "pid": os.getppid()}))
    lines: list[str] = []
    result = run_cv(cv_config(synth_root), ["active-i", "yolov3"], folds=3, out=out,
                    log=lines.append)
    assert ("active-i", ("b1", "b2"), 1, False) not in fake.fits
    assert sorted((r.model, r.fold) for r in result.results) == [
        ("active-i", 0), ("active-i", 2), ("yolov3", 0), ("yolov3", 1), ("yolov3", 2)]
    assert any("active-i fold 1: taken by another process" in line for line in lines)
    assert [f[2] for f in fake.fits] == [0, 0, 1, 2, 2]  # fold by fold
    assert list(out.glob("*/fold*/claim")) == [out / "active-i" / "fold1" / "claim"]

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (out / "active-i" / "fold1" / "claim").write_text(json.dumps({"host": host,
                                                                  "pid": int(dead)}))
    result = run_cv(cv_config(synth_root), ["active-i", "yolov3"], folds=3, out=out,
                    log=lines.append)
    assert fake.fits[-1] == ("active-i", ("b1", "b2"), 1, False)
    assert len(result.results) == 6 and not list(out.glob("*/fold*/claim"))

    # two stores opened before either wrote: both entries survive
    data = json.loads((out / "results.json").read_text())
    a, b = (ResultStore(out / "results.json", data["config"]) for _ in range(2))
    first = FoldResult.from_dict({**data["results"][0], "model": "m1"})
    a.add(first)
    b.add(FoldResult.from_dict({**data["results"][0], "model": "m2"}))
    models = {e["model"] for e in json.loads((out / "results.json").read_text())["results"]}
    assert {"m1", "m2", "active-i", "yolov3"} <= models


def test_only_some_folds(synth_root, tmp_path, monkeypatch):
    fake = FakeRuns(monkeypatch)
    result = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=tmp_path / "cv",
                    log=lambda s: None, only_folds=[1])
    assert [f[2] for f in fake.fits] == [1] and [r.fold for r in result.results] == [1]
    with pytest.raises(ConfigError, match="folds are 0..2"):
        run_cv(cv_config(synth_root), ["active-i"], folds=3, out=tmp_path / "cv", only_folds=[3])


def test_seeds_train_once_per_seed_and_fuse_each_fold(synth_root, tmp_path, monkeypatch,
                                                       capsys):
    """``seeds``: a run per seed (the config's seed in the plain folder), then a fused row per
    fold once all its runs exist; a rerun does nothing, a new seed trains only that seed."""
    fake = FakeRuns(monkeypatch)
    out = tmp_path / "cv"
    lines: list[str] = []
    result = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lines.append,
                    only_folds=[0], tta=True, seeds=[0, 1, 1])
    assert fake.fits == [("active-i", ("b1", "b2"), 0, False)] * 2 and fake.seeds == [0, 1]
    runs = [str(out / name / "fold0" / "best.pt") for name in ("active-i", "active-i-seed1")]
    assert fake.fused == [runs, runs]  # plain and flip TTA
    fused = result.fold_result("active-i-2seeds", 0)
    assert fused.members == runs and fused.weights == ""
    assert fused.ap50["sperm"] == pytest.approx(0.12) and fused.ap50_tta["sperm"] == (
        pytest.approx(0.17))
    assert (out / "active-i-2seeds" / "fold0" / "test").is_dir()
    assert not any("fold 1" in line for line in lines)  # not this process's fold
    table = (out / "table.md").read_text()
    for row in ("| ACTIVE-I |", "| ACTIVE-I, seed 1 |", "| ACTIVE-I, 2 seeds fused |",
                "| ACTIVE-I, 2 seeds fused + flip TTA |"):
        assert row in table
    assert "'seeds fused'" in table
    stored = json.loads((out / "results.json").read_text())["results"]
    assert [e["members"] for e in stored if e["model"] == "active-i-2seeds"] == [runs]

    # fold 1 with its seed-1 run taken by another (live) process: the fused row waits
    (out / "active-i-seed1" / "fold1").mkdir(parents=True)
    (out / "active-i-seed1" / "fold1" / "claim").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getppid()}))
    lines.clear()
    run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lines.append,
           only_folds=[1], tta=True, seeds=[0, 1])
    assert "active-i-2seeds fold 1: waiting for active-i-seed1" in lines
    assert fake.seeds == [0, 1, 0]
    (out / "active-i-seed1" / "fold1" / "claim").unlink()

    # two workers: this one trains seed 0 of fold 2 while the other finishes seed 1 of fold 1
    # (claimed) and of fold 2; the last to end (this one) fuses both folds
    claimed = out / "active-i-seed1" / "fold2"
    claimed.mkdir(parents=True)
    (claimed / "claim").write_text(json.dumps({"host": socket.gethostname(),
                                               "pid": os.getppid()}))
    own_fit = fake.fit

    def fit_beside_the_other(cfg, resume=False, progress=True):
        other = replace(cv_config(synth_root), seed=1)
        for fold in (1, 2):
            run_dir = out / "active-i-seed1" / f"fold{fold}"
            own_fit(replace(other, out=str(run_dir), data=replace(other.data, fold=fold)))
            ResultStore(out / "results.json", fingerprint(cv_config(synth_root))).add(FoldResult(
                "active-i-seed1", fold, ["v"], 1, {"sperm": 0.5}, {"sperm": 1},
                str(run_dir / "best.pt"), 2, {"sperm": 0.55},
                json.loads(json.dumps(asdict(other.eval)))))
        (claimed / "claim").unlink()
        return own_fit(cfg, resume, progress)

    monkeypatch.setattr(trainer, "fit", fit_beside_the_other)
    lines.clear()
    result = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lines.append,
                    only_folds=[2], tta=True, seeds=[0, 1])
    assert "active-i-2seeds fold 2: waiting for active-i-seed1" not in lines  # it was done
    assert [r.fold for r in result.results if r.model == "active-i-2seeds"] == [0, 1, 2]
    assert sum("active-i-2seeds fold" in line and "AP50" in line for line in lines) == 2
    monkeypatch.setattr(trainer, "fit", own_fit)

    evals = fake.evals  # nothing left to do for fold 0
    run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None,
           only_folds=[0], tta=True, seeds=[0, 1])
    assert len(fake.fits) == 6 and fake.evals == evals
    # a third seed added to the finished fold: one more run, and the three of them fused
    result = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None,
                    only_folds=[0], seeds=[0, 1, 2])
    assert fake.seeds == [0, 1, 0, 1, 1, 0, 2] and len(fake.fused[-1]) == 3
    assert result.fold_result("active-i-3seeds", 0).members[-1].endswith(
        "active-i-seed2/fold0/best.pt")

    with pytest.raises(ConfigError, match="cannot be fused"):
        run_cv(cv_config(synth_root), ["efficientdet-d2"], folds=3, out=tmp_path / "e",
               seeds=[0, 1])
    assert main(["cv", "--data", str(synth_root), "--folds", "3", "--out", str(tmp_path / "c"),
                 "--scale", "tiny", "--epochs", "1", "--quiet", "--only-fold", "1",
                 "--seeds", "3", "4"]) == 0
    assert "| ACTIVE-I, 2 seeds fused | " in capsys.readouterr().out
    assert fake.seeds[-2:] == [3, 4]
