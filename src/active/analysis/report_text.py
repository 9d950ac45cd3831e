"""The sample's numbers as a few lines of text for the terminal (the full report is HTML)."""

from __future__ import annotations

from pathlib import Path

from active.analysis.grades import GRADE_LABELS, GRADES
from active.analysis.sample import SampleAnalysis


def format_sample(sample: SampleAnalysis) -> str:
    lines = [f"sample {sample.sample_id}: {len(sample.videos)} video(s)"]
    for v in sample.videos:
        j = v.to_json(sample.calibration.um_per_px)
        lines.append(f"  {Path(v.source).name}: {v.frames} frames at {v.fps:g} fps "
                     f"({v.fps_from}), {j['tracks']['sperm']} sperm tracks, "
                     f"{j['sperm_per_frame']['mean']:.1f} sperm per frame")
    c = sample.concentration
    if c is not None:
        lo, hi = c.ci95_m_per_ml
        flag = "  (below the WHO reference limit, 16)" if c.m_per_ml < 16 else ""
        lines.append(f"concentration: {c.m_per_ml:.1f} million/mL (95% CI {lo:.1f}-{hi:.1f}; "
                     f"{c.cells_counted:.0f} cells counted){flag}")
    m = sample.motility
    if m is not None:
        lines.append(f"motility ({m.graded} tracks graded, {m.ungraded} shorter than 1 s):")
        for g in GRADES:
            lines.append(f"  {GRADE_LABELS[g]:<26} {m.counts[g]:>5}  {m.pct(g):5.1f} %")
        pr, tm = m.progressive_pct, m.total_motility_pct
        lines.append(f"  progressive {pr:.1f} % (limit 30){' BELOW' if pr < 30 else ''}, "
                     f"total motility {tm:.1f} % (limit 42){' BELOW' if tm < 42 else ''}")
    notes = list(sample.notes) + [n for v in sample.videos for n in v.notes]
    lines += [f"note: {n}" for n in dict.fromkeys(notes)]
    return "\n".join(lines)
