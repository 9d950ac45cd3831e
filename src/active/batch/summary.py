"""The cohort summary of a catalogue: ``cohort.csv`` (and ``cohort.parquet`` when pyarrow is
installed), one row per sample, and ``cohort.html``, the distributions of concentration, motility
grades and kinematics over the samples, with the samples outside the WHO reference limits and the
failed or low-count ones listed. Each file is written to a temporary name, then renamed; a value
that does not exist is an empty cell (CSV), a null (Parquet) or a dash (HTML), never NaN.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from active.analysis.concentration import MIN_CELLS
from active.analysis.grades import GRADE_LABELS, GRADES, REFERENCE_LIMITS
from active.batch.catalogue import Catalogue
from active.batch.cohort import COLUMNS
from active.utils.io import atomic_path, write_text

#: (column, axis label, WHO lower limit or None) of each histogram.
HISTOGRAMS = (
    ("concentration_m_per_ml", "concentration (10⁶/mL)",
     REFERENCE_LIMITS["concentration_m_per_ml"][0]),
    ("progressive_pct", "progressive motility (%)",
     REFERENCE_LIMITS["progressive_motility_pct"][0]),
    ("total_motility_pct", "total motility (%)", REFERENCE_LIMITS["total_motility_pct"][0]),
    ("vcl_median_um_per_s", "median VCL (µm/s)", None),
    ("vsl_median_um_per_s", "median VSL (µm/s)", None),
    ("lin_median", "median LIN (VSL/VCL)", None),
)
_LIMIT_NAMES = {"progressive_motility_pct": "progressive motility",
                "total_motility_pct": "total motility", "concentration_m_per_ml": "concentration"}


def write_summary(cat: Catalogue, out: Path) -> dict[str, str]:
    """Write the cohort files of every sample in ``cat`` into ``out``; returns their paths."""
    rows = [{c: r[c] for c in COLUMNS} for r in cat.sample_rows()]
    paths = {"csv": out / "cohort.csv", "html": out / "cohort.html"}
    write_text(paths["csv"], cohort_csv(rows))
    if _write_parquet(rows, out / "cohort.parquet"):
        paths["parquet"] = out / "cohort.parquet"
    write_text(paths["html"], cohort_html(rows, cat.failed_videos()))
    return {k: str(v) for k, v in paths.items()}


def cohort_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(["" if r[c] is None else r[c] for c in COLUMNS])
    return buf.getvalue()


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    table = pa.Table.from_pylist(rows) if rows else pa.table({c: [] for c in COLUMNS})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return True


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _histogram(values: list[float], label: str, limit: float | None) -> str:
    fig = Figure(figsize=(3.2, 2.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.hist(values, bins=min(30, max(5, len(values) // 3)), color="#4a7ab5")
    if limit is not None:
        ax.axvline(limit, color="#c0392b", linestyle="--", label=f"WHO limit {limit:g}")
        ax.legend(fontsize=7, frameon=False)
    ax.set_xlabel(label, fontsize=8)
    ax.set_ylabel("samples", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def _grades(rows: list[dict[str, Any]]) -> str:
    """Box plots of each grade's share over the samples."""
    data = [[r[f"{g}_pct"] for r in rows if r[f"{g}_pct"] is not None] for g in GRADES]
    fig = Figure(figsize=(6.4, 2.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.boxplot(data, tick_labels=[GRADE_LABELS[g] for g in GRADES])
    ax.set_ylabel("% of graded sperm", fontsize=8)
    ax.tick_params(labelsize=7)
    return _png(fig)


def _cell(v: Any) -> str:
    return "—" if v is None else html.escape(str(v))


def _table(headers: list[str], body: list[list[Any]]) -> str:
    if not body:
        return "<p>none</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    trs = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>" for r in body)
    return f"<table><tr>{head}</tr>{trs}</table>"


def cohort_html(rows: list[dict[str, Any]], failed: list[dict[str, Any]]) -> str:
    """The cohort page (module docstring), self-contained."""
    figures = []
    for column, label, limit in HISTOGRAMS:
        values = [float(r[column]) for r in rows if r[column] is not None]
        if values:
            figures.append(f'<img alt="{html.escape(label)}" '
                           f'src="{_histogram(values, label, limit)}">')
    if any(r["graded_tracks"] for r in rows):
        figures.append(f'<img alt="motility grades" src="{_grades(rows)}">')
    below = [[r["sample_id"], ", ".join(_LIMIT_NAMES[k] for k in r["below_reference"].split(";")),
              r["concentration_m_per_ml"], r["progressive_pct"], r["total_motility_pct"]]
             for r in rows if r["below_reference"]]
    low = [[r["sample_id"], r["cells_counted"], r["graded_tracks"]]
           for r in rows if r["low_count"]]
    bad = [[r["sample_id"], r["status"], f"{r['failed']} of {r['videos']}"]
           for r in rows if r["status"] in ("failed", "partial", "running")]
    states = {s: sum(r["status"] == s for r in rows) for s in ("done", "partial", "failed",
                                                                  "running")}
    limits = ", ".join(f"{_LIMIT_NAMES[k]} {v[0]:g}" for k, v in REFERENCE_LIMITS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ACTIVE cohort summary</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}img{{margin:4px}}</style>
</head><body>
<h1>Cohort summary</h1>
<p>{len(rows)} samples: {states['done']} done, {states['partial']} partly failed,
{states['failed']} failed, {states['running']} not finished. Every number comes from the
catalogue; <code>cohort.csv</code> holds them per sample.</p>
<h2>Distributions over the samples</h2>
{''.join(figures) or '<p>no sample has a number to plot yet</p>'}
<h2>Outside the WHO reference limits</h2>
<p>Lower reference limits (WHO 6th ed.): {limits} (10⁶/mL, %).</p>
{_table(['sample', 'below', 'concentration (10⁶/mL)', 'progressive %', 'total motility %'],
        below)}
<h2>Low count (fewer than {MIN_CELLS} cells counted)</h2>
{_table(['sample', 'cells counted', 'graded tracks'], low)}
<h2>Failed or unfinished samples</h2>
{_table(['sample', 'status', 'videos failed'], bad)}
<h2>Failed videos</h2>
{_table(['sample', 'video', 'error'], [[f['sample_id'], f['path'], f['error']]
                                          for f in failed])}
</body></html>
"""
