"""The command line: help is complete, subcommands call the library, errors exit non-zero."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from active.cli import build_parser, main
from active.data.convert import write_dataset

REPO = Path(__file__).resolve().parents[1]


def _subcommands(parser, prefix=()):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _subcommands(sub, (*prefix, name))


def test_every_subcommand_has_help(capsys):
    for path, sub in _subcommands(build_parser()):
        assert sub.description, f"active {' '.join(path)} has no description"
        with pytest.raises(SystemExit) as exit_:
            main([*path, "--help"])
        assert exit_.value.code == 0
        out = capsys.readouterr().out
        assert "usage: active " + " ".join(path) in out


def test_data_stats_json_and_plot(records, tmp_path, capsys):
    root = write_dataset(records, tmp_path / "d", "svia")
    assert main(["data", "stats", str(root), "--json", "--plot", str(tmp_path / "h.png")]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["frames"] == len(records)
    assert stats["boxes"] == sum(len(r) for r in records)
    assert (tmp_path / "h.png").stat().st_size > 1000


def test_data_show_split_convert(records, tmp_path, capsys):
    root = write_dataset(records, tmp_path / "d", "svia")
    assert main(["data", "show", str(root), "--out", str(tmp_path / "show"), "--count", "2"]) == 0
    assert len(list((tmp_path / "show").glob("*.png"))) == 2
    assert main(["data", "split", str(root), "--out", str(tmp_path / "s.json"),
                 "--ratios", "1", "0", "1"]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["kind"] == "ratio"
    assert main(["data", "convert", str(root), "--to", "coco", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "annotations.json").is_file()


def test_error_exit_code_names_the_file(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing")]) == 2
    assert "missing: dataset path does not exist" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "active", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "synth" in out and "data" in out


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)\n(.*?)```", readme, re.S)
    test_cmd = blocks[1].strip()
    assert "pytest" in test_cmd
    assert test_cmd in (REPO / ".ci" / "run").read_text()


def test_model_info_and_anchors(records, tmp_path, capsys):
    assert main(["model", "info", "active-ii", "--scale", "tiny", "--imgsz", "64", "64",
                 "--runs", "0", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output_shapes"] == [[1, 3, 8, 8, 7], [1, 3, 4, 4, 7], [1, 3, 2, 2, 7]]
    assert info["params"] > 0 and info["gflops"] > 0
    many = [r for seed in range(4) for r in __import__("conftest").make_records(seed=seed)]
    root = write_dataset(many, tmp_path / "d", "svia")
    assert main(["model", "anchors", str(root), "--imgsz", "64", "96"]) == 0
    out = capsys.readouterr().out
    assert "stride 32" in out and "model.anchors=" in out


def test_unknown_variant_and_bad_config_exit_2(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("model: {scal: n}\n")
    assert main(["train", "--config", str(cfg), "--data", str(tmp_path)]) == 2
    assert "unknown config key 'model.scal'" in capsys.readouterr().err
