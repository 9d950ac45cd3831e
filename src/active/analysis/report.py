"""The sample's report: one self-contained HTML page (inline CSS, figures as data URIs, no
external reference) that reads on screen and prints on A4.

Every number is formatted here, in Python, into the strings the template shows: a value that does
not exist is never printed as NaN or None but as "not computed — <why>", the why taken from the
analysis' own notes. The template is rendered by Jinja2 with autoescaping on (file names and notes
are user-controlled text).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, StrictUndefined

from active.analysis import plots
from active.analysis.concentration import MIN_CELLS
from active.analysis.grades import GRADE_LABELS, GRADES, REFERENCE_LIMITS, GradeConfig
from active.analysis.kinematics import MIN_RELIABLE_FPS
from active.analysis.sample import SampleAnalysis, VideoAnalysis
from active.utils.io import write_text

NA = "—"

# (attribute of Kinematics, label, unit kind, digits): unit kind "speed", "length", or a literal.
KINEMATIC_ROWS = (
    ("vcl", "VCL (curvilinear velocity)", "speed", 1),
    ("vsl", "VSL (straight-line velocity)", "speed", 1),
    ("vap", "VAP (average-path velocity)", "speed", 1),
    ("lin", "LIN (linearity, VSL/VCL)", "%", 0),
    ("str_", "STR (straightness, VSL/VAP)", "%", 0),
    ("wob", "WOB (wobble, VAP/VCL)", "%", 0),
    ("alh_mean", "ALH mean (lateral head displacement)", "length", 2),
    ("bcf_hz", "BCF (beat-cross frequency)", "Hz", 1),
    ("mad_deg", "MAD (mean angular displacement)", "°", 0),
)
_RATIOS = {"lin", "str_", "wob"}


def _finite(v: Any) -> bool:
    return v is not None and isinstance(v, int | float | np.number) and math.isfinite(float(v))


def fmt(v: Any, digits: int = 1, missing: str = NA) -> str:
    """``v`` with ``digits`` decimals; ``missing`` when it is None or not finite."""
    return f"{float(v):.{digits}f}" if _finite(v) else missing


def fmt_sig(v: Any, missing: str = NA) -> str:
    """Two to three significant figures, no exponent (concentrations: 0.42, 8.13, 45.2, 123)."""
    if not _finite(v):
        return missing
    v = float(v)
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.2g}"


def fmt_pct(v: Any, missing: str = NA) -> str:
    return f"{fmt(v, 1)} %" if _finite(v) else missing


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for s in items:
        if s and s not in seen:
            seen[s] = None
    return list(seen)


def _name(video: VideoAnalysis) -> str:
    return Path(video.source).name or video.source or "video"


def _reasons(notes: Iterable[str], prefix: str) -> list[str]:
    """The parts after ``prefix`` of the notes that start with it."""
    return _unique(n[len(prefix):].strip(" :") for n in notes if n.startswith(prefix))


# -- sections -------------------------------------------------------------------------------


def _model(model: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    name = model.get("name")
    file = model.get("file") or model.get("weights")
    if name:
        rows.append(("Model", str(name)))
    rows.append(("Weights file", str(file) if file else "not recorded"))
    sha = model.get("sha256")
    rows.append(("Weights SHA-256", f"{str(sha)[:12]}…" if sha else "not recorded"))
    thr = model.get("score_threshold", model.get("conf"))
    source = {"model": "the model's counting operating point", "given": "given (--conf)",
              "profile": "from the microscope profile", "default 0.25": "the generic default"
              }.get(str(model.get("threshold_from")), "")
    text = fmt(thr, 4, "not recorded")
    rows.append(("Score threshold", f"{text} ({source})" if source and thr is not None
                 else text))
    if model.get("backend"):
        rows.append(("Backend", str(model["backend"])))
    return rows


def _summary(sample: SampleAnalysis) -> list[dict[str, Any]]:
    video_notes = [n for v in sample.videos for n in v.notes]
    items = []
    conc_limit = REFERENCE_LIMITS["concentration_m_per_ml"][0]
    c = sample.concentration
    if c is not None and _finite(c.m_per_ml):
        lo, hi = c.ci95_m_per_ml
        items.append({
            "label": "Sperm concentration",
            "value": f"{fmt_sig(c.m_per_ml)} million/mL",
            "detail": (f"95 % CI {fmt_sig(lo)}–{fmt_sig(hi)} million/mL; "
                       f"{fmt(c.cells_counted, 0)} cells counted in {c.fields} "
                       f"field{'s' if c.fields != 1 else ''}"),
            "limit": f"{conc_limit:g} million/mL",
            "below": c.m_per_ml < conc_limit, "computed": True})
    else:
        why = _reasons(sample.notes, "no concentration") or ["no field could be measured"]
        items.append({"label": "Sperm concentration", "value": f"not computed — {'; '.join(why)}",
                      "detail": "", "limit": f"{conc_limit:g} million/mL",
                      "below": False, "computed": False})
    m = sample.motility
    for key, label, attr in (("total_motility_pct", "Total motility (a+b+c)",
                              "total_motility_pct"),
                             ("progressive_motility_pct", "Progressive motility (a+b)",
                              "progressive_pct")):
        limit = REFERENCE_LIMITS[key][0]
        value = getattr(m, attr) if m is not None else None
        if _finite(value):
            items.append({"label": label, "value": fmt_pct(value),
                          "detail": f"of {m.graded} graded sperm tracks",
                          "limit": f"{fmt(limit, 0)} %", "below": value < limit,
                          "computed": True})
        else:
            why = _reasons(video_notes, "motility not graded") or ["no sperm track was graded"]
            items.append({"label": label, "value": f"not computed — {'; '.join(why)}",
                          "detail": "", "limit": f"{fmt(limit, 0)} %", "below": False,
                          "computed": False})
    return items


def _grades(sample: SampleAnalysis) -> dict[str, Any]:
    m = sample.motility
    if m is None:
        why = _reasons([n for v in sample.videos for n in v.notes], "motility not graded")
        return {"rows": [], "why": "; ".join(why) or "no sperm track was graded"}
    rows = [{"label": GRADE_LABELS[g], "count": str(m.counts[g]), "pct": fmt_pct(m.pct(g)),
             "total": False} for g in GRADES]
    rows.append({"label": "all graded tracks", "count": str(m.graded), "pct": "100.0 %",
                 "total": True})
    rows.append({"label": "tracks shorter than 1 s (counted, not graded)",
                 "count": str(m.ungraded), "pct": NA, "total": False})
    return {"rows": rows, "why": ""}


def _replicates(sample: SampleAnalysis) -> list[dict[str, str]]:
    um = sample.calibration.um_per_px
    rows = []
    for v in sample.videos:
        scale = um if (um is not None and v.unit == "um") else 1.0
        vx, vy = v.drift.velocity_px_per_frame
        speed = math.hypot(vx, vy) * v.fps * scale
        drift = (f"{fmt(speed, 2)} {plots.speed_unit(v.unit)} — {v.drift.note}"
                 if v.drift.measured else v.drift.note)
        n = len(v.sperm_per_frame)
        rows.append({
            "name": _name(v), "frames": str(v.frames),
            "fps": f"{v.fps:g} ({v.fps_from})",
            "duration": f"{fmt(v.frames / v.fps if v.fps else None, 1)} s",
            "per_frame": fmt(float(np.mean(v.sperm_per_frame)) if n else 0.0, 1),
            "raw_per_frame": fmt(float(np.mean(v.raw_sperm_per_frame))
                                 if len(v.raw_sperm_per_frame) else 0.0, 1),
            "sperm_tracks": str(len(v.sperm_tracks)),
            "graded": str(v.motility.graded) if v.motility is not None else "not graded",
            "drift": drift})
    return rows


def _agreement(sample: SampleAnalysis) -> list[tuple[str, str]]:
    out = []
    for key, label in (("concentration", "Concentration (Poisson dispersion of the counts)"),
                       ("motility", "Motility (chi-square test of the grade counts)")):
        check = sample.agreement.get(key) or {}
        missing = (sample.concentration is None if key == "concentration"
                   else sample.motility is None)
        if missing and not check.get("tested"):
            why = (_reasons(sample.notes, "no concentration") if key == "concentration"
                   else ["motility not graded"])
            text = f"not tested — {'; '.join(why) or 'not computed'}"
        elif not check.get("tested"):
            text = f"not tested — {check.get('reason') or 'no result'}"
        else:
            p = fmt(check.get("p_value"), 3, "not available")
            text = (f"agree (p = {p})" if check.get("agree")
                    else f"disagree (p = {p}): WHO asks for new replicates")
        out.append((label, text))
    return out


def _kinematic_tracks(sample: SampleAnalysis) -> tuple[list[Any], str]:
    """The kinematics the table summarises, and which tracks they are."""
    sperm = [r for v in sample.videos for r in v.sperm_tracks if r.kinematics is not None]
    graded = [r.kinematics for r in sperm if r.grade is not None]
    if graded:
        return graded, f"over {len(graded)} graded sperm tracks (drift removed)"
    long = [r.kinematics for r in sperm if r.kinematics.net_1s is not None]
    if long:
        return long, (f"over {len(long)} sperm tracks of at least 1 s (not graded; drift "
                      "removed)")
    return [], ""


def _kinematics(sample: SampleAnalysis) -> dict[str, Any]:
    kins, caption = _kinematic_tracks(sample)
    unit = sample.videos[0].unit if sample.videos else "px"
    units = {"speed": plots.speed_unit(unit), "length": plots.length_unit(unit)}
    rows = []
    for attr, label, kind, digits in KINEMATIC_ROWS:
        vals = np.array([float(getattr(k, attr)) for k in kins if _finite(getattr(k, attr))])
        if attr in _RATIOS:
            vals = vals * 100.0
        if len(vals):
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            median, iqr = fmt(med, digits), f"{fmt(q1, digits)}–{fmt(q3, digits)}"
        else:
            median, iqr = NA, NA
        rows.append({"label": label, "unit": units.get(kind, kind), "median": median,
                     "iqr": iqr, "n": str(len(vals))})
    flags = _unique(f for k in kins for f in k.flags)
    slow = _unique(f"{_name(v)}: {v.fps:g} fps" for v in sample.videos
                   if v.fps < MIN_RELIABLE_FPS)
    low_fps = ""
    if slow or flags:
        low_fps = (f"Below {MIN_RELIABLE_FPS:g} fps: VCL underestimated, ALH and BCF unreliable"
                   + (f" ({', '.join(slow)})." if slow else "."))
    why = ""
    if not kins:
        why = ("no sperm track was followed for 1 s or more" if sample.videos
               else "no video")
    return {"rows": rows if kins else [], "caption": caption, "low_fps": low_fps, "why": why}


def _calibration(sample: SampleAnalysis) -> list[tuple[str, str]]:
    cal = sample.calibration.to_json()
    um = cal.get("um_per_px")
    depth = cal.get("chamber_depth_um")
    fps = cal.get("fps")
    return [
        ("µm per pixel", f"{um:g}" if _finite(um)
         else "not given — distances in pixels, no grades or concentration"),
        ("frame rate override", f"{fps:g} fps" if _finite(fps)
         else "none — each video's own frame rate"),
        ("chamber depth", f"{depth:g} µm" if _finite(depth) else "not given — no concentration"),
        ("dilution", f"{cal.get('dilution', 1.0):g}" + (" (neat)" if cal.get("dilution") == 1
                                                         else "")),
    ]


def _warnings(sample: SampleAnalysis) -> list[str]:
    out = list(sample.notes)
    for v in sample.videos:
        out.extend(f"{_name(v)}: {n}" for n in v.notes)
    return _unique(out)


def _plots(sample: SampleAnalysis, frames: dict[str, np.ndarray | None]) -> dict[str, Any]:
    um = sample.calibration.um_per_px
    tracks = [{"name": _name(v),
               "uri": _png_uri(plots.trajectories_png(frames.get(v.source), v, um))}
              for v in sample.videos]
    return {"tracks": tracks,
            "histograms": _png_uri(plots.histograms_png(sample.videos)) if sample.videos else "",
            "counts": _png_uri(plots.counts_png(sample.videos)) if sample.videos else ""}


def _guide() -> dict[str, str]:
    g = GradeConfig()
    return {"rapid": f"{g.rapid_um_per_s:g}", "progressive": f"{g.progressive_um_per_s:g}",
            "vap": f"{g.motile_vap_um_per_s:g}", "seconds": f"{g.min_seconds:g}",
            "min_cells": str(MIN_CELLS), "fps": f"{MIN_RELIABLE_FPS:g}"}


def render_report(sample: SampleAnalysis, frames: dict[str, np.ndarray | None],
                  generated: datetime | None = None) -> str:
    """The report of ``sample`` as one self-contained HTML document.

    Args:
        frames: per video (keyed by ``VideoAnalysis.source``), the frame its tracks are drawn
            over (RGB), or None for a blank canvas; a missing key is None.
        generated: the time shown as the analysis' time (default: now).
    """
    from active.version import __version__

    when = (generated or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M %Z").strip()
    context = {
        "sample_id": sample.sample_id or "unnamed sample", "generated": when,
        "version": __version__, "model": _model(sample.model or {}),
        "summary": _summary(sample), "grades": _grades(sample),
        "replicates": _replicates(sample), "agreement": _agreement(sample),
        "kinematics": _kinematics(sample), "plots": _plots(sample, frames or {}),
        "calibration": _calibration(sample),
        "drift_notes": [(_name(v), v.drift.note) for v in sample.videos],
        "warnings": _warnings(sample), "grade_labels": GRADE_LABELS,
        "colours": {k: "#" + bytes(c).hex() for k, c in plots.GRADE_COLOURS.items()},
        "guide": _guide(),
    }
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True,
                      lstrip_blocks=True)
    return env.from_string(_template()).render(**context)


def write_report(sample: SampleAnalysis, out_dir: Path,
                 frames: dict[str, np.ndarray | None] | None = None,
                 generated: datetime | None = None) -> Path:
    """Render the report and write it to ``out_dir/report.html`` atomically; returns the path."""
    html = render_report(sample, frames or {}, generated)
    path = Path(out_dir) / "report.html"
    write_text(path, html)
    return path


def _template() -> str:
    """The report's Jinja2 template, a package file (``templates/report.html.j2``)."""
    from importlib import resources

    return (resources.files("active.analysis") / "templates" / "report.html.j2").read_text(
        encoding="utf-8")
