"""The comparison's summary, made from a table of per-video results: every model on every
held-out video, mean ± std over the folds, the difference to a reference model paired by fold,
the flip-TTA table, and (with a cost file of ``bench_models.py``) AP50 against latency.

    python scripts/summarize_comparison.py --ap results/comparison-ap50.csv \\
        --costs results/2026-12-04-costs-n/costs.json --doc docs/comparison.md

Why a separate script: ``bench_models.py`` tabulates the runs whose records lie in one ``--out``
folder, and the comparison's runs were made on several machines over several days, most of whose
folders are gone. Their numbers live on in the docs; this script keeps them as data, one row per
model, held-out video and setting with where the number was measured, and makes the summary from
that file, so the table, its means and paired differences and the plot cannot drift apart.

The CSV's columns: ``model`` (the cost file's model name, e.g. ``active-i``), ``label`` (as shown),
``fold``, ``video`` (the fold's held-out video), ``setting`` (``plain``: each model's own NMS, no
merging, no TTA, the paper's setting; ``tta``: flip TTA), ``ap50_sperm`` (%), ``source`` and
``note`` (a footnote, may be empty).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

COLUMNS = ("model", "label", "fold", "video", "setting", "ap50_sperm", "source", "note")
SETTINGS = ("plain", "tta")
MARKS = ("†", "‡", "§", "¶")  # footnote marks


@dataclass(frozen=True)
class Row:
    model: str
    label: str
    fold: int
    video: str
    setting: str
    ap50: float
    source: str
    note: str


def read_rows(path: Path) -> list[Row]:
    """The CSV's rows, checked: every column present, folds and AP50 numbers in range, one
    held-out video per fold, one row per (model, fold, setting), one label per (model, setting).
    A bad file raises ``ValueError`` naming the file and line."""
    path = Path(path)
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as e:
        raise ValueError(f"{path}: cannot read the results table ({e.strerror})") from e
    rows: list[Row] = []
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; "
                             f"expected {', '.join(COLUMNS)}")
        videos: dict[int, str] = {}
        labels: dict[tuple[str, str], str] = {}
        seen: set[tuple[str, int, str]] = set()
        for rec in reader:
            where = f"{path}, line {reader.line_num}"
            if None in rec or any(rec[c] is None for c in COLUMNS):
                raise ValueError(f"{where}: expected {len(COLUMNS)} fields")
            try:
                fold, ap = int(rec["fold"]), float(rec["ap50_sperm"])
            except ValueError:
                raise ValueError(f"{where}: fold {rec['fold']!r} or ap50_sperm "
                                 f"{rec['ap50_sperm']!r} is not a number") from None
            if fold < 0 or not 0.0 <= ap <= 100.0:
                raise ValueError(f"{where}: fold must be >= 0 and ap50_sperm a percentage in "
                                 f"[0, 100], got {fold} and {ap}")
            if rec["setting"] not in SETTINGS:
                raise ValueError(f"{where}: unknown setting {rec['setting']!r}; expected one of "
                                 f"{', '.join(SETTINGS)}")
            if not rec["model"] or not rec["video"]:
                raise ValueError(f"{where}: empty model or video")
            if videos.setdefault(fold, rec["video"]) != rec["video"]:
                raise ValueError(f"{where}: fold {fold} holds out {rec['video']} here but "
                                 f"{videos[fold]} above")
            key = (rec["model"], fold, rec["setting"])
            if key in seen:
                raise ValueError(f"{where}: a second row for {rec['model']}, fold {fold}, "
                                 f"{rec['setting']}")
            seen.add(key)
            label = rec["label"] or rec["model"]
            if labels.setdefault(key[::2], label) != label:
                raise ValueError(f"{where}: {rec['model']} ({rec['setting']}) is labelled "
                                 f"{label!r} here but {labels[key[::2]]!r} above")
            rows.append(Row(rec["model"], label, fold, rec["video"], rec["setting"], ap,
                            rec["source"], rec["note"]))
    if not rows:
        raise ValueError(f"{path}: no rows")
    return rows


def _models(rows: list[Row], setting: str) -> dict[str, dict[int, Row]]:
    """model -> fold -> row, in the file's order."""
    out: dict[str, dict[int, Row]] = {}
    for r in rows:
        if r.setting == setting:
            out.setdefault(r.model, {})[r.fold] = r
    return out


def fold_stats(by_fold: dict[int, Row]) -> tuple[float, float, int]:
    """Mean and sample standard deviation over the folds (std NaN for one fold) and their count."""
    values = [r.ap50 for r in by_fold.values()]
    std = statistics.stdev(values) if len(values) > 1 else float("nan")
    return statistics.fmean(values), std, len(values)


def paired(by_fold: dict[int, Row], ref: dict[int, Row]) -> tuple[float, dict[int, float]]:
    """The mean difference to the reference over the folds both have, and each fold's."""
    diffs = {f: by_fold[f].ap50 - ref[f].ap50 for f in sorted(by_fold) if f in ref}
    return (statistics.fmean(diffs.values()) if diffs else float("nan")), diffs


def _cell(r: Row | None, mark: str = "") -> str:
    """One decimal, rounded half up as a reader would (the CSV's 91.85 shows as 91.9, where the
    binary float would give 91.8)."""
    if r is None:
        return ""
    return f"{Decimal(repr(r.ap50)).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}{mark}"


def format_summary(rows: list[Row], reference: str, command: str) -> str:
    """The plain table (per video, mean ± std, paired to ``reference``), its footnotes, and the
    flip-TTA table, as Markdown."""
    folds = sorted({r.fold for r in rows})
    video = {r.fold: r.video for r in rows}
    plain = _models(rows, "plain")
    if reference not in plain:
        raise ValueError(f"the reference model {reference!r} has no plain rows")
    ref = plain[reference]
    notes: list[str] = []
    lines = [f"Made by `python scripts/summarize_comparison.py {command}` from the per-video "
             f"results it names (one row per model, held-out video and setting, with where each "
             f"was measured). Test sperm AP50 (%) on each fold's held-out video, each model's own "
             f"NMS, no merging, no TTA (the paper's setting); mean ± sample std over the folds a "
             f"model has; *paired*: the mean difference to {next(iter(ref.values())).label} "
             f"over the folds both have, and each fold's.", "",
             "| model | " + " | ".join(f"{video[f]} (fold {f})" for f in folds)
             + " | mean ± std (folds) | paired vs " + reference + ": mean (per fold) |",
             "|---" * (len(folds) + 3) + "|"]
    for model, by_fold in plain.items():
        cells = []
        for f in folds:
            r = by_fold.get(f)
            mark = ""
            if r is not None and r.note:
                notes.append(f"{r.label}, {r.video}: {r.note}.")
                mark = MARKS[(len(notes) - 1) % len(MARKS)]
            cells.append(_cell(r, mark) or "-")
        mean, std, n = fold_stats(by_fold)
        spread = f"{mean:.2f} ± {std:.2f} ({n})" if n > 1 else f"{mean:.2f} ({n})"
        if model == reference:
            vs = "-"
        else:
            d, per = paired(by_fold, ref)
            vs = ("n/a" if not per else f"{d:+.1f} ("
                  + ", ".join(f"{v:+.1f}" for v in per.values()) + ")")
        lines.append(f"| {by_fold[next(iter(by_fold))].label} | " + " | ".join(cells)
                     + f" | {spread} | {vs} |")
    if notes:
        lines += [""] + [f"{MARKS[i % len(MARKS)]} {n}" for i, n in enumerate(notes)]
    tta = _models(rows, "tta")
    if tta:
        lines += ["", "With flip TTA (the same weights, four mirrored views fused; not a paper "
                  "setting; empty cells were not measured):", "",
                  "| model | " + " | ".join(video[f] for f in folds) + " | mean (folds) |",
                  "|---" * (len(folds) + 2) + "|"]
        best = {f: max((b[f].ap50 for b in tta.values() if f in b), default=None) for f in folds}
        for by_fold in tta.values():
            cells = []
            for f in folds:
                r = by_fold.get(f)
                cell = _cell(r)
                cells.append(f"**{cell}**" if r is not None and r.ap50 == best[f] else cell)
            mean, _, n = fold_stats(by_fold)
            lines.append(f"| {by_fold[next(iter(by_fold))].label} | " + " | ".join(cells)
                         + f" | {mean:.2f} ({n}) |")
        lines.append("")
        lines.append("Bold: the best of the column.")
    return "\n".join(lines)


def read_costs(path: Path) -> dict[str, dict[str, float]]:
    """The ``models`` of a ``bench_models.py`` cost file (``costs.json``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        models = data["models"]
        for m in models.values():
            float(m["ms_torch"]), float(m["ms_onnx"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a cost file of scripts/bench_models.py ({e})") from e
    return models


def latency_ms(m: dict[str, float]) -> float:
    """ONNX Runtime latency where the model exports, else PyTorch's."""
    onnx = float(m["ms_onnx"])
    return onnx if math.isfinite(onnx) else float(m["ms_torch"])


def plot(rows: list[Row], costs: dict[str, dict[str, float]], path: Path) -> list[str]:
    """Mean plain AP50 over the folds (bars: the folds' min to max) against batch-1 latency, one
    point per model in the cost file; hollow where a model lacks folds. Returns the models left
    out (no costs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    folds = {r.fold for r in rows}
    plain = _models(rows, "plain")
    left_out = [m for m in plain if m not in costs]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for model, by_fold in plain.items():
        if model not in costs:
            continue
        x = latency_ms(costs[model])
        values = [r.ap50 for r in by_fold.values()]
        mean = statistics.fmean(values)
        full = len(by_fold) == len(folds)
        ax.errorbar([x], [mean], yerr=[[mean - min(values)], [max(values) - mean]], fmt="o",
                    capsize=3, mfc=None if full else "white")
        ax.annotate(model + ("" if full else f" ({len(by_fold)} fold)"), (x, mean),
                    textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xscale("log")
    lo, hi = ax.get_xlim()
    ax.set_xticks([t for t in (5, 10, 20, 50, 100, 200, 500, 1000, 2000) if lo <= t <= hi])
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("latency, batch 1 (ms; ONNX Runtime where exported)")
    ax.set_ylabel(f"AP50 sperm (%), mean over {len(folds)} held-out videos")
    ax.set_title("bars: worst to best video", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
    return left_out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ap", type=Path, default=Path("results/comparison-ap50.csv"),
                    help="the per-video results (CSV, see the module's docstring)")
    ap.add_argument("--reference", default="active-i", help="the model the others are paired to")
    ap.add_argument("--costs", type=Path, default=None,
                    help="a costs.json of scripts/bench_models.py: adds the AP50-latency plot")
    ap.add_argument("--doc", type=Path, default=None,
                    help="write the tables (and the plot's link) between the doc's "
                    "comparison-summary markers; the plot goes to the doc's img/ folder")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> str:
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    rows = read_rows(args.ap)
    block = format_summary(rows, args.reference, " ".join(argv))
    if args.costs:
        costs = read_costs(args.costs)
        img = (args.doc.parent if args.doc else args.ap.parent) / "img" / "comparison_summary.png"
        left_out = plot(rows, costs, img)
        rel = os.path.relpath(img, args.doc.parent) if args.doc else str(img)
        block += (f"\n\n![Mean AP50 against latency]({rel})\n\nThe plot: the plain table's "
                  f"mean against each model's batch-1 latency from `{args.costs}`"
                  + (f" (not in it, so not plotted: {', '.join(left_out)})" if left_out else "")
                  + ".")
    print(block)
    if args.doc:
        from active.utils.io import write_between

        write_between(args.doc, "<!-- comparison-summary -->", "<!-- /comparison-summary -->",
                      block, heading="" if args.doc.is_file() else "# The comparison")
    return block


if __name__ == "__main__":
    try:
        main()
    except ValueError as e:
        sys.exit(f"summarize_comparison: {e}")
