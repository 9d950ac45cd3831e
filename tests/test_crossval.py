"""Cross-validation and the branch ablation: every video is tested once, a rerun skips finished
folds and resumes unfinished ones, tables give mean ± std over the folds and n/a where a class
has no ground truth."""

import json
import math
import shutil
import statistics
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import yaml

from active.cli import main
from active.data.splits import kfold_split
from active.errors import DataError
from active.experiments.crossval import (
    ABLATION_BRANCHES,
    CVResult,
    FoldResult,
    ModelSpec,
    format_table_i,
    format_table_ii,
    run_ablation,
    run_cv,
)
from active.models.variants import supports_tta
from active.utils.config import ConfigError
from conftest import tiny_synth
from cvfakes import FakeRuns, cv_config


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    return tiny_synth(tmp_path_factory.mktemp("synth"), videos=3, frames=3)


def test_tiny_cv_tests_every_video_once_and_reruns_skip(synth_root, tmp_path, monkeypatch):
    out = tmp_path / "cv"
    lines: list[str] = []
    result = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, progress=False,
                    log=lines.append)
    assert [r.fold for r in result.results] == [0, 1, 2]
    tested = [v for r in result.results for v in r.test_videos]
    assert sorted(tested) == sorted(result.split.videos) and len(set(tested)) == 3
    assert all((out / "active-i" / f"fold{i}" / "best.pt").is_file() for i in range(3))
    assert all((out / "active-i" / f"fold{i}" / "test" / "report.json").is_file()
               for i in range(3))
    assert len(json.loads((out / "results.json").read_text())["results"]) == 3
    table = (out / "table.md").read_text()
    assert "| Model | AP_I (%) | AP_S (%) | fold 0 (I / S) |" in table
    sperm = [100 * r.ap50["sperm"] for r in result.results]
    row = next(line for line in table.splitlines() if line.startswith("| ACTIVE-I |"))
    assert row.split(" | ")[2] == f"{statistics.mean(sperm):.2f} ± {statistics.stdev(sperm):.2f}"
    assert any("fold 2: test" in line for line in lines)

    fake = FakeRuns(monkeypatch)  # a rerun trains and evaluates nothing
    again = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lines.append)
    assert fake.fits == [] and fake.evals == 0
    assert [r.to_dict() for r in again.results] == [r.to_dict() for r in result.results]
    assert "done, skipped" in lines[-1]

    # an interrupted fold: its results entry is missing, its run has last.pt -> resumed
    data = json.loads((out / "results.json").read_text())
    data["results"] = [e for e in data["results"] if e["fold"] != 1]
    (out / "results.json").write_text(json.dumps(data))
    run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lines.append)
    assert fake.fits == [("active-i", ("b1", "b2"), 1, True)] and fake.evals == 1

    with pytest.raises(ConfigError, match="other settings .*seed"):
        run_cv(cv_config(synth_root, seed=1), ["active-i"], folds=3, out=out, log=lines.append)
    with pytest.raises(DataError, match="holds 3 kfold folds"):
        run_cv(cv_config(synth_root), ["active-i"], folds=4, out=out, log=lines.append)


def test_ablation_builds_three_branch_settings(synth_root, tmp_path, monkeypatch, capsys):
    fake = FakeRuns(monkeypatch)
    result = run_ablation(cv_config(synth_root), "ACTIVE-II", folds=3, out=tmp_path, log=print)
    assert [m.branches for m in result.models] == list(ABLATION_BRANCHES)
    assert sorted(set(fake.fits)) == sorted(
        ("active-ii", b, i, False) for b in ABLATION_BRANCHES for i in range(3))
    assert {p.name for p in tmp_path.iterdir() if p.is_dir()} == {
        "active-ii-b1", "active-ii-b2", "active-ii"}
    table = (tmp_path / "ablation.md").read_text()
    assert "| DBFEN1 | DBFEN2 | Category | AP (%) | fold 0 | fold 1 | fold 2 |" in table
    assert "| ✓ |  | Impurity | 10.00 ± 5.00 | 5.00 | 10.00 | 15.00 |" in table
    assert "|  | ✓ | Sperm | 20.00 ± 10.00 | 10.00 | 20.00 | 30.00 |" in table
    assert table.count("| ✓ | ✓ |") == 2

    config = tmp_path / "run.yaml"  # the CLI calls the same function: a rerun prints the table
    config.write_text(yaml.safe_dump(cv_config(synth_root).to_dict()))
    capsys.readouterr()
    assert main(["ablation", "--config", str(config), "--folds", "3", "--out", str(tmp_path),
                 "--variant", "active-ii", "--quiet"]) == 0
    assert table.strip() in capsys.readouterr().out and len(fake.fits) == 9
    assert main(["ablation", "--config", str(config), "--folds", "3", "--out", str(tmp_path),
                 "--variant", "active-ii", "--epochs", "2"]) == 2
    assert "trained with other settings (stages[0].epochs)" in \
        capsys.readouterr().err

def test_cli_cv_and_too_many_folds(synth_root, tmp_path, monkeypatch, capsys):
    fake = FakeRuns(monkeypatch)
    assert main(["cv", "--data", str(synth_root), "--folds", "3", "--out", str(tmp_path),
                 "--variant", "active-i", "active-iv", "--scale", "tiny", "--epochs", "1",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "| ACTIVE-I |" in out and "| ACTIVE-IV |" in out and len(fake.fits) == 6
    assert (tmp_path / "table.md").read_text().strip() in out

    # --no-train on kept results without their weights: the same table, nothing run
    args = ["cv", "--data", str(synth_root), "--folds", "3", "--variant", "active-i",
            "active-iv", "--scale", "tiny", "--epochs", "1", "--quiet", "--no-train"]
    kept = tmp_path / "kept"
    kept.mkdir()
    for name in ("results.json", "split.json"):
        shutil.copy(tmp_path / name, kept / name)
    for run in ("active-i", "active-iv"):
        shutil.rmtree(tmp_path / run)
    fits, evals = len(fake.fits), fake.evals
    assert main([*args, "--out", str(kept), "--tta"]) == 0
    assert (len(fake.fits), fake.evals) == (fits, evals)
    assert (kept / "table.md").read_text() == (tmp_path / "table.md").read_text()
    assert "active-iv fold 2: done, but its weights" in capsys.readouterr().out  # no TTA
    assert main([*args, "--out", str(tmp_path / "empty")]) == 0  # nothing to tabulate yet
    assert "| ACTIVE-I | - | - | - | - | - |" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([*args, "--out", str(kept), "--only-fold", "1"])
    assert "not allowed with argument" in capsys.readouterr().err

    assert main(["cv", "--data", str(synth_root), "--folds", "5", "--out",
                 str(tmp_path / "five")]) == 2
    assert "5 folds need at least 5 videos, but the dataset has 3" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown variant 'active-ix'"):
        run_cv(cv_config(synth_root), ["active-ix"], folds=3, out=tmp_path / "x")


def test_class_without_ground_truth_is_na_and_left_out_of_the_mean():
    nan = float("nan")
    result = CVResult(Path("."), kfold_split(["a", "b", "c"], 3), [ModelSpec("active-iv")], [
        FoldResult("active-iv", i, [v], 4, {"sperm": s, "impurity": imp},
                   {"sperm": 5, "impurity": 2}, "w.pt")
        for i, (v, s, imp) in enumerate([("a", 0.9, 0.4), ("b", 0.8, nan), ("c", 0.7, 0.2)])])
    s = result.summary("active-iv", "impurity")
    assert (s.folds, s.total) == (2, 3)
    assert s.mean == pytest.approx(0.3) and s.std == pytest.approx(statistics.stdev([0.4, 0.2]))
    table = format_table_i(result)
    assert ("| ACTIVE-IV | 30.00 ± 14.14 (2 of 3 folds) | 80.00 ± 10.00 | 40.00 / 90.00 | "
            "n/a / 80.00 | 20.00 / 70.00 |") in table
    assert "no ground truth of the class in the fold's test videos: active-iv fold 1 (impurity)" \
        in table
    one = CVResult(Path("."), result.split, result.models, [replace(
        result.results[0], ap50={"sperm": nan, "impurity": 0.5})])
    assert "| ACTIVE-IV | 50.00 (1 of 3 folds) | n/a | 50.00 / n/a | - | - |" in format_table_i(one)
    # a model with nothing evaluated yet: "-" as its fold cells, not "n/a" (no ground truth)
    waiting = CVResult(Path("."), result.split, [*result.models, ModelSpec("active-i")],
                       result.results)
    assert "| ACTIVE-I | - | - | - | - | - |" in format_table_i(waiting)
    assert "|  | ✓ | Impurity |" not in format_table_ii(result)
    assert "| ✓ | ✓ | Impurity | 30.00 ± 14.14 (2 of 3 folds) | 40.00 | n/a | 20.00 |" in \
        format_table_ii(result)
    entry = result.results[1].to_dict()
    assert entry["ap50"]["impurity"] is None  # strict JSON
    assert math.isnan(FoldResult.from_dict(json.loads(json.dumps(entry))).ap50["impurity"])



def test_tta_row_evaluates_finished_folds_without_retraining(synth_root, tmp_path, monkeypatch):
    fake = FakeRuns(monkeypatch)
    out = tmp_path / "cv"
    run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None)
    assert len(fake.fits) == 3 and fake.evals == 3
    assert "flip TTA" not in (out / "table.md").read_text()
    result = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None,
                    tta=True)
    assert len(fake.fits) == 3 and fake.evals == 6  # one TTA evaluation per fold, no training
    assert [r.ap50_tta["sperm"] for r in result.results] == pytest.approx([0.15, 0.25, 0.35])
    table = (out / "table.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| ACTIVE-I + flip TTA"))
    assert row.split(" | ")[2] == "25.00 ± 10.00" and "not a paper setting" in table
    run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None, tta=True)
    assert fake.evals == 6  # nothing left to do
    # a new fold trained with tta evaluates both ways at once
    data = json.loads((out / "results.json").read_text())
    data["results"] = [e for e in data["results"] if e["fold"] != 2]
    (out / "results.json").write_text(json.dumps(data))
    again = run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None,
                   tta=True)
    assert fake.evals == 8 and again.fold_result("active-i", 2).ap50_tta is not None


def test_tta_skips_models_that_do_their_nms_inside(synth_root, tmp_path, monkeypatch):
    """``tta`` on a list with EfficientDet: ACTIVE-I gets its TTA evaluation, EfficientDet is
    trained and evaluated once, with a log line saying why it has no TTA row (instead of failing
    after training)."""
    fake = FakeRuns(monkeypatch)
    lines: list[str] = []
    result = run_cv(cv_config(synth_root), ["active-i", "efficientdet-d2"], folds=3,
                    out=tmp_path / "cv", log=lines.append, only_folds=[0], tta=True)
    assert [f[0] for f in fake.fits] == ["active-i", "efficientdet-d2"] and fake.evals == 3
    assert result.fold_result("active-i", 0).ap50_tta is not None
    assert result.fold_result("efficientdet-d2", 0).ap50_tta is None
    assert any("efficientdet-d2 fold 0: no flip TTA" in line for line in lines)
    assert supports_tta("yolov8n") and supports_tta("ACTIVE-IV") and supports_tta("yolov4")
    assert supports_tta("faster-rcnn") and supports_tta("ssd")
    assert not supports_tta("efficientdet-d2")


def test_changed_evaluation_settings_reevaluate_without_retraining(synth_root, tmp_path,
                                                                   monkeypatch):
    fake = FakeRuns(monkeypatch)
    out = tmp_path / "cv"
    run_cv(cv_config(synth_root), ["active-i"], folds=3, out=out, log=lambda s: None)
    assert len(fake.fits) == 3 and fake.evals == 3
    cfg = cv_config(synth_root)
    cfg = replace(cfg, eval=replace(cfg.eval, merge=False))
    lines: list[str] = []
    result = run_cv(cfg, ["active-i"], folds=3, out=out, log=lines.append, only_folds=[])
    assert len(fake.fits) == 3 and fake.evals == 6  # evaluated again (even with no fold to
    # train: bench_models --no-train), not trained again
    assert all(r.eval["merge"] is False for r in result.results)
    assert sum("evaluation settings changed" in line for line in lines) == 3
    run_cv(cfg, ["active-i"], folds=3, out=out, log=lambda s: None)
    assert fake.evals == 6
    # a training setting still may not change under finished folds
    with pytest.raises(ConfigError, match="other settings"):
        run_cv(replace(cfg, seed=5), ["active-i"], folds=3, out=out, log=lambda s: None)
    # ... but the thread count may (it is the process's, and torch takes it)
    before = torch.get_num_threads()
    try:
        run_cv(replace(cfg, threads=1), ["active-i"], folds=3, out=out, log=lambda s: None)
        assert torch.get_num_threads() == 1 and fake.evals == 6
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1"):
        replace(cfg, threads=0)


def test_old_results_and_missing_weights(synth_root, tmp_path, monkeypatch):
    """Entries written before merging existed count as plain NMS; an entry whose weights are
    gone keeps its results (with a message) instead of failing the whole experiment."""
    fake = FakeRuns(monkeypatch)
    out = tmp_path / "cv"
    cfg = cv_config(synth_root)
    run_cv(cfg, ["active-i"], folds=3, out=out, log=lambda s: None)
    data = json.loads((out / "results.json").read_text())
    data["config"]["eval"] = {k: v for k, v in data["results"][0]["eval"].items()
                              if k != "merge"}  # as an old file wrote it
    for e in data["results"]:
        del e["eval"]
    data["results"][2]["weights"] = str(tmp_path / "gone.pt")
    (out / "results.json").write_text(json.dumps(data))
    plain = replace(cfg, eval=replace(cfg.eval, merge=False))
    run_cv(plain, ["active-i"], folds=3, out=out, log=lambda s: None)
    assert fake.evals == 3  # nothing to do: the old entries are plain NMS
    lines: list[str] = []
    result = run_cv(cfg, ["active-i"], folds=3, out=out, log=lines.append)
    assert fake.evals == 5 and len(result.results) == 3
    assert any("gone.pt are not here" in line and "merge: False -> True" in line
               for line in lines)


def test_results_written_before_a_setting_existed(synth_root, tmp_path, monkeypatch):
    """A results file from before a config field was added ran at that field's default: a run
    at the default continues it, a run that sets the field otherwise is refused."""
    fake = FakeRuns(monkeypatch)
    out = tmp_path / "cv"
    cfg = cv_config(synth_root)
    run_cv(cfg, ["active-i"], folds=3, out=out, log=lambda s: None, only_folds=[0])
    data = json.loads((out / "results.json").read_text())
    del data["config"]["model"]["second_stage"]  # as a file written before the field
    (out / "results.json").write_text(json.dumps(data))
    run_cv(cfg, ["active-i"], folds=3, out=out, log=lambda s: None, only_folds=[1])
    assert [f[2] for f in fake.fits] == [0, 1]
    data = json.loads((out / "results.json").read_text())
    del data["config"]["model"]["second_stage"]
    (out / "results.json").write_text(json.dumps(data))
    two = replace(cfg, model=replace(cfg.model, second_stage=True))
    with pytest.raises(ConfigError, match=r"other settings \(model.second_stage\)"):
        run_cv(two, ["active-i"], folds=3, out=out, log=lambda s: None, only_folds=[2])
    # a second-stage experiment keeps the folder names and says what its rows are
    result = run_cv(two, ["active-i"], folds=3, out=tmp_path / "cv2", log=lambda s: None,
                    only_folds=[0])
    assert (tmp_path / "cv2" / "active-i" / "fold0" / "best.pt").is_file()
    table = (tmp_path / "cv2" / "table.md").read_text()
    assert "| ACTIVE-I + second stage |" in table and "| ACTIVE-I |" not in table
    assert result.models[0].label == "ACTIVE-I + second stage"


def test_paired_difference_uses_only_the_shared_folds():
    """A model with two hard folds of four must not look worse than one with all four: the
    difference is taken on the folds both finished (and both have ground truth for)."""
    nan = float("nan")

    def fold(model, i, s, imp=nan):
        return FoldResult(model, i, [f"v{i}"], 4, {"sperm": s, "impurity": imp},
                          {"sperm": 5, "impurity": 1}, "w.pt")

    results = [fold("ref", 0, 0.95, 0.5), fold("ref", 1, 0.98), fold("ref", 2, 0.83),
               fold("ref", 3, 0.92), fold("b", 2, 0.86), fold("b", 3, 0.90, 0.7),
               fold("c", 0, 0.97)]
    result = CVResult(Path("."), kfold_split(["v0", "v1", "v2", "v3"], 4),
                      [ModelSpec("ref"), ModelSpec("b"), ModelSpec("c")], results)
    diff, folds = result.paired_difference("b", "ref", "sperm")
    assert folds == [2, 3] and diff == pytest.approx(((0.86 - 0.83) + (0.90 - 0.92)) / 2)
    assert result.summary("b", "sperm").mean < result.summary("ref", "sperm").mean
    assert diff > 0  # ahead on the folds they share
    assert result.paired_difference("c", "ref", "sperm") == (pytest.approx(0.02), [0])
    d, f = result.paired_difference("b", "ref", "impurity")  # ref has none on fold 3
    assert math.isnan(d) and f == []
    d, f = result.paired_difference("c", "b", "sperm")
    assert math.isnan(d) and f == []


def test_paired_difference_of_the_tta_evaluations():
    """With ``tta`` the difference is taken on the flip-TTA APs, over the folds where both models
    have one."""
    nan = float("nan")

    def fold(model, i, s, tta=None):
        return FoldResult(model, i, [f"v{i}"], 4, {"sperm": s, "impurity": nan},
                          {"sperm": 5, "impurity": 0}, "w.pt",
                          ap50_tta=None if tta is None else {"sperm": tta, "impurity": nan})

    results = [fold("ref", 0, 0.95, 0.97), fold("ref", 2, 0.83, 0.875), fold("b", 0, 0.95),
               fold("b", 2, 0.876, 0.877)]
    result = CVResult(Path("."), kfold_split(["v0", "v1", "v2", "v3"], 4),
                      [ModelSpec("ref"), ModelSpec("b")], results)
    assert result.paired_difference("b", "ref", "sperm") == (pytest.approx(0.023), [0, 2])
    assert result.paired_difference("b", "ref", "sperm", tta=True) == (pytest.approx(0.002), [2])
