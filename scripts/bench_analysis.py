"""Benchmark of the semen analysis (``active.analysis``) against synthetic ground truth, its speed
end to end, and how its tracks look on the real SVIA sample.

On ``--clips`` synthetic clips (default SynthConfig, ``--frames`` frames each; clip i has seed
``video_seed(--seed, i)``, seeds no test uses) and the bundled detector (ONNX, default score
threshold; detections cached in ``--cache``):

1. tracking of sperm: ours (``active.analysis.tracking.link``), trackpy's linker and ByteTrack
   (the ``trackers`` package) on the same detections, scored with TrackEval's HOTA, CLEAR and
   Identity classes (IoU of boxes), and timed;
2. kinematics: our tracks (via ``analyze_detections``) matched to true tracks; VCL/VSL/VAP
   against the truth over the same frames (true centres minus the true fluid drift); the drift
   estimate against the true drift;
3. motility grades: shares of the four WHO grades vs the truth, with the detector's boxes and with
   the true boxes as detections;
4. concentration: the field's count per volume vs the true concentration;
5. speed: ``active analyze`` on a 30 s clip, in a subprocess (start-up included);
6. the four real SVIA videos (µm/px unknown: 0.35 assumed): track statistics and a picture.

Needs ``pip install trackpy trackers trackeval`` (not project dependencies).

    python scripts/bench_analysis.py --clips 10 --seed 7000 --doc docs/analysis.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from active.analysis import Calibration, analyze_detections
from active.analysis.grades import GRADES
from active.analysis.kinematics import kinematics
from active.analysis.sample import VideoAnalysis
from active.data.synth import SynthConfig, render_video, video_seed
from active.utils.io import write_between, write_json, write_text

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported
from bench_tracking import (  # noqa: E402
    TRACKERS,
    Clip,
    _need,
    bench_tracking,
    detection_quality,
    iou,
    load_clip,
    synthetic_profile,
    tracked_clips,
    with_true_boxes,
)

BEGIN, END = "<!-- bench-analysis:begin -->", "<!-- bench-analysis:end -->"
SVIA_DIR = Path(__file__).resolve().parents[2] / "shared/data/svia-sample/original videos"
NAMES = ("sperm", "impurity")


# ---------------------------------------------------------------- 2-4. analysis vs truth
def analyse(clip: Clip, source: str) -> VideoAnalysis:
    cal = Calibration(um_per_px=clip.cfg.um_per_px, chamber_depth_um=clip.cfg.chamber_depth_um)
    b, c, s = clip.split(source)
    return analyze_detections(b, c, s, NAMES, clip.size, clip.cfg.fps, cal, clip.name)


def longest_run(frames: np.ndarray) -> int:
    if len(frames) == 0:
        return 0
    cuts = np.flatnonzero(np.diff(frames) != 1)
    return int(np.diff(np.r_[-1, cuts, len(frames) - 1]).max())


def match_pairs(clip: Clip, va: VideoAnalysis, tally: Counter[str]) -> list[dict[str, Any]]:
    """Our sperm tracks >= 1 s matched to a true track; kinematics of both over shared frames.
    ``tally`` counts the tracks >= 1 s, and why some are left out."""
    fps, um = clip.cfg.fps, clip.cfg.um_per_px
    one_s = int(round(fps)) + 1
    truth = {t.id: t for t in clip.tracks}
    gts = clip.gt_sperm()
    vx, vy = va.drift.velocity_px_per_frame
    out = []
    for r in va.sperm_tracks:
        tr = r.track
        votes: Counter[int] = Counter()
        for f, box in zip(tr.frames[tr.detected], tr.boxes[tr.detected], strict=True):
            g_boxes, g_ids = gts[f]
            if len(g_boxes):
                m = iou(box, g_boxes)[0]
                if m.max() >= 0.5:
                    votes[int(g_ids[m.argmax()])] += 1
        if len(tr) < one_s:
            continue
        tally["tracks >= 1 s"] += 1
        gid, n = votes.most_common(1)[0] if votes else (-1, 0)
        if n <= tr.detected.sum() / 2:
            tally["no true track for most of its detections"] += 1
            continue
        t = truth[gid]
        common = np.intersect1d(tr.frames, t.frames)
        if len(common) < one_s or longest_run(common) != len(common):
            tally["shares < 1 s of consecutive frames with it"] += 1
            continue
        sel = np.isin(tr.frames, common)
        if sel.all():
            mine = r.kinematics
        else:
            xy = (tr.xy_px[sel] - np.c_[vx, vy] * common[:, None]) * um
            mine = kinematics(xy, fps)
        ts = np.isin(t.frames, common)
        true_xy = (t.centres[ts] - t.fluid_px_per_frame[None] * common[:, None]) * um
        tk = kinematics(true_xy, fps)
        out.append({"clip": clip.name, "track": tr.id, "gt": gid, "grade_true": t.grade,
                    "grade_measured": r.grade, "frames": len(common),
                    **{f"{p}_true": round(getattr(tk, p), 3) for p in ("vcl", "vsl", "vap")},
                    **{f"{p}_measured": round(getattr(mine, p), 3)
                       for p in ("vcl", "vsl", "vap")}})
    return out


def id_events(clip: Clip, va: VideoAnalysis, tally: Counter[tuple[str, str]]) -> None:
    """Per true grade: cells seen >= 1 s, our graded tracks on them, and identity changes along
    each true path (the true box owned, at IoU >= 0.5, by another of our tracks than before):
    'fragment' when the previous track had ended, 'swap' when it went on elsewhere."""
    grade_of = {t.id: t.grade for t in clip.tracks}
    life = {r.track.id: int(r.track.frames[-1]) for r in va.sperm_tracks}
    per_frame: list[list[tuple[int, np.ndarray]]] = [[] for _ in clip.gt]
    for r in va.sperm_tracks:
        for f, box in zip(r.track.frames, r.track.boxes, strict=True):
            per_frame[f].append((r.track.id, box))
    last: dict[int, tuple[int, int]] = {}  # true id -> (frame, our id)
    for f, (g_boxes, g_ids) in enumerate(clip.gt_sperm()):
        if not per_frame[f] or not len(g_boxes):
            continue
        m = iou(g_boxes, np.array([b for _, b in per_frame[f]]))
        for k, g in enumerate(g_ids):
            j = int(m[k].argmax())
            if m[k, j] < 0.5:
                continue
            ours = per_frame[f][j][0]
            prev = last.get(int(g))
            if prev is not None and prev[1] != ours:
                kind = "swaps" if life[prev[1]] >= f else "fragments"
                tally[(str(grade_of[int(g)]), kind)] += 1
            last[int(g)] = (f, ours)
    graded = {r.track.id: r.grade for r in va.sperm_tracks if r.grade is not None}
    for g, n in true_grades(clip).items():
        tally[(g, "true cells >= 1 s")] += n
    for g in graded.values():
        tally[(g, "our graded tracks")] += 1


def id_event_rows(tally: Counter[tuple[str, str]]) -> list[list[Any]]:
    keys = ("true cells >= 1 s", "our graded tracks", "fragments", "swaps")
    return [[g, *[tally[(g, k)] for k in keys]] for g in GRADES]


def kinematics_rows(pairs: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    groups = [("all matched tracks", pairs),
              ("motile (true grade not immotile)", [p for p in pairs
                                                    if p["grade_true"] != "immotile"])] + [
        (g, [p for p in pairs if p["grade_true"] == g]) for g in GRADES]
    for label, ps in groups:
        if not ps:
            continue
        row: list[Any] = [label, len(ps)]
        for p in ("vcl", "vsl", "vap"):
            t = np.array([q[f"{p}_true"] for q in ps])
            m = np.array([q[f"{p}_measured"] for q in ps])
            rel = np.abs(m - t) / np.maximum(t, 1e-9)
            row += [f"{100 * np.median(rel):.1f} %", f"{np.median(np.abs(m - t)):.2f}"]
        rows.append(row)
    return rows


def grade_shares(counts: dict[str, int]) -> list[float]:
    n = sum(counts.values())
    return [100 * counts[g] / n if n else float("nan") for g in GRADES]


def true_grades(clip: Clip) -> dict[str, int]:
    one_s = int(round(clip.cfg.fps)) + 1
    c = Counter(t.grade for t in clip.tracks
                if t.class_name == "sperm" and longest_run(t.frames) >= one_s)
    return {g: c.get(g, 0) for g in GRADES}


def drift_um_per_s(va: VideoAnalysis, clip: Clip) -> np.ndarray:
    return np.asarray(va.drift.velocity_px_per_frame) * clip.cfg.fps * clip.cfg.um_per_px


def conc(va: VideoAnalysis, raw: bool = False) -> float:
    assert va.field is not None
    cells = float(va.raw_sperm_per_frame.mean()) if raw else va.field.cells
    return cells / va.field.volume_ml / 1e6


# ---------------------------------------------------------------- 5. speed
def bench_speed(cache: Path, seed: int, out_json: Path, profile: Path) -> list[list[Any]]:
    from active.data.video import write_video

    clip = cache / f"speed_{seed}_30s.mp4"
    if not clip.is_file():
        cfg = replace(SynthConfig(), frames=900)
        write_video(clip, render_video(cfg, video_seed(seed, 999), "SPEED").frames, cfg.fps)
    exe = [shutil.which("active")] if shutil.which("active") else [sys.executable, "-m", "active"]
    rows, raw = [], []
    for extra in ([], ["--no-video"]):
        with tempfile.TemporaryDirectory(prefix="bench-analysis-") as tmp:
            cmd = [*exe, "analyze", str(clip), "--um-per-px", "0.35", "--chamber-depth", "20",
                   "--profile", str(profile), "--out", tmp, "--quiet", *extra]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                rows.append([" ".join(extra) or "(default)", f"failed rc {proc.returncode}",
                             proc.stderr.strip().splitlines()[-1:] or "", "", "", "", "", ""])
                continue
            sec = json.loads((Path(tmp) / "summary.json").read_text())["videos"][0]["seconds"]
        share = (sec.get("tracking", 0) + sec.get("kinematics", 0)) / sec["detection"]
        raw.append({"flags": extra, "wall_s": wall, "seconds": sec})
        rows.append([" ".join(extra) or "(default: annotated video)", f"{wall:.1f}",
                     f"{sec['detection']:.1f}", f"{sec.get('tracking', 0):.2f}",
                     f"{sec.get('kinematics', 0):.2f}",
                     f"{sec.get('annotated_video', 0):.1f}" if "annotated_video" in sec else "-",
                     f"{100 * share:.1f} %", "yes" if wall <= 30 else "no"])
    write_json(out_json, raw)
    return rows


# ---------------------------------------------------------------- 6. SVIA
def _lost_in_view(va: VideoAnalysis, border: float = 20.0, near: float = 15.0) -> tuple[int, int]:
    """Sperm tracks that end before the last frame more than ``border`` px inside the frame
    (lost in view), and how many of them had another sperm track within ``near`` px then."""
    w, h = va.size
    tr = [t.track for t in va.sperm_tracks]
    lost = crowded = 0
    for t in tr:
        f, (x, y) = int(t.frames[-1]), t.xy_px[-1]
        if f >= va.frames - 1 or not (border < x < w - border and border < y < h - border):
            continue
        lost += 1
        others = [o.xy_px[f - o.frames[0]] for o in tr if o is not t and o.frames[0] <= f
                  <= o.frames[-1]]
        if others and np.min(np.linalg.norm(np.array(others) - [x, y], axis=1)) < near:
            crowded += 1
    return lost, crowded


def bench_svia(img_dir: Path) -> tuple[list[list[Any]], list[str]]:
    from active.analysis import AnalyzeOptions, analyze
    from active.data.video import read_frame

    videos = sorted(SVIA_DIR.glob("*.mp4"))
    if not videos:
        return [], [f"SVIA sample absent ({SVIA_DIR}): skipped"]
    sample = analyze(videos, Calibration(um_per_px=0.35, chamber_depth_um=20), None,
                     options=AnalyzeOptions(backend="onnx", report=False, annotated=False))
    rows, notes = [], []
    for path, va in zip(videos, sample.videos, strict=True):
        tr = va.sperm_tracks
        lens = np.array([len(t.track) for t in tr])
        one_s = int(round(va.fps)) + 1
        w, h = va.size
        lost, crowded = _lost_in_view(va)
        covered = va.sperm_per_frame.sum() / max(va.raw_sperm_per_frame.sum(), 1)
        rows.append([path.stem, va.frames, f"{va.raw_sperm_per_frame.mean():.1f}",
                     f"{va.sperm_per_frame.mean():.1f}", len(tr),
                     f"{np.median(lens):.0f}" if len(lens) else "-",
                     f"{100 * np.mean(lens < one_s):.0f} %" if len(lens) else "-",
                     f"{100 * covered:.0f} %", f"{100 * lost / max(len(tr), 1):.0f} %",
                     f"{crowded}/{lost}", "-" if va.motility is None else va.motility.graded])
        if path.stem in ("S_0001", "S_0004"):
            from active.analysis.plots import trajectories_png

            img_dir.mkdir(parents=True, exist_ok=True)
            png = trajectories_png(read_frame(path, 0), va, 0.35)
            (img_dir / f"analysis-tracks-{path.stem}.png").write_bytes(png)
            notes.append(f"docs/img/analysis-tracks-{path.stem}.png")
    return rows, notes


# ---------------------------------------------------------------- output
def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                  .splitlines() if ln.startswith("model name")), "unknown CPU")
    return f"{os.cpu_count()} cores (`nproc`), {model}"


def fmt(values: list[float]) -> list[str]:
    return [f"{v:.1f}" for v in values]


Section = tuple[str, str]  # title, Markdown text


def section_tracking(clips: list[Clip], res: Path) -> Section:
    rec, prec = detection_quality(clips)
    rows, raw = bench_tracking(clips)
    variants = ("linking only", "detected frames only", "unfiltered")  # not rerun on true boxes
    ideal = {k: f for k, f in TRACKERS.items() if not any(v in k for v in variants)}
    rows_t, raw_t = bench_tracking([with_true_boxes(c) for c in clips], ideal,
                                   ", true boxes + 0.5 px noise")
    rows += rows_t
    _write_csv(res / "tracking_per_clip.csv", raw + raw_t)
    n_gt = sum(d["gt_tracks"] for d in raw[:len(clips)])
    return ("Tracking (sperm only, same detections, TrackEval at IoU 0.5)", md_table(
        ["tracker", "HOTA", "DetA", "AssA", "IDF1", "MOTA", "IDSW", "Frag", "tracks",
         "ms/frame"], rows)
        + f"\n\n{len(clips)} clips x {len(clips[0].det)} frames; {n_gt} true sperm tracks. "
        "The detector's sperm boxes (at the threshold used) against the true boxes, "
        "one-to-one at "
        f"IoU >= 0.5: recall {100 * rec:.1f} %, precision {100 * prec:.1f} %.")


def _pct_err(x: float, truth: float) -> str:
    return f"{100 * (x - truth) / truth:+.1f} %"


def sections_vs_truth(clips: list[Clip], res: Path) -> list[Section]:
    """Kinematics, drift, grades and concentration against the synthetic truth."""
    pairs: list[dict[str, Any]] = []
    grade_rows, conc_rows, drift_rows, per_clip = [], [], [], []
    pooled: dict[str, Counter[str]] = {s: Counter() for s in ("truth", "detector", "true boxes")}
    tally: Counter[str] = Counter()
    events: Counter[tuple[str, str]] = Counter()
    for clip in clips:
        va = {s: analyse(clip, s) for s in ("detector", "true boxes")}
        pairs += match_pairs(clip, va["detector"], tally)
        id_events(clip, va["detector"], events)
        truth = true_grades(clip)
        pooled["truth"].update(truth)
        shares_t = grade_shares(truth)
        for s, v in va.items():
            counts = v.motility.counts if v.motility else {g: 0 for g in GRADES}
            pooled[s].update(counts)
            sh = grade_shares(counts)
            diff = max(abs(a - b) for a, b in zip(sh, shares_t, strict=True))
            grade_rows.append([clip.name, s, *fmt(sh), f"{diff:.1f}"])
            est = drift_um_per_s(v, clip)
            per_clip.append({
                "clip": clip.name, "source": s,
                **{f"pct_{g}": round(x, 2) for g, x in zip(GRADES, sh, strict=True)},
                **{f"true_pct_{g}": round(x, 2) for g, x in zip(GRADES, shares_t, strict=True)},
                "max_grade_diff_pts": round(diff, 2), "conc_true": round(clip.concentration, 3),
                "conc_tracked": round(conc(v), 3), "conc_raw": round(conc(v, True), 3),
                "drift_true_um_s": clip.fluid_um_per_s.round(3).tolist(),
                "drift_est_um_s": est.round(3).tolist(), "drift_measured": v.drift.measured,
                "drift_err_um_s": round(float(np.linalg.norm(est - clip.fluid_um_per_s)), 3)})
        grade_rows.append([clip.name, "truth", *fmt(shares_t), ""])
        d, g = va["detector"], va["true boxes"]
        ct = clip.concentration
        conc_rows.append([clip.name, f"{ct:.1f}", f"{conc(d):.1f}", _pct_err(conc(d), ct),
                          f"{conc(d, True):.1f}", _pct_err(conc(d, True), ct),
                          f"{conc(g):.1f}", _pct_err(conc(g), ct)])
        drift_rows.append([clip.name, f"{np.linalg.norm(clip.fluid_um_per_s):.2f}", *[
            f"{np.linalg.norm(drift_um_per_s(v, clip) - clip.fluid_um_per_s):.2f}"
            + ("" if v.drift.measured else " (not measured)") for v in (d, g)],
            d.drift.tracks_used])
    _write_csv(res / "kinematics_pairs.csv", pairs)
    _write_csv(res / "analysis_per_clip.csv", per_clip)
    out = [("Kinematics of matched tracks >= 1 s (detector), vs truth over the same frames",
            md_table(["true grade", "pairs", "VCL median rel. err.",
                      "VCL median abs. err. (µm/s)", "VSL rel.", "VSL abs.", "VAP rel.",
                      "VAP abs."], kinematics_rows(pairs))
            + "\n\nOur sperm tracks: " + ", ".join(f"{k}: {v}" for k, v in tally.items())
            + f"; pairs compared: {len(pairs)}. Truth: true centres minus the true drift; "
            "measured: detected box centres minus the estimated drift (both with "
            "active.analysis.kinematics). Target: median relative error <= 10 % (all matched)."),
           ("Fluid drift: |estimated - true| (µm/s)", md_table(
               ["clip", "true speed", "error, detector", "error, true boxes",
                "tracks used (detector)"], drift_rows))]
    shares_t = grade_shares(dict(pooled["truth"]))
    pool_rows = []
    for s in ("detector", "true boxes"):
        sh = grade_shares(dict(pooled[s]))
        pool_rows.append(["pooled", s, *fmt(sh),
                          f"{max(abs(a - b) for a, b in zip(sh, shares_t, strict=True)):.1f}"])
    pool_rows.append(["pooled", "truth (sperm seen >= 1 s)", *fmt(shares_t), ""])
    out.append(("Motility grades (share of graded sperm tracks)", md_table(
        ["clip", "source", *[f"{g} %" for g in GRADES], "max |diff| (pts)"],
        pool_rows + grade_rows) + "\n\nTarget: max |diff| <= 5 points. Why they differ "
        "(detector): per grade, by the true grade for identity changes, by our grade for our "
        "tracks; an identity change is the true box passing (IoU >= 0.5) to another of our "
        "tracks, a 'fragment' when our previous track had ended, a 'swap' when it went on "
        "elsewhere:\n\n" + md_table(["grade", "true cells >= 1 s", "our graded tracks",
                                         "fragments", "swaps"], id_event_rows(events))))
    c = np.array([[float(r[k]) for k in (1, 2, 4, 6)] for r in conc_rows])
    rel = (c[:, 1:] - c[:, :1]) / c[:, :1] * 100
    summary = [["mean error", "", "", f"{rel[:, 0].mean():+.1f} %", "",
                f"{rel[:, 1].mean():+.1f} %", "", f"{rel[:, 2].mean():+.1f} %"],
               ["mean abs error", "", "", f"{np.abs(rel[:, 0]).mean():.1f} %", "",
                f"{np.abs(rel[:, 1]).mean():.1f} %", "", f"{np.abs(rel[:, 2]).mean():.1f} %"]]
    out.append(("Concentration (million/mL)", md_table(
        ["clip", "true", "reported", "err", "raw detections", "err",
         "true boxes, reported", "err"], conc_rows + summary)
        + "\n\nReported: sperm detections less those in tracks set aside as debris or "
        "impurities, mean per frame (what the report uses); raw: every sperm detection; true: "
        "true sperm boxes per frame."))
    return out


def section_speed(clips: list[Clip], cache: Path, seed: int, res: Path, profile: Path
                  ) -> Section:
    n_frames = sum(len(c.det) for c in clips)
    load = os.getloadavg()[0]
    rows = bench_speed(cache, seed, res / "speed.json", profile)
    det_ms = 1000 * sum(c.detect_s for c in clips) / n_frames
    return ("Speed: `active analyze` on a 30 s clip (900 frames, 698x528), subprocess",
            md_table(["flags", "wall s", "detection s", "tracking s", "kinematics s",
                      "annotated video s", "(tracking+kinematics)/detection", "<= 30 s"], rows)
            + "\n\nWall: the whole command (start-up, model load, decode, detection, analysis, "
            f"outputs). Detector alone on the benchmark clips (in process, batches of 8, when "
            f"they were first detected): {det_ms:.0f} ms/frame. Load average before the runs: "
            f"{load:.1f} on {os.cpu_count()} cores (other work on a shared machine slows them).")


def section_svia(res: Path) -> Section:
    rows, notes = bench_svia(Path("docs/img"))
    if not rows:
        return ("Real SVIA videos", notes[0])
    keys = ["video", "frames", "raw_per_frame", "tracked_per_frame", "tracks", "median_len",
            "short_pct", "covered_pct", "lost_in_view_pct", "lost_near_other", "graded"]
    _write_csv(res / "svia.csv", [dict(zip(keys, r, strict=True)) for r in rows])
    return ("Real SVIA videos (no track truth)", md_table(
        ["video", "frames", "sperm/frame (raw)", "sperm/frame (tracked)", "sperm tracks",
         "median length (frames)", "tracks < 1 s", "detections in tracks",
         "tracks lost in view", "of which near another", "graded"], rows)
        + "\n\nµm/px of SVIA is unknown: 0.35 µm/px is ASSUMED (the synthetic default), and a "
        "20 µm chamber. 'Tracks lost in view': sperm tracks that end before the last frame more "
        "than 20 px from the border; 'near another': another sperm track within 15 px at that "
        "frame (a collision or a crowded spot). Pictures: " + ", ".join(notes))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--cache", type=Path, default=Path("runs/bench-analysis-cache"))
    ap.add_argument("--results", type=Path, default=Path("results/2026-12-07-bench-analysis"))
    ap.add_argument("--doc", type=Path, default=None)
    ap.add_argument("--calibrate", action="store_true", help="detect at the threshold "
                    "'active calibrate' fits for the synthetic microscope on other clips "
                    "(default: --conf, else 0.25)")
    ap.add_argument("--calib-seed", type=int, default=9000, help="seed of the clips that "
                    "calibrate the counting threshold for the synthetic 'microscope'")
    ap.add_argument("--calib-clips", type=int, default=2)
    ap.add_argument("--calib-frames", type=int, default=60)
    ap.add_argument("--tracked", type=Path, default=None, help="real videos with track ids "
                    "(YOLO/COCO, e.g. VISEM-Tracking): only the tracking table, on them")
    ap.add_argument("--um-per-px", type=float, default=None, help="with --tracked: its scale")
    ap.add_argument("--fps", type=float, default=None, help="with --tracked: its frame rate")
    ap.add_argument("--weights", default="default", help="the detector (default: the bundled "
                    "model, run with ONNX Runtime); another model detects afresh (give it its "
                    "own --cache) and skips the speed and SVIA sections, which describe the "
                    "shipped model and draw the docs' pictures")
    ap.add_argument("--conf", type=float, default=None, help="with --tracked: score threshold "
                    "(default: the model's operating point)")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-svia", action="store_true")
    args = ap.parse_args(argv)
    for m in ("trackpy", "trackers", "trackeval", "supervision"):
        _need(m)
    res = args.results
    res.mkdir(parents=True, exist_ok=True)
    if args.tracked is not None:
        if args.um_per_px is None or args.fps is None:
            sys.exit("--tracked needs --um-per-px and --fps (the tracker's gates are physical)")
        clips = tracked_clips(args.tracked, args.um_per_px, args.fps, args.conf, args.weights)
        title, text = section_tracking(clips, res)
        block = (f"Command: `python scripts/bench_analysis.py {' '.join(argv or sys.argv[1:])}`"
                 f"; {machine()}; {datetime.date.today().isoformat()}\n\n### {title} "
                 f"({args.tracked})\n\n{text}")
        print(block)
        write_text(res / "tables-tracked.md", block + "\n")
        return 0
    if args.weights != "default" and not (args.skip_speed and args.skip_svia):
        print(f"--weights {args.weights}: speed and SVIA sections skipped (they describe the "
              "bundled model)", flush=True)
        args.skip_speed = args.skip_svia = True
    args.cache.mkdir(parents=True, exist_ok=True)
    profile = synthetic_profile(args.calib_seed, args.calib_clips, args.calib_frames, args.cache,
                                args.weights)
    print(f"counting threshold for the synthetic microscope: {profile.score_threshold} (the "
          f"model's own: {profile.metrics['at_model_default']})", flush=True)
    if args.calibrate:
        conf = profile.score_threshold
        profile_path = profile.save(res / "synthetic-profile.json")
        how = (f"its counting threshold calibrated for the synthetic microscope on "
               f"{args.calib_clips} clips x {args.calib_frames} frames of seeds "
               f"video_seed({args.calib_seed}, i) as `active calibrate` does")
    else:
        conf = 0.25 if args.conf is None else args.conf
        profile_path = replace(profile, score_threshold=conf).save(res / "threshold.json")
        how = ("a fixed threshold (`--calibrate`: the one `active calibrate` fits on other "
               f"synthetic clips, {profile.score_threshold})")
    predictor: list[Any] = []
    clips = []
    for i in range(args.clips):
        t0 = time.perf_counter()
        clips.append(load_clip(args.seed, i, args.frames, args.cache, predictor, conf,
                               args.weights))
        print(f"clip {i + 1}/{args.clips}: {time.perf_counter() - t0:.1f} s", flush=True)
    sections: list[Section] = []
    for make in (lambda: [section_tracking(clips, res)], lambda: sections_vs_truth(clips, res),
                 lambda: [] if args.skip_speed else [
                     section_speed(clips, args.cache, args.seed, res, profile_path)],
                 lambda: [] if args.skip_svia else [section_svia(res)]):
        for title, text in make():
            print(f"\n### {title}\n\n{text}", flush=True)
            sections.append((title, text))
    detector = ("bundled detector, ONNX Runtime" if args.weights == "default"
                else f"detector {args.weights}")
    cmd = " ".join(["python scripts/bench_analysis.py",
                    *(argv if argv is not None else sys.argv[1:])])
    stamp = (f"Command: `{cmd}`; {machine()}; {datetime.date.today().isoformat()}; synthetic "
             f"clips: default SynthConfig, {args.frames} frames at 30 fps, seeds "
             f"video_seed({args.seed}, i), i < {args.clips}; {detector}, "
             f"score >= {conf}: {how}; the model's own operating point, fitted on real SVIA "
             f"video, counts {profile.metrics['at_model_default']['bias_pct']:+.1f} % on those "
             "synthetic clips.")
    print("\n" + stamp)
    block = stamp + "\n\n" + "\n\n".join(f"### {t}\n\n{x}" for t, x in sections)
    write_text(res / "tables.md", block + "\n")
    if args.doc is not None:
        write_between(args.doc, BEGIN, END, block, heading="## Benchmark")
        print(f"wrote {args.doc}")
    return 0


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv
    import io

    if not rows:
        return
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    write_text(path, buf.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
