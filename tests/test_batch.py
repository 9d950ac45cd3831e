"""Batch mode of ``active analyze`` (docs/batch.md) on a local Dask cluster: a corrupt video is
recorded as failed while the others finish, a worker killed mid-batch loses nothing, a whole run
killed half-way resumes to the catalogue a sequential run writes, replicate videos of a manifest
sample combine as ``analyze()`` combines them, and a bad manifest row is named (exit 2)."""

from __future__ import annotations

import csv
import functools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from active.analysis import AnalyzeOptions, Calibration, analyze
from active.batch import BatchOptions, expand, run_batch
from active.batch.worker import Outcome, Task, analyze_task
from active.cli import main
from active.data.video import write_video

CAL = ["--um-per-px", "0.7", "--chamber-depth", "20"]
GOOD = ("a1", "a2", "b1", "c1", "d1")
TIMEOUT_S = 120  # a hung cluster fails the test instead of stalling the suite


def _clip(path: Path, seed: int) -> Path:
    """A tiny synthetic clip: 36 frames (just over 1 s, so tracks are graded), 160x128 px."""
    from active.data.synth import SynthConfig, render_video

    cfg = replace(SynthConfig(), width=160, height=128, frames=36, sperm_in_view=(4.0, 6.0),
                  impurities_in_view=(1.0, 1.0), dots_in_view=(3.0, 5.0))
    write_video(path, render_video(cfg, seed, "T").frames, fps=cfg.fps)
    return path


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five good clips and one corrupt one (bytes that are no video)."""
    root = tmp_path_factory.mktemp("archive")
    for seed, name in enumerate(GOOD):
        _clip(root / f"{name}.mp4", seed)
    (root / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 64)
    return root


def _catalogue(path: Path) -> dict[str, list[tuple]]:
    """The catalogue's content that must not depend on how the run went (no timings, workers
    or attempt counts)."""
    db = sqlite3.connect(path)
    try:
        videos = db.execute("SELECT key, path, status, error, frames, result, parts FROM videos "
                            "ORDER BY key").fetchall()
        cols = [r[1] for r in db.execute("PRAGMA table_info(samples)") if r[1] != "updated_at"]
        samples = db.execute(f"SELECT {', '.join(cols)} FROM samples ORDER BY sample_id"
                             ).fetchall()
        members = db.execute("SELECT * FROM members ORDER BY sample_id, path").fetchall()
    finally:
        db.close()
    return {"videos": [tuple(Path(v).name if i == 1 else v for i, v in enumerate(r))
                       for r in videos], "samples": samples, "members": members}


@pytest.fixture(scope="module")
def sequential(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the archive analysed on one worker, in one run."""
    out = tmp_path_factory.mktemp("sequential") / "out"
    assert main(["analyze", str(archive), *CAL, "--workers", "1", "--threads", "1", "--out",
                 str(out), "--quiet", "--no-video"]) == 0
    return out


def _dies_once(marker: Path, task: Task) -> Outcome:
    """Kill this worker's process the first time it is given clip b1 (as an out-of-memory kill
    or a crash would), then analyse normally."""
    if Path(task.path).stem == "b1" and not marker.exists():
        marker.write_text("killed")
        os._exit(1)
    return analyze_task(task)


def test_corrupt_video_and_killed_worker(archive: Path, sequential: Path, tmp_path: Path) -> None:
    jobs = expand([str(archive)], Calibration(um_per_px=0.7, chamber_depth_um=20))
    marker = tmp_path / "killed"
    report = run_batch(jobs, tmp_path / "out", AnalyzeOptions(threads=1),
                       BatchOptions(workers=2, progress=False),
                       task=functools.partial(_dies_once, marker))
    assert marker.exists()  # a worker did die mid-batch
    assert (report.done, report.failed, report.videos) == (5, 1, 6)
    got = _catalogue(tmp_path / "out" / "catalogue.sqlite")
    assert got == _catalogue(sequential / "catalogue.sqlite")  # nothing lost or doubled
    status = {Path(r[1]).stem: (r[2], r[3]) for r in got["videos"]}
    assert status["broken"][0] == "failed" and "broken.mp4" in status["broken"][1]
    assert all(status[n] == ("done", None) for n in GOOD)
    with open(tmp_path / "out" / "cohort.csv") as fh:
        rows = {r["sample_id"]: r for r in csv.DictReader(fh)}
    assert rows["broken"]["status"] == "failed" and rows["a1"]["status"] == "done"
    assert float(rows["a1"]["concentration_m_per_ml"]) > 0
    html = (tmp_path / "out" / "cohort.html").read_text()
    text = re.sub(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=]+", "", html)  # embedded plots: any letters
    assert "broken.mp4" in html and not re.search(r"\bnan\b", text, re.IGNORECASE)
    for video in GOOD:  # each video's own tables, written by the client
        assert (tmp_path / "out" / "videos" / video / video / "tracks.csv").is_file()


def _done(db: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        try:
            return con.execute("SELECT count(*) FROM videos WHERE status='done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # not created yet
        return 0


def test_killed_run_resumes(archive: Path, sequential: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "active", "analyze", str(archive), *CAL, "--workers", "1",
           "--threads", "1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while _done(out / "catalogue.sqlite") < 2 and proc.poll() is None:
            assert time.monotonic() < deadline, "the batch made no progress"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the client and its cluster, mid-batch
        proc.wait()
    killed_at = _done(out / "catalogue.sqlite")
    assert 2 <= killed_at < len(GOOD), "the run finished before it could be killed"
    assert main(["analyze", str(archive), *CAL, "--workers", "2", "--threads", "1", "--out",
                 str(out), "--quiet"]) == 0
    assert _catalogue(out / "catalogue.sqlite") == _catalogue(sequential / "catalogue.sqlite")
    db = sqlite3.connect(out / "catalogue.sqlite")
    attempts = dict(db.execute("SELECT path, attempts FROM videos"))
    db.close()
    assert sum(a == 1 for a in attempts.values()) >= killed_at  # done videos were not redone
    # a third run finds everything done and analyses nothing
    assert main(["analyze", str(archive), *CAL, "--workers", "1", "--out", str(out),
                 "--quiet"]) == 0
    assert _catalogue(out / "catalogue.sqlite") == _catalogue(sequential / "catalogue.sqlite")


def test_manifest_sample_combines_like_analyze(archive: Path, tmp_path: Path) -> None:
    """A manifest's two fields of P1 give the numbers analyze() gives them, on an existing
    cluster (--scheduler)."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,sample_id,um_per_px,chamber_depth_um,dilution\n"
                        f"{archive / 'a1.mp4'},P1,0.7,20,2\n"
                        f"{archive / 'a2.mp4'},P1,,20,2\n"  # blank: --um-per-px's value
                        f"{archive / 'c1.mp4'},P2,0.7,20,1\n")
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster:
        assert main(["analyze", str(manifest), "--um-per-px", "0.7", "--scheduler",
                     cluster.scheduler_address, "--threads", "1", "--out", str(tmp_path / "out"),
                     "--quiet"]) == 0
    with open(tmp_path / "out" / "cohort.csv") as fh:
        rows = {r["sample_id"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"P1", "P2"} and rows["P1"]["videos"] == "2"
    one = analyze([archive / "a1.mp4", archive / "a2.mp4"],
                  Calibration(um_per_px=0.7, chamber_depth_um=20, dilution=2),
                  options=AnalyzeOptions(threads=1, annotated=False, report=False))
    assert float(rows["P1"]["concentration_m_per_ml"]) == pytest.approx(
        one.concentration.m_per_ml, abs=1e-3)
    if one.motility is not None:
        assert int(rows["P1"]["graded_tracks"]) == one.motility.graded
    cells = [v.lower() for r in rows.values() for v in r.values()]
    assert not {"nan", "inf", "-inf", "none"} & set(cells)  # a missing value is an empty cell


@pytest.mark.parametrize("row,says", [
    ("a1.mp4,P1,abc,20,1", "line 3: um_per_px: 'abc' is not a number"),
    ("a1.mp4,P1,0.35,-5,1", "line 3: chamber_depth_um must be positive"),
    ("missing.mp4,P1,0.35,20,1", "line 3: video"),
    ("a1.mp4,P1,0.35,20", "line 3: 4 cells, the header has 5"),
    ("a1.mp4,P1,0.5,20,1", "different µm/px"),
    ("a2.mp4,P1,0.5,20,1", "different µm/px"),  # the same file twice, two calibrations
])
def test_manifest_bad_row(archive: Path, tmp_path: Path, capsys, row: str, says: str) -> None:
    manifest = archive / f"bad-{abs(hash(row))}.csv"
    manifest.write_text("path,sample_id,um_per_px,chamber_depth_um,dilution\n"
                        f"a2.mp4,P1,0.35,20,1\n{row}\n")
    try:
        assert main(["analyze", str(manifest), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    finally:
        manifest.unlink()
    err = capsys.readouterr().err
    assert says in err and manifest.name in err, err
    assert not (tmp_path / "o").exists()  # nothing written


def test_single_sample_mode_is_unchanged(archive: Path, tmp_path: Path) -> None:
    """Two plain videos are one sample's fields, as before: no catalogue."""
    out = tmp_path / "o"
    assert main(["analyze", str(archive / "a1.mp4"), str(archive / "a2.mp4"), *CAL, "--out",
                 str(out), "--quiet", "--no-video"]) == 0
    assert (out / "summary.json").is_file() and not (out / "catalogue.sqlite").exists()
    assert len(json.loads((out / "summary.json").read_text())["videos"]) == 2


def test_one_catalogue_one_run(tmp_path: Path) -> None:
    from active.batch.catalogue import Catalogue
    from active.errors import UsageError

    with Catalogue(tmp_path / "c.sqlite"), pytest.raises(UsageError, match="another"):
        Catalogue(tmp_path / "c.sqlite")
    Catalogue(tmp_path / "c.sqlite").close()  # free again once the first is closed
