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
    from active import __version__

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
    return env.from_string(TEMPLATE).render(**context)


def write_report(sample: SampleAnalysis, out_dir: Path,
                 frames: dict[str, np.ndarray | None] | None = None,
                 generated: datetime | None = None) -> Path:
    """Render the report and write it to ``out_dir/report.html`` atomically; returns the path."""
    html = render_report(sample, frames or {}, generated)
    path = Path(out_dir) / "report.html"
    write_text(path, html)
    return path


TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Semen analysis report — {{ sample_id }}</title>
<style>
  :root { --ok: #1e7b34; --bad: #b3261e; --muted: #5f6368; --line: #d0d4d9; }
  * { box-sizing: border-box; }
  body { font-family: "Helvetica Neue", Arial, sans-serif; font-size: 14px; line-height: 1.45;
         color: #1f1f1f; max-width: 980px; margin: 0 auto; padding: 16px 20px; }
  h1 { font-size: 22px; margin: 0 0 4px; }
  h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 2px solid var(--line);
       padding-bottom: 3px; }
  h3 { font-size: 14px; margin: 12px 0 6px; }
  table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
  th, td { border: 1px solid var(--line); padding: 4px 7px; text-align: left;
           vertical-align: top; }
  th { background: #f1f3f4; font-weight: 600; }
  td.num, th.num { text-align: right; white-space: nowrap; }
  tr.total td { font-weight: 600; }
  .meta { color: var(--muted); font-size: 13px; }
  .meta table { width: auto; }
  .meta td { border: none; padding: 1px 10px 1px 0; }
  .summary { border: 2px solid #444; border-radius: 6px; padding: 10px 14px; margin: 14px 0; }
  .summary table td { border: none; border-bottom: 1px solid var(--line); }
  .summary .value { font-size: 17px; font-weight: 700; }
  .flag { display: inline-block; padding: 1px 7px; border-radius: 4px; font-weight: 700;
          font-size: 12px; }
  .flag.below { color: #fff; background: var(--bad); }
  .flag.ok { color: var(--ok); border: 1px solid var(--ok); }
  .flag.na { color: var(--muted); border: 1px solid var(--muted); }
  .detail { color: var(--muted); font-size: 12px; }
  .warn { border: 2px solid #e0a800; background: #fff8e1; border-radius: 6px;
          padding: 8px 14px; margin: 10px 0; }
  .warn ul { margin: 4px 0; padding-left: 20px; }
  .lowfps { border-left: 6px solid var(--bad); background: #fdecea; padding: 6px 12px;
            font-weight: 700; margin: 6px 0; }
  .swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
            margin-right: 6px; vertical-align: -1px; }
  figure { margin: 8px 0 14px; page-break-inside: avoid; break-inside: avoid; }
  figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
  figcaption { color: var(--muted); font-size: 12px; }
  .guide dt { font-weight: 600; margin-top: 6px; }
  .guide dd { margin: 0 0 0 16px; }
  footer { color: var(--muted); font-size: 11px; margin-top: 24px; }
  @media print {
    @page { size: A4; margin: 14mm 12mm; }
    body { font-size: 10pt; max-width: none; padding: 0; }
    h2 { page-break-after: avoid; break-after: avoid; }
    table, .summary, .warn, .lowfps { page-break-inside: avoid; break-inside: avoid; }
    * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
    figure img { max-height: 120mm; width: auto; }
  }
</style>
</head>
<body>
<header>
  <h1>Semen analysis report: {{ sample_id }}</h1>
  <div class="meta">
    <table>
      <tr><td>Analysed</td><td>{{ generated }}</td></tr>
      <tr><td>Software</td><td>ACTIVE {{ version }} (computer-aided sperm analysis)</td></tr>
      {% for key, value in model %}
      <tr><td>{{ key }}</td><td>{{ value }}</td></tr>
      {% endfor %}
    </table>
  </div>
</header>

<section class="summary">
  <h2 style="margin-top:0">Summary</h2>
  <table>
    <tr><th>Measure</th><th>Result</th><th>WHO lower reference limit (6th ed.)</th>
        <th>Flag</th></tr>
    {% for item in summary %}
    <tr>
      <td>{{ item.label }}</td>
      <td><span class="{{ 'value' if item.computed else '' }}">{{ item.value }}</span>
        {% if item.detail %}<br><span class="detail">{{ item.detail }}</span>{% endif %}</td>
      <td>{{ item.limit }}</td>
      <td>{% if not item.computed %}<span class="flag na">not computed</span>
          {% elif item.below %}<span class="flag below">below reference limit</span>
          {% else %}<span class="flag ok">at or above limit</span>{% endif %}</td>
    </tr>
    {% endfor %}
  </table>
</section>

{% if warnings %}
<section class="warn">
  <strong>Warnings and notes ({{ warnings | length }})</strong>
  <ul>
    {% for w in warnings %}<li>{{ w }}</li>
    {% endfor %}
  </ul>
</section>
{% endif %}

<section>
  <h2>Motility grades (WHO 6th ed.)</h2>
  {% if grades.rows %}
  <table>
    <tr><th>Grade</th><th class="num">Tracks</th><th class="num">% of graded</th></tr>
    {% for row in grades.rows %}
    <tr{% if row.total %} class="total"{% endif %}><td>{{ row.label }}</td>
      <td class="num">{{ row.count }}</td><td class="num">{{ row.pct }}</td></tr>
    {% endfor %}
  </table>
  {% else %}
  <p>Grades: not computed — {{ grades.why }}.</p>
  {% endif %}
</section>

<section>
  <h2>Replicates (videos = fields of the chamber)</h2>
  <table>
    <tr><th>Video</th><th class="num">Frames</th><th>Frame rate (source)</th>
        <th class="num">Duration</th><th class="num">Sperm per frame (tracked)</th>
        <th class="num">Raw detections per frame</th><th class="num">Sperm tracks</th>
        <th class="num">Graded tracks</th><th>Fluid drift</th></tr>
    {% for r in replicates %}
    <tr><td>{{ r.name }}</td><td class="num">{{ r.frames }}</td><td>{{ r.fps }}</td>
      <td class="num">{{ r.duration }}</td><td class="num">{{ r.per_frame }}</td>
      <td class="num">{{ r.raw_per_frame }}</td><td class="num">{{ r.sperm_tracks }}</td>
      <td class="num">{{ r.graded }}</td><td>{{ r.drift }}</td></tr>
    {% endfor %}
  </table>
  <h3>Do the replicates agree?</h3>
  <table>
    {% for label, text in agreement %}
    <tr><td>{{ label }}</td><td>{{ text }}</td></tr>
    {% endfor %}
  </table>
</section>

<section>
  <h2>Kinematics</h2>
  {% if kinematics.low_fps %}<div class="lowfps">{{ kinematics.low_fps }}</div>{% endif %}
  {% if kinematics.rows %}
  <p class="detail">Medians and interquartile ranges (25th–75th centile)
    {{ kinematics.caption }}.</p>
  <table>
    <tr><th>Parameter</th><th>Unit</th><th class="num">Median</th><th class="num">IQR</th>
        <th class="num">Tracks</th></tr>
    {% for row in kinematics.rows %}
    <tr><td>{{ row.label }}</td><td>{{ row.unit }}</td><td class="num">{{ row.median }}</td>
      <td class="num">{{ row.iqr }}</td><td class="num">{{ row.n }}</td></tr>
    {% endfor %}
  </table>
  {% else %}
  <p>Kinematics: not computed — {{ kinematics.why }}.</p>
  {% endif %}
</section>

<section>
  <h2>Figures</h2>
  <p class="detail">Track colours:
    {% for g, label in grade_labels.items() %}<span class="swatch"
      style="background:{{ colours[g] }}"></span>{{ label }}&nbsp;&nbsp;
    {% endfor %}<span class="swatch" style="background:{{ colours['ungraded'] }}"></span>not
    graded&nbsp;&nbsp;dashed dark grey: impurities.</p>
  {% for t in plots.tracks %}
  <figure>
    <img src="{{ t.uri }}" alt="Tracks of {{ t.name }}">
    <figcaption>Tracks of {{ t.name }}, coloured by grade.</figcaption>
  </figure>
  {% endfor %}
  {% if plots.histograms %}
  <figure>
    <img src="{{ plots.histograms }}" alt="Histograms of VCL, VSL and LIN">
    <figcaption>VCL, VSL and LIN of every sperm track (all videos), stacked by grade.
    </figcaption>
  </figure>
  {% endif %}
  {% if plots.counts %}
  <figure>
    <img src="{{ plots.counts }}" alt="Sperm per frame over time">
    <figcaption>Sperm per frame over time: counted on kept tracks (solid, used for
      concentration) and every detection (faint).</figcaption>
  </figure>
  {% endif %}
</section>

<section>
  <h2>Calibration and settings</h2>
  <table>
    {% for key, value in calibration %}
    <tr><td>{{ key }}</td><td>{{ value }}</td></tr>
    {% endfor %}
  </table>
  <p class="detail">Fluid drift: one constant velocity per video, measured on the objects that
    do not swim (impurities and immotile sperm) and subtracted from every sperm track before its
    kinematics and grade.</p>
  <ul class="detail">
    {% for name, note in drift_notes %}<li>{{ name }}: drift {{ note }}</li>
    {% endfor %}
  </ul>
</section>

<section class="guide">
  <h2>How to read this report</h2>
  <dl>
    <dt>Motility grades</dt>
    <dd>Each sperm head followed for at least {{ guide.seconds }} s is graded from how far it
      moves in a straight line over 1 s: <em>rapid progressive (a)</em> at
      {{ guide.rapid }} µm/s or more, <em>slowly progressive (b)</em> from
      {{ guide.progressive }} to under {{ guide.rapid }} µm/s, <em>non-progressive (c)</em>
      below {{ guide.progressive }} µm/s while the head still moves (average-path speed of
      {{ guide.vap }} µm/s or more), <em>immotile (d)</em> otherwise. Total motility is
      a+b+c, progressive motility a+b, as percentages of the graded tracks. Shorter tracks are
      counted but not graded.</dd>
    <dt>Concentration and its interval</dt>
    <dd>Concentration is the mean number of sperm per frame divided by the imaged volume
      (field area × chamber depth), times the dilution. The 95 % interval is the range the true
      concentration lies in with 95 % confidence given how many cells were counted; it narrows as
      more cells are counted. WHO asks for at least {{ guide.min_cells }} cells per replicate;
      record more fields when fewer were counted.</dd>
    <dt>Frame rate</dt>
    <dd>At frame rates below {{ guide.fps }} fps (e.g. 30 fps) the head's side-to-side movement
      between frames is missed: VCL is underestimated and ALH and BCF are unreliable. Grades use
      the progression over 1 s and are much less affected.</dd>
    <dt>Fluid drift</dt>
    <dd>When the fluid in the chamber flows, every object moves with it. The flow was measured
      on impurities and immotile cells and subtracted before the speeds and grades were
      computed; where it could not be measured, speeds are relative to the image.</dd>
    <dt>Automatic detection</dt>
    <dd>All numbers come from automatic detection and tracking. Spot-check them on the annotated
      video (track ids and tails coloured by grade) before relying on them.</dd>
    <dt>Reference limits</dt>
    <dd>The limits are WHO's lower reference limits (5th centiles of fertile men, 6th edition,
      2021). A value below a limit is flagged; it is not a diagnosis on its own.</dd>
  </dl>
</section>

<footer>Generated by ACTIVE {{ version }} on {{ generated }}. Sample {{ sample_id }}.</footer>
</body>
</html>
"""
