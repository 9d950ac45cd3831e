"""scripts/bench_models.py, the comparison benchmark, end to end on a tiny synthetic dataset: the
table's accuracy columns are the cross-validation results, the differences are paired by fold,
the measured costs are cached and reused, the docs block and the plot are written."""

from __future__ import annotations

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest
import yaml

from conftest import tiny_synth

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_models.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    root = tiny_synth(tmp_path_factory.mktemp("synth"), videos=3, frames=3)
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump({
        "model": {"variant": "active-i", "scale": "tiny", "imgsz": [128, 160]},
        "data": {"path": str(root)}, "warmup_steps": 2, "augment": {"mosaic": 0.0},
        "device": "cpu", "max_steps_per_epoch": 1, "eval_every": 100,
        "stages": [{"name": "frozen", "epochs": 1, "batch": 4, "lr": 2e-3,
                    "freeze_backbone": True}]}))
    return path


def _row(table: str, model: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {model} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_benchmark_table_costs_cache_doc_and_plot(tiny_config: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bench = _bench()
    out, doc = tmp_path / "cmp", tmp_path / "docs" / "comparison.md"
    doc.parent.mkdir()
    doc.write_text("# Kept\n\nbefore\n\n<!-- comparison-table -->\nSTALE TABLE\n"
                   "<!-- /comparison-table -->\n\nafter\n")
    argv = ["--models", "active-i", "yolov3", "--config", str(tiny_config), "--folds", "3",
            "--out", str(out), "--quiet", "--runs", "2", "--mem-steps", "2", "--doc", str(doc)]
    bench.main(argv)
    printed = capsys.readouterr().out

    results = json.loads((out / "results.json").read_text())["results"]
    ap = {(e["model"], e["fold"]): 100 * e["ap50"]["sperm"] for e in results}
    assert sorted(ap) == [(m, f) for m in ("active-i", "yolov3") for f in range(3)]
    text = doc.read_text()
    assert text.startswith("# Kept\n\nbefore\n") and text.endswith("after\n")
    assert "STALE" not in text
    assert "![AP50 against latency](img/comparison_ap_vs_latency.png)" in text
    assert (doc.parent / "img" / "comparison_ap_vs_latency.png").stat().st_size > 0
    assert (out / "ap_vs_latency.png").is_file()

    cells = _row(text, "yolov3")
    assert cells[1] == f"{ap['yolov3', 0]:.1f}"
    assert cells[2] == f"{statistics.mean(ap['yolov3', f] for f in range(3)):.1f} (3)"
    diff = statistics.mean(ap["yolov3", f] - ap["active-i", f] for f in range(3))
    assert cells[3] == f"{diff:+.1f} (0,1,2)" and _row(text, "active-i")[3] == "-"
    rows = json.loads((out / "comparison.json").read_text())
    for name in ("active-i", "yolov3"):
        r = rows[name]
        assert r["params_m"] > 0 and r["gflops"] > 0 and r["train_mem_mb"] > 0
        assert r["ms_torch"] > 0 and r["infer_mem_mb"] >= 0 and r["weights_fold"] == 0
        # 3 training frames at batch 4: one step per epoch
        assert r["s_per_epoch"] == pytest.approx(r["s_per_step"])
        assert not math.isnan(r["logged_s_per_epoch"])
    assert "costs: reused" not in printed

    # a rerun trains nothing and reuses the measured costs
    costs = json.loads((out / "costs.json").read_text())
    bench.main(argv + ["--no-train"])
    assert "costs: reused" in capsys.readouterr().out
    assert json.loads((out / "costs.json").read_text()) == costs
    assert _row(doc.read_text(), "yolov3")[1:4] == cells[1:4]

    # --costs-only: the cost columns alone, from the same cache, in their own doc block
    bench.main(argv + ["--costs-only"])
    assert "costs: reused" in capsys.readouterr().out
    text = doc.read_text()
    assert _row(text, "yolov3")[1:4] == cells[1:4]  # the accuracy block is left as it was
    block = text.split("<!-- comparison-costs -->\n", 1)[1].split("<!-- /comparison-costs -->")[0]
    assert "AP50" not in block and "Table I" not in block
    ref, other = _row(block, "active-i"), _row(block, "yolov3")
    assert float(ref[1]) == pytest.approx(rows["active-i"]["params_m"], abs=0.01)
    ratio = rows["yolov3"]["ms_torch"] / rows["active-i"]["ms_torch"]
    assert other[7].split(" / ")[0] == f"{ratio:.2f}x"
    assert ref[7] == "1.00x / 1.00x"
