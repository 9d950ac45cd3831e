"""The analysis' tables: ``tracks.csv`` (one row per track per frame), ``kinematics.csv`` (one row
per track) and ``summary.json`` (every sample number, with a schema version). Each is written to
a temporary file and renamed. A value that does not exist (µm without a scale, VAP of a track
shorter than the smoothing window) is an empty cell in CSV and ``null`` in JSON, never NaN."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from active.analysis.sample import SampleAnalysis
from active.utils.io import write_json, write_text

TRACK_COLUMNS = ("video", "frame", "time_s", "track_id", "class", "x_px", "y_px", "x_um", "y_um",
                 "box_x0", "box_y0", "box_x1", "box_y1", "score", "detected")


def _cell(v: object, digits: int = 3) -> object:
    if v is None:
        return ""
    if isinstance(v, float):
        return round(v, digits)
    return v


def tracks_csv(sample: SampleAnalysis) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(TRACK_COLUMNS)
    um = sample.calibration.um_per_px
    for v in sample.videos:
        name = Path(v.source).name
        for r in v.tracks:
            t = r.track
            for k in range(len(t)):
                x, y = (float(c) for c in t.xy_px[k])
                b = t.boxes[k]
                w.writerow([name, int(t.frames[k]), round(float(t.frames[k]) / v.fps, 4), t.id,
                            r.class_name, round(x, 2), round(y, 2),
                            "" if um is None else round(x * um, 3),
                            "" if um is None else round(y * um, 3),
                            *(round(float(c), 2) for c in b), round(float(t.scores[k]), 4),
                            int(t.detected[k])])
    return buf.getvalue()


def kinematics_csv(sample: SampleAnalysis) -> str:
    unit = "um" if sample.calibration.um_per_px is not None else "px"
    kin_cols = [f"vcl_{unit}_per_s", f"vsl_{unit}_per_s", f"vap_{unit}_per_s", "lin", "str",
                "wob", f"alh_mean_{unit}", f"alh_max_{unit}", "bcf_hz", "mad_deg",
                f"net_1s_{unit}_per_s"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["video", "track_id", "class", "first_frame", "last_frame", "frames",
                "detected_frames", "duration_s", "grade", *kin_cols])
    for v in sample.videos:
        name = Path(v.source).name
        for r in v.tracks:
            t = r.track
            row = r.kinematics.to_row() if r.kinematics is not None else {}
            grade = r.grade if r.grade is not None else (
                "" if r.class_name != "sperm" or unit == "px" else "ungraded")
            w.writerow([name, t.id, r.class_name, int(t.frames[0]), int(t.frames[-1]), len(t),
                        int(t.detected.sum()), round((len(t) - 1) / v.fps, 4), grade,
                        *(_cell(row.get(c)) for c in kin_cols)])
    return buf.getvalue()


def write_tables(sample: SampleAnalysis, out: Path) -> dict[str, str]:
    """Write the three tables into ``out``; returns their paths by name."""
    paths = {"tracks": out / "tracks.csv", "kinematics": out / "kinematics.csv",
             "summary": out / "summary.json"}
    write_text(paths["tracks"], tracks_csv(sample))
    write_text(paths["kinematics"], kinematics_csv(sample))
    write_json(paths["summary"], sample.to_json())
    return {k: str(p) for k, p in paths.items()}
