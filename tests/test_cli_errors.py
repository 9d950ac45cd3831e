"""Every mistake in docs/errors.md through the real command line: a clear message naming the file
or flag and exit code 2 (or, where asked for, a warning and exit 0), never a traceback, never a
silently wrong result, and no run that mixes its outputs with another's."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from active.cli import main
from active.data.convert import write_dataset
from active.errors import ActiveError
from active.utils.outdir import MARKER
from conftest import make_records

REPO = Path(__file__).resolve().parents[1]


class _Evil:
    """A pickled object that would run code when loaded without ``weights_only``."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The bad (and a few good) inputs of the table, made once."""
    d = tmp_path_factory.mktemp("bad")
    img = np.full((64, 96, 3), 180, np.uint8)
    cv2.circle(img, (40, 30), 4, (60, 60, 60), -1)
    cv2.imwrite(str(d / "frame.png"), img)
    shutil.copy(d / "frame.png", d / "renamed.mp4")  # a PNG with a video's suffix
    (d / "empty.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(2), "extra": _Evil()}, d / "unsafe.pt")
    writer = cv2.VideoWriter(str(d / "tiny.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1, 1))
    for _ in range(3):
        writer.write(np.zeros((1, 1, 3), np.uint8))
    writer.release()
    (d / "a-file").write_text("not a folder\n")
    write_dataset(make_records(n_videos=1, n_frames=3), d / "one-video", "svia")
    write_dataset(make_records(), d / "data", "svia")
    for name, corner in (("nan-corner", {"xmin": "nan"}), ("inverted", {"xmin": 60,
                                                                          "xmax": 50})):
        root = d / name
        write_dataset(make_records(), root, "svia")
        xml = next(p for p in sorted((root / "Subset-A").glob("*.xml"))
                   if "<object>" in p.read_text())
        text = xml.read_text()
        for tag, value in corner.items():
            text = re.sub(f"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", text, count=1)
        xml.write_text(text)
        (d / f"{name}.bad").write_text(str(xml))  # which file the error must name
    return {p.name: p for p in d.iterdir()} | {"dir": d}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``active argv`` in-process: the exit code (argparse's SystemExit included) and stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# (case, argv with {name} for the files above and {tmp} for a fresh folder, exit code, what
# stderr must say); the same table is docs/errors.md's
CASES = [
    ("0-byte checkpoint", ["detect", "{frame.png}", "--weights", "{empty.pt}", "--out",
                           "{tmp}/o"], 2, r"empty\.pt: checkpoint file is empty \(0 bytes\)"),
    ("PNG renamed .mp4", ["detect", "{renamed.mp4}", "--out", "{tmp}/o"], 2,
     r"renamed\.mp4: is a PNG image, not a video"),
    ("--conf 5", ["detect", "{frame.png}", "--conf", "5"], 2,
     r"argument --conf: must be a threshold between 0 and 1, got 5"),
    ("--conf -1", ["detect", "{frame.png}", "--conf", "-1"], 2, r"argument --conf: .* got -1"),
    ("--conf nan", ["detect", "{frame.png}", "--conf", "nan"], 2,
     r"argument --conf: 'nan' is not a finite number"),
    ("--iou 2", ["detect", "{frame.png}", "--iou", "2"], 2, r"argument --iou: .* got 2"),
    ("--max-det 0", ["detect", "{frame.png}", "--max-det", "0"], 2,
     r"argument --max-det: must be at least 1, got 0"),
    ("--batch 0", ["detect", "{frame.png}", "--batch", "0"], 2, r"argument --batch: .*got 0"),
    ("--threads 0", ["detect", "{frame.png}", "--threads", "0"], 2,
     r"argument --threads: .*got 0"),
    ("--imgsz -32", ["detect", "{frame.png}", "--imgsz", "-32"], 2, r"argument --imgsz"),
    ("--imgsz 100000", ["detect", "{frame.png}", "--imgsz", "100000"], 2,
     r"argument --imgsz: must be a multiple of 32 from 32 to 4096 px, got 100000"),
    ("--imgsz 32 32 32", ["detect", "{frame.png}", "--imgsz", "32", "32", "32", "--out",
                          "{tmp}/o"], 2, r"--imgsz 32 32 32: give one value"),
    ("--device gpu", ["detect", "{frame.png}", "--device", "gpu"], 2,
     r"argument --device: 'gpu' is not a device"),
    ("analyze --threads 0", ["analyze", "{tiny.avi}", "--threads", "0"], 2,
     r"argument --threads"),
    ("eval --conf 5", ["eval", "--weights", "{empty.pt}", "--data", "{data}", "--conf", "5"], 2,
     r"argument --conf: .* got 5"),
    ("eval --iou 1.5", ["eval", "--weights", "{empty.pt}", "--data", "{data}", "--iou", "1.5"],
     2, r"argument --iou"),
    ("train --threads 0", ["train", "--threads", "0"], 2, r"argument --threads"),
    ("train --epochs -1", ["train", "--epochs", "-1"], 2, r"argument --epochs"),
    ("train --epochs 0", ["train", "--epochs", "0"], 2, r"--epochs 0: every stage would train"),
    ("cv --folds 2", ["cv", "--folds", "2"], 2, r"argument --folds: must be at least 3"),
    ("rescorer --min-score 2", ["rescorer", "--weights", "w.pt", "--data", "d", "--split",
                                "s.json", "--out", "r.pt", "--min-score", "2"], 2,
     r"argument --min-score"),
    ("synth --frames 0", ["synth", "--frames", "0"], 2, r"argument --frames"),
    ("calibrate --threads 0", ["calibrate", "{data}", "--out", "{tmp}/p.json", "--threads",
                               "0"], 2, r"argument --threads"),
    ("model info --runs -1", ["model", "info", "active-i", "--runs", "-1"], 2,
     r"argument --runs"),
    ("export --opset 0", ["export", "default", "--opset", "0"], 2, r"argument --opset"),
    ("data show --count 0", ["data", "show", "{data}", "--out", "{tmp}/s", "--count", "0"], 2,
     r"argument --count"),
    ("demo --frames 0", ["demo", "--frames", "0"], 2, r"argument --frames: must be at least 1"),
    ("--out is a file", ["detect", "{frame.png}", "--out", "{a-file}"], 2,
     r"--out .*a-file: is a file, not a folder"),
    ("data split --folds 5, one video", ["data", "split", "{one-video}", "--folds", "5", "--out",
                                         "{tmp}/s.json"], 2,
     r"--folds 5: .*one-video holds 1 video\(s\)"),
    ("file output is a folder", ["data", "split", "{data}", "--out", "{dir}"], 2,
     r"bad\d*: is a folder; a file name is needed here"),
    ("file output under a file", ["data", "split", "{data}", "--out", "{a-file}/s.json"], 2,
     r"a-file: is a file, not a folder"),
    ("data split --folds 1", ["data", "split", "{data}", "--folds", "1", "--out",
                              "{tmp}/s.json"], 2, r"argument --folds: k folds need k >= 2"),
    ("1x1 video", ["detect", "{tiny.avi}", "--out", "{tmp}/o"], 2,
     r"tiny\.avi: frames are 1x1 px: too small"),
    ("NaN corner, convert", ["data", "convert", "{nan-corner}", "--to", "yolo", "--out",
                             "{tmp}/c"], 2,
     r"V_\d+_\d+\.xml: object 1 \(\w+\): box \[nan, .*not a finite number.*--skip-bad-frames"),
    ("NaN corner, stats", ["data", "stats", "{nan-corner}"], 2, r"not a finite number"),
    ("inverted box", ["data", "convert", "{inverted}", "--to", "coco", "--out", "{tmp}/c"], 2,
     r"object 1 .*is inverted \(x2 < x1\)"),
    ("--strict with --skip-bad-frames", ["data", "stats", "{data}", "--strict",
                                         "--skip-bad-frames"], 2, r"not allowed with"),
    ("convert X --out X", ["data", "convert", "{data}", "--to", "yolo", "--out", "{data}"], 2,
     r"--out .*data: is inside the input"),
    ("convert X --out X/sub", ["data", "convert", "{data}", "--to", "coco", "--out",
                               "{data}/sub"], 2, r"is inside the input"),
    ("unsafe checkpoint", ["detect", "{frame.png}", "--weights", "{unsafe.pt}", "--out",
                           "{tmp}/o"], 2, r"unsafe\.pt: refused: it holds pickled Python"),
    ("eval of an unsafe checkpoint", ["eval", "--weights", "{unsafe.pt}", "--data", "{data}",
                                      "--device", "cpu"], 2, r"unsafe\.pt: refused"),
]


def _argv(template: list[str], files: dict[str, Path], tmp: Path) -> list[str]:
    return [re.sub(r"\{([^}]+)\}", lambda m: str(tmp if m[1] == "tmp" else files[m[1]]), a)
            for a in template]


@pytest.mark.parametrize(("argv", "code", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_mistake_gets_a_clear_error(argv, code, message, files, tmp_path, capsys) -> None:
    got, err = _run(_argv(argv, files, tmp_path), capsys)
    assert got == code, err
    assert re.search(message, err), err
    assert "weights_only" not in err and "Weights only load failed" not in err
    bad = [p for p in files.values() if p.suffix == ".bad"]
    for marker in bad:  # an annotation error names the very file
        if marker.stem in " ".join(argv):
            assert Path(marker.read_text()).name in err
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()  # nothing written


def test_no_cuda_is_named(files, tmp_path, capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, err = _run(["detect", str(files["frame.png"]), "--device", "cuda", "--out",
                      str(tmp_path / "o")], capsys)
    assert code == 2 and "--device cuda: no CUDA here" in err
    code, err = _run(["eval", "--weights", str(files["unsafe.pt"]), "--data",
                      str(files["data"]), "--device", "cuda:1"], capsys)
    assert code == 2 and "--device cuda:1: no CUDA here" in err


def test_unsafe_checkpoint_never_runs_or_advises_unsafe_loading(files, tmp_path, capsys):
    code, err = _run(["detect", str(files["frame.png"]), "--weights", str(files["unsafe.pt"]),
                      "--backend", "torch", "--out", str(tmp_path / "o")], capsys)
    captured = capsys.readouterr()
    assert code == 2 and "this must never run" not in captured.out + err
    assert "weights_only" not in err and "trust the source" not in err
    assert "ACTIVE never does" in err and "altered" in err


def test_skip_bad_frames_drops_the_whole_frame_with_a_warning(files, tmp_path, capsys) -> None:
    n = len(list((files["nan-corner"] / "Subset-A").glob("*.xml")))
    code, err = _run(["data", "convert", str(files["nan-corner"]), "--to", "yolo", "--out",
                      str(tmp_path / "c"), "--skip-bad-frames"], capsys)
    assert code == 0
    assert "active: warning:" in err and "1 x drop a frame with an unusable box" in err
    labels = list((tmp_path / "c" / "labels").rglob("*.txt"))
    assert len(labels) == n - 1  # the frame is gone, not kept with fewer boxes
    bad = Path(files["nan-corner.bad"].read_text()).stem
    assert all(p.stem != bad for p in labels)


def test_read_only_out_is_named(files, tmp_path, capsys, monkeypatch) -> None:
    from active.utils import outdir

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(outdir.Path, "mkdir", refuse)
    code, err = _run(["detect", str(files["frame.png"]), "--out", str(tmp_path / "ro" / "o")],
                     capsys)
    assert code == 2 and re.search(r"--out .*ro/o: cannot write here \(Permission denied\)", err)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_read_only_out_for_real(files, tmp_path, capsys) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        code, err = _run(["detect", str(files["frame.png"]), "--out", str(ro / "o")], capsys)
    finally:
        ro.chmod(0o755)
    assert code == 2 and "cannot write here" in err


def test_os_errors_with_a_file_exit_2_naming_it(monkeypatch, capsys, tmp_path) -> None:
    """A PermissionError (or a file where a folder should be ...) raised anywhere below."""
    import active.commands.data as data_cmd

    for exc in (PermissionError(13, "Permission denied", "/x/report.json"),
                IsADirectoryError(21, "Is a directory", "/x/out"),
                NotADirectoryError(20, "Not a directory", "/x/f/g"),
                FileNotFoundError(2, "No such file or directory", "/x/missing.yaml")):
        def fail(args, exc=exc):
            raise exc

        monkeypatch.setattr(data_cmd, "cmd_data_stats", fail)
        code, err = _run(["data", "stats", str(tmp_path)], capsys)
        assert code == 2 and err == f"active: error: {exc.filename}: {exc.strerror}\n"


def test_the_error_handler_cannot_crash(monkeypatch, capsys, tmp_path) -> None:
    import active.commands.data as data_cmd

    class Broken(ActiveError):
        def __str__(self) -> str:
            raise RuntimeError("a message that cannot be made")

    def fail(args):
        raise Broken()

    monkeypatch.setattr(data_cmd, "cmd_data_stats", fail)
    code, err = _run(["data", "stats", str(tmp_path)], capsys)
    assert code == 2 and err == "active: error: Broken\n"
    def silent(args):
        raise ActiveError("")

    monkeypatch.setattr(data_cmd, "cmd_data_stats", silent)
    code, err = _run(["data", "stats", str(tmp_path)], capsys)
    assert code == 2 and err == "active: error: ActiveError\n"


def test_default_folder_is_numbered_and_never_reused(files, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for _ in range(3):
        assert _run(["detect", str(files["frame.png"]), "--quiet"], capsys)[0] == 0
    runs = sorted(p.name for p in (tmp_path / "runs" / "detect").iterdir())
    assert runs == ["frame", "frame-2", "frame-3"]
    assert all((tmp_path / "runs" / "detect" / r / "counts.csv").is_file() for r in runs)
    # --overwrite: the default folder itself, emptied, no new number
    (tmp_path / "runs" / "detect" / "frame" / "old.txt").write_text("stale")
    assert _run(["detect", str(files["frame.png"]), "--quiet", "--overwrite"], capsys)[0] == 0
    assert not (tmp_path / "runs" / "detect" / "frame" / "old.txt").exists()
    assert len(list((tmp_path / "runs" / "detect").iterdir())) == 3


def test_rerun_into_a_used_folder_is_refused_or_replaces_it(files, tmp_path, capsys) -> None:
    out = tmp_path / "o"
    args = ["detect", str(files["frame.png"]), "--out", str(out), "--quiet"]
    assert _run([*args, "--save-crops", "--conf", "0.001"], capsys)[0] == 0
    assert (out / "crops").is_dir() and (out / MARKER).is_file()
    code, err = _run(args, capsys)
    assert code == 2 and "the folder is not empty" in err and "--overwrite" in err
    assert _run([*args, "--overwrite"], capsys)[0] == 0
    assert not (out / "crops").exists() and (out / "counts.csv").is_file()  # nothing stale
    # a folder no ACTIVE run wrote is never emptied
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.docx").write_text("precious")
    code, err = _run(["detect", str(files["frame.png"]), "--out", str(mine), "--overwrite"],
                     capsys)
    assert code == 2 and "no ACTIVE run wrote" in err and (mine / "thesis.docx").is_file()
    # nor one that holds the input
    code, err = _run(["detect", str(out / "counts.csv"), "--out", str(out), "--overwrite"],
                     capsys)
    assert code == 2 and "would delete the input" in err


def test_a_failed_run_leaves_no_empty_folder(files, tmp_path, capsys) -> None:
    code, _ = _run(["detect", str(files["renamed.mp4"]), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and not (tmp_path / "o").exists()


def test_eval_report_has_no_nan(files, tmp_path, capsys) -> None:
    from active.models.build import build_model
    from active.models.checkpoint import save_checkpoint
    from active.models.variants import ModelConfig

    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, build_model(ModelConfig(variant="active-i", scale="tiny",
                                                  imgsz=(64, 96))).eval())
    code, err = _run(["eval", "--weights", str(ckpt), "--data", str(files["data"]), "--conf",
                      "1", "--device", "cpu", "--out", str(tmp_path / "ev")], capsys)
    assert code == 0, err
    text = (tmp_path / "ev" / "report.json").read_text()
    assert not re.search(r"\bnan\b", text, re.I)
    assert json.loads(text)["operating_point"]["per_class"]["sperm"]["precision"] is None


@pytest.mark.parametrize("argv", [
    ["detect", "{frame.png}", "--conf", "5"],
    ["detect", "{renamed.mp4}", "--out", "{tmp}/o"],
])
def test_subprocess_exit_2_without_traceback(argv, files, tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "active", *_argv(argv, files, tmp_path)],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr
