"""scripts/summarize_comparison.py: the comparison's summary made from per-video results. Means,
standard deviations and paired differences are checked against values computed here from the
same numbers; a malformed results file is refused with its name and line; the docs' summary
block is the one the script makes from the repository's results file."""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "summarize_comparison.py"
HEADER = "model,label,fold,video,setting,ap50_sperm,source,note\n"


def _mod():
    spec = importlib.util.spec_from_file_location("summarize_comparison", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


ROWS = [  # model, fold, video, setting, ap50, note
    ("ref", 0, "V_A", "plain", 90.0, ""),
    ("ref", 1, "V_B", "plain", 80.0, ""),
    ("ref", 2, "V_C", "plain", 70.5, ""),
    ("other", 0, "V_A", "plain", 95.25, "scored differently"),
    ("other", 2, "V_C", "plain", 60.0, ""),
    ("lone", 1, "V_B", "plain", 81.0, ""),
    ("ref", 0, "V_A", "tta", 93.0, ""),
    ("other", 0, "V_A", "tta", 96.0, ""),
    ("other", 1, "V_B", "tta", 85.0, ""),
]


def _write(path: Path, rows=ROWS, header: str = HEADER) -> Path:
    path.write_text(header + "".join(
        f"{m},{m.upper()} {s},{f},{v},{s},{ap},somewhere,{note}\n"
        for m, f, v, s, ap, note in rows), encoding="utf-8")
    return path


def _row_of(table: str, label: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_summary_statistics_and_pairing(tmp_path):
    mod = _mod()
    text = mod.format_summary(mod.read_rows(_write(tmp_path / "ap.csv")), "ref", "--x")
    ref = [90.0, 80.0, 70.5]
    cells = _row_of(text, "REF plain")
    assert cells[1:4] == ["90.0", "80.0", "70.5"]
    assert cells[4] == f"{statistics.fmean(ref):.2f} ± {statistics.stdev(ref):.2f} (3)"
    assert cells[5] == "-"
    other = _row_of(text, "OTHER plain")
    assert other[1:4] == ["95.3†", "-", "60.0"]  # rounded half up
    d0, d2 = 95.25 - 90.0, 60.0 - 70.5
    assert other[5] == f"{(d0 + d2) / 2:+.1f} ({d0:+.1f}, {d2:+.1f})"
    assert "† OTHER plain, V_A: scored differently." in text
    lone = _row_of(text, "LONE plain")
    assert lone[4] == "81.00 (1)" and lone[5] == "+1.0 (+1.0)"
    # the TTA table: its own labels, the column's best in bold, empty where not measured
    assert _row_of(text, "OTHER tta")[1:5] == ["**96.0**", "**85.0**", "", "90.50 (2)"]
    assert _row_of(text, "REF tta")[1:3] == ["93.0", ""]


def test_doc_block_and_plot(tmp_path, monkeypatch):
    mod = _mod()
    ap = _write(tmp_path / "ap.csv")
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"models": {
        "ref": {"ms_torch": 30.0, "ms_onnx": 20.0},
        "other": {"ms_torch": 80.0, "ms_onnx": float("nan")}}}))
    doc = tmp_path / "docs" / "cmp.md"
    doc.parent.mkdir()
    doc.write_text("# Title\n\nbefore\n\n<!-- comparison-summary -->\nold\n"
                   "<!-- /comparison-summary -->\n\nafter\n")
    argv = ["--ap", str(ap), "--reference", "ref", "--costs", str(costs), "--doc", str(doc)]
    block = mod.main(argv)
    text = doc.read_text()
    assert text.startswith("# Title\n\nbefore\n\n<!-- comparison-summary -->\n")
    assert text.endswith("<!-- /comparison-summary -->\n\nafter\n") and "\nold\n" not in text
    assert block in text
    assert (doc.parent / "img" / "comparison_summary.png").stat().st_size > 1000
    assert "not plotted: lone" in block  # not in the cost file
    assert mod.latency_ms({"ms_torch": 80.0, "ms_onnx": float("nan")}) == 80.0
    mod.main(argv)
    assert doc.read_text() == text  # made again: the same document


@pytest.mark.parametrize("edit, message", [
    (lambda r: r[:2] + [("ref", 2, "V_C", "plain", "high", "")], "line 4: fold"),
    (lambda r: r[:2] + [("ref", 2, "V_C", "plain", 101.0, "")], "line 4: fold must be"),
    (lambda r: r[:2] + [("ref", 1, "V_B", "plain", 70.0, "")], "line 4: a second row"),
    (lambda r: r[:2] + [("other", 1, "V_X", "plain", 70.0, "")], "line 4: fold 1 holds out"),
    (lambda r: r[:2] + [("ref", 2, "V_C", "merged", 70.0, "")], "line 4: unknown setting"),
    (lambda r: [], "no rows"),
])
def test_bad_results_are_refused_with_file_and_line(tmp_path, edit, message):
    mod = _mod()
    path = _write(tmp_path / "bad.csv", edit(list(ROWS)))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*" + re.escape(message)):
        mod.read_rows(path)


def test_bad_header_label_and_costs_are_refused(tmp_path):
    mod = _mod()
    bad = _write(tmp_path / "cols.csv", header="model,fold,video,setting,ap50_sperm\n")
    with pytest.raises(ValueError, match="cols.csv: missing column"):
        mod.read_rows(bad)
    relabel = tmp_path / "label.csv"
    relabel.write_text(HEADER + "a,A,0,V,plain,90,s,\na,B,1,W,plain,91,s,\n")
    with pytest.raises(ValueError, match="label.csv, line 3: a \\(plain\\) is labelled"):
        mod.read_rows(relabel)
    with pytest.raises(ValueError, match="missing.csv: cannot read"):
        mod.read_rows(tmp_path / "missing.csv")
    costs = tmp_path / "costs.json"
    costs.write_text('{"models": {"a": {"ms_torch": 1.0}}}')
    with pytest.raises(ValueError, match="costs.json: not a cost file"):
        mod.read_costs(costs)
    with pytest.raises(ValueError, match="reference model 'nope'"):
        mod.format_summary(mod.read_rows(_write(tmp_path / "ok.csv")), "nope", "")


def test_docs_summary_is_made_from_the_results_file():
    """The tables in docs/comparison.md are what the script makes from results/comparison-ap50.csv
    with the command the doc names: edit the CSV, then run that command again."""
    mod = _mod()
    doc = (ROOT / "docs" / "comparison.md").read_text(encoding="utf-8")
    block = doc.split("<!-- comparison-summary -->\n", 1)[1]
    block = block.split("<!-- /comparison-summary -->")[0]
    command = re.match(r"Made by `python scripts/summarize_comparison.py ([^`]*)`", block)
    assert command, "the summary block does not name its command"
    args = mod.parse_args(command.group(1).split())
    made = mod.format_summary(mod.read_rows(ROOT / args.ap), args.reference, command.group(1))
    assert block.startswith(made + "\n")
