"""What the report page shows above the full report: the headline numbers of ``summary.json``,
each with its unit, what it means and its WHO reference limit, formatted by the report's own
functions (:mod:`active.analysis.report`) so that the page and ``report.html`` agree digit for
digit. A number that does not exist says why, as the report does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from active.analysis.grades import GRADE_LABELS, GRADES, REFERENCE_LIMITS, GradeConfig
from active.analysis.report import fmt, fmt_pct, fmt_sig


@dataclass(frozen=True)
class Number:
    """One headline number. ``key``: its dotted path in summary.json (``raw`` is the value
    there); ``text``: the value with its unit as shown; ``meaning``: one sentence;
    ``limit``: the WHO lower reference limit, if any; ``flag``: "below", "ok" or "na"."""

    key: str
    label: str
    text: str
    raw: Any
    meaning: str
    limit: str = ""
    flag: str = ""


def lookup(summary: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key`` of ``summary`` (None where missing)."""
    value: Any = summary
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _why(summary: dict[str, Any], prefix: str, default: str) -> str:
    notes = [n for n in summary.get("notes") or [] if n.startswith(prefix)]
    return notes[0][len(prefix):].strip(" :—-") if notes else default


def _flag(value: Any, limit_key: str) -> str:
    if value is None:
        return "na"
    return "below" if float(value) < REFERENCE_LIMITS[limit_key][0] else "ok"


def headline_numbers(summary: dict[str, Any]) -> list[Number]:
    """The sample's headline numbers (module docstring), in reading order."""
    g = GradeConfig()
    conc = summary.get("concentration") or {}
    mot = summary.get("motility") or {}
    out = []
    c = conc.get("m_per_ml")
    lo, hi = (conc.get("ci95_m_per_ml") or [None, None])[:2]
    limit, ci = REFERENCE_LIMITS["concentration_m_per_ml"]
    out.append(Number(
        "concentration.m_per_ml", "Sperm concentration",
        f"{fmt_sig(c)} million/mL" if c is not None else
        "not computed — " + _why(summary, "no concentration", "see the notes below"), c,
        "Millions of sperm per millilitre of semen (corrected for the dilution). The true value "
        f"lies between {fmt_sig(lo)} and {fmt_sig(hi)} million/mL with 95 % confidence."
        if c is not None else "Needs the µm per pixel and the chamber depth.",
        f"{limit:g} million/mL (95 % CI {ci})", _flag(c, "concentration_m_per_ml")))
    cells = conc.get("cells_counted")
    out.append(Number(
        "concentration.cells_counted", "Cells counted", f"{fmt(cells, 1)} sperm"
        if cells is not None else "—", cells,
        "Sperm seen per frame, summed over the videos: the count the concentration rests on. "
        "WHO asks for at least 200; fewer give a wide interval."))
    for key, label, limit_key, meaning in (
            ("progressive_pct", "Progressive motility (PR = a + b)", "progressive_motility_pct",
             f"Share of the graded sperm that swim forward: at least {g.progressive_um_per_s:g} "
             "µm/s in a straight line over 1 s."),
            ("total_motility_pct", "Total motility (PR + NP = a + b + c)", "total_motility_pct",
             "Share of the graded sperm that move at all (progressive or not).")):
        v = mot.get(key)
        limit, ci = REFERENCE_LIMITS[limit_key]
        out.append(Number(f"motility.{key}", label, fmt_pct(v) if v is not None else
                          "not computed — needs the µm per pixel", v, meaning,
                          f"{limit:g} % (95 % CI {ci})", _flag(v, limit_key)))
    n = mot.get("graded_tracks")
    out.append(Number("motility.graded_tracks", "Sperm graded", "—" if n is None
                      else f"{n} sperm", n,
                      f"Sperm followed for at least {g.min_seconds:g} s; only these are graded. "
                      f"{mot.get('ungraded_tracks', 0) or 0} shorter tracks were not graded."))
    return out


def grade_rows(summary: dict[str, Any]) -> list[Number]:
    """The four WHO grades: count of sperm and share of the graded ones."""
    g = GradeConfig()
    mot = summary.get("motility") or {}
    meaning = {
        "rapid_progressive": f"swim forward {g.rapid_um_per_s:g} µm/s or faster",
        "slow_progressive": f"swim forward {g.progressive_um_per_s:g} to under "
                            f"{g.rapid_um_per_s:g} µm/s",
        "non_progressive": f"move, but forward less than {g.progressive_um_per_s:g} µm/s",
        "immotile": "do not move"}
    rows = []
    for grade in GRADES:
        pct = (mot.get("percent") or {}).get(grade)
        count = (mot.get("counts") or {}).get(grade)
        rows.append(Number(f"motility.percent.{grade}", GRADE_LABELS[grade].capitalize(),
                           fmt_pct(pct), pct, f"{'—' if count is None else count} sperm "
                           f"that {meaning[grade]}"))
    return rows


def video_rows(summary: dict[str, Any], names: dict[str, str]) -> list[dict[str, str]]:
    """Per video: the uploaded name (``names``: stored file name -> uploaded name), frames,
    frame rate, duration, sperm per frame."""
    rows = []
    for v in summary.get("videos") or []:
        source = Path(str(v.get("source") or "")).name
        per_frame = (v.get("sperm_per_frame") or {}).get("mean")
        rows.append({"stored": source, "name": names.get(source, source),
                     "frames": str(v.get("frames", "—")),
                     "fps": f"{fmt(v.get('fps'), 1)} frames/s ({v.get('fps_from') or '?'})",
                     "duration": f"{fmt(v.get('duration_s'), 1)} s",
                     "size": f"{v.get('width', '?')} × {v.get('height', '?')} px",
                     "per_frame": f"{fmt(per_frame, 1)} sperm per frame"})
    return rows


def notes(summary: dict[str, Any], names: dict[str, str]) -> list[str]:
    """The analysis' notes and warnings (the sample's, then each video's under its uploaded
    name), each once."""
    out = list(summary.get("notes") or [])
    for v in summary.get("videos") or []:
        source = Path(str(v.get("source") or "")).name
        out += [f"{names.get(source, source)}: {n}" for n in v.get("notes") or []]
    return list(dict.fromkeys(out))
