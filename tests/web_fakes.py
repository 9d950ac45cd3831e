"""Stand-ins for the analysis that the web page's worker processes run (tests/test_web_api.py):
quick, and told what to do by the sample id. Importable by a spawned worker process (pytest puts
this folder on sys.path, and spawn passes sys.path on)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from active.utils.io import write_json, write_text

SUMMARY: dict[str, Any] = {
    "schema_version": 1, "sample_id": "", "calibration": {},
    "concentration": {"m_per_ml": 42.5, "ci95_m_per_ml": [30.1, 58.3], "cells_counted": 210.0},
    "motility": {"graded_tracks": 50, "ungraded_tracks": 7, "progressive_pct": 44.0,
                 "total_motility_pct": 52.0,
                 "counts": {"rapid_progressive": 12, "slow_progressive": 10,
                            "non_progressive": 4, "immotile": 24},
                 "percent": {"rapid_progressive": 24.0, "slow_progressive": 20.0,
                             "non_progressive": 8.0, "immotile": 48.0}},
    "notes": [], "videos": [],
}


def fake_job(folder: str, spec: dict[str, Any]) -> None:
    """``slow...``: report progress, then wait to be stopped; ``fail...``: fail with a reason;
    anything else: a finished result whose annotated video is the uploaded one."""
    from active.web.worker import _exit_with_parent

    _exit_with_parent()  # as the real worker: never outlive the server
    job = Path(folder)
    sid = spec["sample_id"]
    total = sum(spec["frames"])
    (job / "worker.pid").write_text(str(os.getpid()))
    write_json(job / "progress.json", {"stage": "detecting", "frames_done": total // 2,
                                       "frames_total": total, "frames_per_s": 12.5,
                                       "eta_s": 3.0})
    if sid.startswith("slow"):
        time.sleep(600)
        return
    if sid.startswith("fail"):
        write_json(job / "outcome.json", {"status": "failed",
                                          "error": "video-1.mp4: cannot decode frame 3"})
        return
    if sid.startswith("crash"):
        raise SystemExit(3)
    finish_job(folder, spec)


def finish_job(folder: str, spec: dict[str, Any]) -> None:
    """A finished result whatever the sample id (a restarted server's stand-in)."""
    job = Path(folder)
    sid = spec["sample_id"]
    out = job / "result"
    summary = json.loads(json.dumps(SUMMARY))
    summary["sample_id"] = sid
    summary["calibration"] = spec["calibration"]
    for name, frames in zip(spec["videos"], spec["frames"], strict=True):
        stem = Path(name).stem
        summary["videos"].append({"source": name, "frames": frames, "fps": 25.0,
                                  "fps_from": "container", "duration_s": frames / 25.0,
                                  "width": 64, "height": 48, "sperm_per_frame": {"mean": 3.2}})
        (out / "videos" / stem).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(job / "inputs" / name, out / "videos" / stem / "annotated.mp4")
        write_text(out / "videos" / stem / "counts.csv", "frame,sperm\n0,3\n")
    write_json(out / "summary.json", summary)
    write_text(out / "tracks.csv", "video,frame,track_id\nvideo-1.mp4,0,1\n")
    write_text(out / "kinematics.csv", "video,track_id,grade\nvideo-1.mp4,1,immotile\n")
    write_text(out / "report.html", f"<html><body><h1>Report {sid}</h1></body></html>")
    write_json(job / "outcome.json", {"status": "done"})


def serve(data: str, port: int) -> None:
    """``active serve`` with :func:`fake_job` as its analysis, until killed (a server that
    crashes: tests/test_web_api.py kills it)."""
    import uvicorn

    from active.web.app import ServeOptions, create_app

    uvicorn.run(create_app(ServeOptions(data=Path(data), port=port), target=fake_job),
                host="127.0.0.1", port=port, log_level="warning")
