"""``active demo``: the whole job in one command, with nothing to download or train.

Renders a short synthetic microscopy clip with known ground truth (or takes a video the user
names), runs the bundled model over it with ``active detect``'s pipeline, writes the annotated
video, CSV, JSON and summary into ``./active-demo/`` and compares the counts with the truth. On
the synthetic clip it then runs the semen analysis on the same detections (``active analyze``'s
tracking, grades and concentration, the clip's µm/px, frame rate and chamber depth as the
calibration) into ``./active-demo/analysis/`` and compares the concentration and the grade
percentages with the clip's truth.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from active.inference.detect import DetectOptions, DetectSummary, detect
from active.inference.predictor import Predictor
from active.inference.results import Results
from active.inference.sources import SourceFrame
from active.utils.io import write_json


def make_clip(out: Path, frames: int, seed: int) -> tuple[Path, Any]:
    """Render one synthetic clip to ``out/clip.mp4``; returns its path and the SynthVideo (its
    per-frame records and per-track truth)."""
    from active.data.synth import SynthConfig, render_video
    from active.data.video import write_video

    cfg = replace(SynthConfig(), frames=frames)
    clip = render_video(cfg, seed, "DEMO")
    path = out / "clip.mp4"
    write_video(path, clip.frames, fps=cfg.fps)
    return path, clip


def compare_with_truth(records: list[Any], results: list[Results], names: tuple[str, ...],
                       score_threshold: float) -> dict[str, Any]:
    """Per-class mean count per frame (found vs true), mean absolute count error, and
    precision/recall at IoU 0.5 against the clip's ground truth."""
    from active.data.ap import ImageResult
    from active.evaluation.report import operating_point

    n = min(len(records), len(results))
    image_results = [ImageResult(records[i].boxes, records[i].labels, results[i].xyxy,
                                 results[i].conf, results[i].cls) for i in range(n)]
    op = operating_point(image_results, names, score_threshold)
    out: dict[str, Any] = {}
    for c, name in enumerate(names):
        true = np.array([(records[i].labels == c).sum() for i in range(n)], dtype=float)
        found = np.array([(results[i].cls == c).sum() for i in range(n)], dtype=float)
        pc = op["per_class"][name]
        out[name] = {"true_mean": round(float(true.mean()), 2),
                     "found_mean": round(float(found.mean()), 2),
                     "count_mae": round(float(np.abs(true - found).mean()), 2),
                     "precision": _rounded(pc["precision"]), "recall": _rounded(pc["recall"])}
    return out


def analysis_vs_truth(clip: Any, results: list[Results], predictor: Predictor,
                      out: Path) -> dict[str, Any]:
    """Run the semen analysis on the clip's detections (writing its outputs into ``out``) and
    compare the concentration and grade shares with the clip's truth."""
    from active.analysis import Calibration, analyze_detections
    from active.analysis.grades import GRADES
    from active.analysis.run import model_info, write_outputs
    from active.analysis.sample import combine_sample

    cfg = clip.config
    cal = Calibration(um_per_px=cfg.um_per_px, chamber_depth_um=cfg.chamber_depth_um)
    va = analyze_detections([r.xyxy for r in results], [r.cls for r in results],
                            [r.conf for r in results], predictor.names, (cfg.width, cfg.height),
                            cfg.fps, cal, str(out.parent / "clip.mp4"), "container")
    sample = combine_sample("DEMO", cal, [va], model_info(predictor))
    write_outputs(sample, out, {va.source: clip.frames[0]})
    one_s = int(round(cfg.fps)) + 1
    true_grades = [t.grade for t in clip.tracks
                   if t.class_name == "sperm" and len(t.frames) >= one_s]
    found = sample.motility
    grades = {g: {"found_pct": None if found is None else round(found.pct(g), 1),
                  "true_pct": round(100 * true_grades.count(g) / len(true_grades), 1)
                  if true_grades else None} for g in GRADES}
    conc = sample.concentration
    return {"concentration_m_per_ml": {
                "found": None if conc is None else round(conc.m_per_ml, 2),
                "ci95": None if conc is None else [round(v, 2) for v in conc.ci95_m_per_ml],
                "true": round(clip.concentration_m_per_ml, 2)},
            "grades_pct": grades, "graded_tracks": None if found is None else found.graded,
            "true_gradable_tracks": len(true_grades),
            "notes": list(dict.fromkeys(sample.notes + va.notes)),
            "report": str(out / "report.html")}


def run_demo(video: str | Path | None = None, out: str | Path = "active-demo",
             weights: str | Path = "default", backend: str = "auto", frames: int = 150,
             seed: int = 2024, device: str = "cpu", progress: bool = True
             ) -> tuple[DetectSummary, dict[str, Any] | None]:
    """Run the demo; returns the detection summary and (synthetic clip) the truth comparison,
    whose ``analysis`` entry compares the semen analysis with the clip's truth."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    records = clip = None
    if video is None:
        video, clip = make_clip(out, frames, seed)
        records = clip.records
    predictor = Predictor(weights, backend=backend, device=device)  # type: ignore[arg-type]
    results: list[Results] = []

    def keep(_: SourceFrame, r: Results) -> None:
        results.append(r)

    summary = detect(predictor, video, DetectOptions(out=out, progress=progress), keep)
    truth = None
    if records is not None:
        truth = compare_with_truth(records, results, predictor.names,
                                   predictor.postprocess_config.score_threshold)
        summary.extra["ground_truth"] = truth
        truth["analysis"] = analysis_vs_truth(clip, results, predictor, out / "analysis")
        write_json(out / "summary.json", summary.to_json())
    return summary, truth


def format_analysis(a: dict[str, Any]) -> str:
    """The semen analysis against the clip's truth, as a small table."""
    c = a["concentration_m_per_ml"]
    found = "not computed" if c["found"] is None else (
        f"{c['found']:.1f} (95% CI {c['ci95'][0]:.1f}-{c['ci95'][1]:.1f})")
    lines = [f"concentration, million/mL: found {found}, true {c['true']:.1f}",
             f"motility ({a['graded_tracks'] or 0} tracks graded; truth: "
             f"{a['true_gradable_tracks']} sperm visible >= 1 s)",
             f"  {'grade':<18} {'found %':>8} {'true %':>7}"]
    for g, v in a["grades_pct"].items():
        f = "-" if v["found_pct"] is None else f"{v['found_pct']:.1f}"
        t = "-" if v["true_pct"] is None else f"{v['true_pct']:.1f}"
        lines.append(f"  {g:<18} {f:>8} {t:>7}")
    lines += [f"note: {n}" for n in a["notes"]]
    lines.append(f"report: {a['report']}")
    return "\n".join(lines)


def _rounded(v: float) -> float | None:
    """None where a ratio is undefined (no detection, no truth): never a NaN in a report."""
    return None if v != v else round(v, 3)


def _cell(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_truth(truth: dict[str, Any]) -> str:
    lines = [f"{'class':<10} {'found/frame':>11} {'true/frame':>10} {'count MAE':>9} "
             f"{'precision':>9} {'recall':>7}"]
    for name, t in truth.items():
        if name == "analysis":
            continue
        lines.append(f"{name:<10} {t['found_mean']:>11.2f} {t['true_mean']:>10.2f} "
                     f"{t['count_mae']:>9.2f} {_cell(t['precision']):>9} {_cell(t['recall']):>7}")
    sperm = truth.get("sperm")
    if sperm and sperm["true_mean"] and abs(sperm["found_mean"] / sperm["true_mean"] - 1) > 0.1:
        lines.append("(the model's counting threshold was fitted on real SVIA video, where it "
                     "counts within 5 %; synthetic heads score differently, so the count here "
                     "is off: on your own microscope, fit the threshold with 'active calibrate', "
                     "docs/inference.md)")
    return "\n".join(lines)
