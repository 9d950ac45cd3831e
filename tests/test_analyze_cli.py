"""``active analyze`` through the real CLI: the outputs on a small synthetic clip, and a clear
answer (exit 2 naming the flag or file, or a report that says it) for each kind of bad input."""

from __future__ import annotations

import csv
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from active.cli import main
from active.data.video import write_video

OUTPUTS = ("report.html", "summary.json", "tracks.csv", "kinematics.csv")


def _clip(path: Path, frames: int, seed: int = 11, sperm: tuple[float, float] = (8.0, 12.0)
          ) -> Path:
    from active.data.synth import SynthConfig, render_video

    cfg = replace(SynthConfig(), width=320, height=240, frames=frames, sperm_in_view=sperm,
                  impurities_in_view=(1.0, 2.0), dots_in_view=(10.0, 20.0))
    write_video(path, render_video(cfg, seed, "T").frames, fps=cfg.fps)
    return path


@pytest.fixture(scope="module")
def analysed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    root = tmp_path_factory.mktemp("analyze")
    clip = _clip(root / "clip.mp4", frames=45)
    rc = main(["analyze", str(clip), "--um-per-px", "0.35", "--chamber-depth", "20",
               "--sample", "P-001", "--out", str(root / "out"), "--quiet"])
    return root / "out", rc


def _text(report: Path) -> str:
    """The report without its embedded images (base64 may spell anything)."""
    return re.sub(r"data:image/[a-z]+;base64,[A-Za-z0-9+/=]+", "", report.read_text())


def _no_nan(obj: object) -> None:
    if isinstance(obj, float):
        assert math.isfinite(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _no_nan(v)
    elif isinstance(obj, list):
        for v in obj:
            _no_nan(v)


def test_outputs(analysed: tuple[Path, int]) -> None:
    out, rc = analysed
    assert rc == 0
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    assert (out / "videos" / "clip" / "annotated.mp4").is_file()
    assert not list(out.rglob(".*.part*"))  # no temporary file left behind
    summary = json.loads((out / "summary.json").read_text())
    assert summary["schema_version"] == 1 and summary["sample_id"] == "P-001"
    assert summary["calibration"]["um_per_px"] == 0.35
    _no_nan(summary)
    assert "NaN" not in (out / "summary.json").read_text()
    conc = summary["concentration"]
    assert conc["ci95_m_per_ml"][0] <= conc["m_per_ml"] <= conc["ci95_m_per_ml"][1]
    with open(out / "tracks.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and float(rows[0]["x_um"]) == pytest.approx(float(rows[0]["x_px"]) * 0.35,
                                                             abs=0.01)
    with open(out / "kinematics.csv") as fh:
        kin = list(csv.DictReader(fh))
    ids = {(r["video"], r["track_id"]) for r in rows}
    assert {(r["video"], r["track_id"]) for r in kin} == ids
    assert {r["grade"] for r in kin if r["class"] == "sperm"} <= {
        "rapid_progressive", "slow_progressive", "non_progressive", "immotile", "ungraded"}
    html = _text(out / "report.html")
    assert "P-001" in html and not re.search(r"\bnan\b", html, re.I) and "None" not in html


def test_without_scale_no_grades_and_says_why(tmp_path: Path, capsys) -> None:
    clip = _clip(tmp_path / "c.mp4", frames=40)
    assert main(["analyze", str(clip), "--out", str(tmp_path / "o"), "--quiet",
                 "--no-video"]) == 0
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["motility"] is None and s["concentration"] is None
    assert any("--um-per-px" in n for n in s["notes"])
    assert s["videos"][0]["unit"] == "px"


def test_too_short_and_no_sperm_are_stated(tmp_path: Path) -> None:
    short = _clip(tmp_path / "short.mp4", frames=20)
    assert main(["analyze", str(short), "--um-per-px", "0.35", "--chamber-depth", "20",
                 "--out", str(tmp_path / "s"), "--quiet", "--no-video"]) == 0
    s = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert s["motility"] is None
    assert any("shorter than the 1 s" in n for n in s["videos"][0]["notes"])
    blank = tmp_path / "blank.mp4"
    write_video(blank, [np.full((120, 160, 3), 150, np.uint8)] * 35, fps=30)
    assert main(["analyze", str(blank), "--um-per-px", "0.35", "--chamber-depth", "20",
                 "--out", str(tmp_path / "b"), "--quiet", "--no-video"]) == 0
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert any("no sperm detected" in n for n in s["videos"][0]["notes"])
    assert s["concentration"]["m_per_ml"] == 0 and s["concentration"]["ci95_m_per_ml"][1] > 0
    html = _text(tmp_path / "b" / "report.html")
    assert "no sperm detected" in html and not re.search(r"\bnan\b", html, re.I)


@pytest.mark.parametrize("flag,value", [
    ("--um-per-px", "0"), ("--um-per-px", "-0.3"), ("--um-per-px", "25"),
    ("--um-per-px", "nan"), ("--chamber-depth", "0"), ("--chamber-depth", "-20"),
    ("--fps", "0"), ("--dilution", "0"), ("--conf", "5"), ("--threads", "0"),
    ("--vap-window", "4"), ("--um-per-px", "abc"),
])
def test_bad_numbers_name_the_flag(flag: str, value: str, tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(tmp_path / "x.mp4"), flag, value])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err


def test_missing_video_and_no_frame_rate(tmp_path: Path, capsys, monkeypatch) -> None:
    assert main(["analyze", str(tmp_path / "absent.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "absent.mp4" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written

    clip = _clip(tmp_path / "nofps.mp4", frames=5)
    import active.analysis.run as run
    from active.data.video import VideoReader

    class NoRate(VideoReader):
        def __init__(self, path):  # a container that states no frame rate
            super().__init__(path)
            self.info = replace(self.info, fps_known=False)

    monkeypatch.setattr(run, "VideoReader", NoRate)
    assert main(["analyze", str(clip), "--out", str(tmp_path / "n")]) == 2
    err = capsys.readouterr().err
    assert "nofps.mp4" in err and "--fps" in err
    assert not (tmp_path / "n").exists()
    # with --fps the same video is analysed
    assert main(["analyze", str(clip), "--fps", "30", "--out", str(tmp_path / "n"), "--quiet",
                 "--no-video"]) == 0
    s = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert s["videos"][0]["fps_from"] == "--fps"
