"""The lab's web page (``active serve``, docs/web.md) through FastAPI's test client: uploads good
and bad (a bad one is named on the page and stores nothing), progress JSON, the report's
downloads and its video with byte ranges, search and delete, the access token, cross-site and
path-traversal attempts, a restart that resumes or fails what was running, the catalogue's
schema migration and the command's flags. The analysis is replaced by quick stand-ins
(tests/web_fakes.py) that run in real worker processes; tests/test_web_browser.py runs the real
one in a browser."""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from active.cli import main
from active.data.video import write_video
from active.web.app import ServeOptions, create_app, serve
from active.web.auth import COOKIE
from web_fakes import fake_job, finish_job

BASE = "http://127.0.0.1:8000"
HTML = {"accept": "text/html"}
CAL = {"um_per_px": "0.7", "chamber_depth_um": "20", "dilution": "1"}
TOKEN = "lab-token-1234"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real video (8 frames of noise, 64 x 48 px)."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("clip") / "field.mp4"
    write_video(path, [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(8)], fps=25)
    return path


def _client(data: Path, target=fake_job, **kw) -> TestClient:
    return TestClient(create_app(ServeOptions(data=data, **kw), target=target), base_url=BASE)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path / "lab", max_upload_mb=0.2, workers=2) as c:
        yield c


def _upload(c: TestClient, sample: str, files: list[tuple[str, bytes]], **fields: str):
    return c.post("/analyses", data={"sample_id": sample, **CAL, **fields},
                  files=[("videos", (name, body, "video/mp4")) for name, body in files],
                  headers=HTML, follow_redirects=False)


def _wait(c: TestClient, url: str, until: tuple[str, ...], timeout_s: float = 60) -> dict:
    end = time.monotonic() + timeout_s
    while True:
        p = c.get(f"{url}/progress.json").json()
        if p["status"] in until or time.monotonic() > end:
            return p
        time.sleep(0.1)


def _message(html: str) -> str:
    found = re.search(r'id="(?:form|search|job|login)-error">(.*?)</div>', html, re.S)
    text = re.sub(r"<[^>]+>", "", found.group(1)) if found else ""
    return re.sub(r"\s+", " ", text).replace("&#39;", "'").strip()


def _nothing_stored(data: Path) -> None:
    db = sqlite3.connect(data / "catalogue.sqlite")
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    db.close()
    assert list((data / "jobs").iterdir()) == [] and list((data / "tmp").iterdir()) == []


def test_upload_progress_report_downloads_search_delete(lab: TestClient, clip: Path,
                                                        tmp_path: Path) -> None:
    body = clip.read_bytes()
    r = _upload(lab, "slow-1", [("field a.mp4", body)])
    assert r.status_code == 303
    slow = r.headers["location"]
    p = _wait(lab, slow, ("running",))
    for _ in range(50):  # the worker's first progress.json
        p = lab.get(f"{slow}/progress.json").json()
        if p["frames_done"]:
            break
        time.sleep(0.1)
    assert (p["status"], p["frames_done"], p["frames_total"], p["percent"]) == \
        ("running", 4, 8, 50.0)
    assert (p["frames_per_s"], p["eta_s"], p["sample_id"]) == (12.5, 3.0, "slow-1")
    page = lab.get(slow, headers=HTML).text
    assert 'id="progress"' in page and "Frames analysed" in page

    r = _upload(lab, "P-0231", [("../../evil name.mp4", body), ("b.mp4", body)])
    done = r.headers["location"]
    assert _wait(lab, done, ("done", "failed"))["status"] == "done"
    job_id = done.rsplit("/", 1)[1]
    folder = tmp_path / "lab" / "jobs" / job_id
    assert sorted(p.name for p in (folder / "inputs").iterdir()) == ["video-1.mp4",
                                                                      "video-2.mp4"]
    assert not list(tmp_path.rglob("evil*"))  # the client's name is text, never a path
    page = lab.get(done, headers=HTML).text
    for text in ("42.5 million/mL", "44.0 %", "52.0 %", "Cells counted", "evil name.mp4",
                 'src="/samples/' + job_id + '/videos/1/annotated.mp4"', "16 million/mL"):
        assert text in page, text
    r = lab.get(f"{done}/files/summary.json")
    assert r.status_code == 200 and r.json()["sample_id"] == "P-0231"
    assert r.headers["content-disposition"] == 'attachment; filename="P-0231-summary.json"'
    assert lab.get(f"{done}/files/tracks.csv").text.startswith("video,frame")
    r = lab.get(f"{done}/report")
    assert "Report P-0231" in r.text and "default-src 'none'" in r.headers[
        "content-security-policy"]
    r = lab.get(f"{done}/videos/2/annotated.mp4", headers={"range": "bytes=10-19"})
    assert r.status_code == 206 and r.content == body[10:20]
    assert r.headers["content-range"] == f"bytes 10-19/{len(body)}"
    assert r.headers["content-type"] == "video/mp4"

    listing = lab.get("/samples", headers=HTML).text
    assert "P-0231" in listing and "slow-1" in listing and "42.5" in listing
    assert "slow-1" not in lab.get("/samples?q=p-02", headers=HTML).text
    assert "P-0231" not in lab.get("/samples?status=running", headers=HTML).text
    today = time.strftime("%Y-%m-%d")
    assert "P-0231" in lab.get(f"/samples?start={today}&end={today}", headers=HTML).text
    assert "P-0231" not in lab.get("/samples?start=2001-01-01&end=2001-01-02",
                                   headers=HTML).text
    r = lab.get("/samples?start=yesterday", headers=HTML)
    assert r.status_code == 400 and _message(r.text) == \
        "From: 'yesterday' is not a date (YYYY-MM-DD)"

    r = lab.post(f"{slow}/delete", headers=HTML, follow_redirects=False)  # stops its process
    assert r.status_code == 303 and "deleted=slow-1" in r.headers["location"]
    assert lab.get(f"{slow}/progress.json").status_code == 404
    assert "slow-1" not in lab.get("/samples", headers=HTML).text
    assert not (tmp_path / "lab" / "jobs" / slow.rsplit("/", 1)[1]).exists()
    assert lab.get(slow, headers=HTML).status_code == 404


@pytest.mark.parametrize("files, fields, status, message", [
    ([("notes.mp4", b"Sample P-1\nlooks fine\n" * 20)], {}, 400,
     "Videos: notes.mp4 is a text file, not a video (whatever its name says)"),
    ([("empty.mp4", b"")], {}, 400, "Videos: empty.mp4 is empty (0 bytes)"),
    ([("big.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(300_000))], {}, 413,
     "Videos: big.mp4 is larger than the limit of 0.2 MB per video"),
    ([("photo.mp4", b"\x89PNG\r\n\x1a\n" + bytes(100))], {}, 400,
     "Videos: photo.mp4 is a PNG image, not a video"),
    ([("cut.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(500))], {}, 400,
     "Videos: cut.mp4 looks like MP4/MOV but cannot be read as a video"),
    ([], {}, 400, "Videos: choose at least one video of the sample"),
    ([("a.mp4", None)], {"sample_id": " "}, 400, "Sample ID: required"),
    ([("a.mp4", None)], {"um_per_px": "abc"}, 400, "µm per pixel: 'abc' is not a number"),
    ([("a.mp4", None)], {"dilution": "0.5"}, 400, "Dilution factor: is the dilution factor"),
    ([("a.mp4", None)], {"chamber_depth_um": "-3"}, 400, "Chamber depth (µm): must be positive"),
    ([("a.mp4", None)], {"profile": "../catalogue.sqlite"}, 400,
     "Microscope profile: '../catalogue.sqlite' is not one of the profiles"),
    ([("a.mp4", None)], {"model": "/etc/passwd"}, 400,
     "Detector: '/etc/passwd' is not one of the bundled models (default, fast)"),
])
def test_bad_upload_is_named_and_stores_nothing(lab: TestClient, clip: Path, tmp_path: Path,
                                                files, fields, status, message) -> None:
    files = [(n, clip.read_bytes() if b is None else b) for n, b in files]
    sample = fields.pop("sample_id", "P-1")
    r = _upload(lab, sample, files, **fields)
    assert r.status_code == status
    assert _message(r.text).startswith(message), _message(r.text)
    assert "Traceback" not in r.text and 'id="upload"' in r.text  # the form, to try again
    _nothing_stored(tmp_path / "lab")


def test_failed_and_crashed_jobs_say_why(lab: TestClient, clip: Path) -> None:
    failed = _upload(lab, "fail-1", [("a.mp4", clip.read_bytes())]).headers["location"]
    crashed = _upload(lab, "crash-1", [("a.mp4", clip.read_bytes())]).headers["location"]
    assert _wait(lab, failed, ("done", "failed"))["error"] == \
        "video-1.mp4: cannot decode frame 3"
    assert "The analysis failed." in lab.get(failed, headers=HTML).text
    p = _wait(lab, crashed, ("done", "failed"))
    assert p["status"] == "failed" and "ended without a result (exit code 3" in p["error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _gone(pid: int, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_server_killed_then_restarted_loses_nothing(clip: Path, tmp_path: Path) -> None:
    data, port = tmp_path / "lab", _free_port()
    code = f"import web_fakes; web_fakes.serve({str(data)!r}, {port})"
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parent)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as c:
            for _ in range(600):
                with contextlib.suppress(httpx.TransportError):
                    if c.get("/").status_code == 200:
                        break
                time.sleep(0.1)
            ids = []
            for name in ("slow-a", "slow-b"):
                r = c.post("/analyses", data={"sample_id": name, **CAL},
                           files=[("videos", ("a.mp4", clip.read_bytes(), "video/mp4"))])
                ids.append(r.headers["location"].rsplit("/", 1)[1])
            _wait(c, f"/samples/{ids[0]}", ("running",))
            pid_file = data / "jobs" / ids[0] / "worker.pid"
            for _ in range(300):
                if pid_file.exists():
                    break
                time.sleep(0.1)
    finally:
        proc.kill()  # the server dies as in a crash or a power cut
        proc.wait(timeout=30)
    assert _gone(int(pid_file.read_text()), 10)  # its worker does not outlive it
    # slow-b was waiting; say it had been started as often as allowed already (a video that
    # kills its worker every time)
    db = sqlite3.connect(data / "catalogue.sqlite")
    with db:
        db.execute("UPDATE jobs SET status='running', attempts=3 WHERE id=?", (ids[1],))
    db.close()
    (data / "jobs" / ("0" * 16)).mkdir()  # a job folder whose row was never written
    (data / "tmp" / "half.upload").write_bytes(b"partial")
    with _client(data, target=finish_job) as c:
        assert _wait(c, f"/samples/{ids[0]}", ("done", "failed"))["status"] == "done"
        assert c.get(f"/samples/{ids[0]}/progress.json").json()["attempts"] == 2
        p = c.get(f"/samples/{ids[1]}/progress.json").json()
        assert p["status"] == "failed" and p["error"].startswith("interrupted 3 times")
        assert "interrupted 3 times" in c.get(f"/samples/{ids[1]}", headers=HTML).text
        assert not (data / "jobs" / ("0" * 16)).exists()
        assert list((data / "tmp").iterdir()) == []


def test_access_token(clip: Path, tmp_path: Path) -> None:
    with _client(tmp_path / "lab", token=TOKEN) as c:
        r = c.get("/samples", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/samples"
        assert c.get("/samples/0123456789abcdef/progress.json").status_code == 401
        assert c.get("/static/style.css").status_code == 200  # the login page's look
        assert _upload(c, "P-1", [("a.mp4", clip.read_bytes())]).status_code in (303, 401)
        assert c.get("/samples", headers={"authorization": f"Bearer {TOKEN}"}).status_code \
            == 200
        assert c.get("/samples", headers={"x-active-token": TOKEN}).status_code == 200
        assert c.get("/samples", headers={"authorization": "Bearer wrong"}).status_code == 401
        r = c.post("/login", data={"token": "wrong-token", "next": "/samples"}, headers=HTML)
        assert r.status_code == 401 and _message(r.text).startswith("Wrong access token")
        r = c.post("/login", data={"token": TOKEN, "next": "//evil.example/"},
                   follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/"  # never another site
        assert TOKEN not in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
        assert c.cookies.get(COOKIE)
        assert c.get("/samples", headers=HTML).status_code == 200  # the cookie
        c.post("/logout")
        assert c.get("/samples", headers=HTML, follow_redirects=False).status_code == 303
    db = sqlite3.connect(tmp_path / "lab" / "catalogue.sqlite")
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0  # unauthorised upload
    db.close()


def test_path_traversal_and_cross_site(lab: TestClient, clip: Path, tmp_path: Path) -> None:
    url = _upload(lab, "P-2", [("a.mp4", clip.read_bytes())]).headers["location"]
    _wait(lab, url, ("done",))
    secret = (tmp_path / "lab" / "catalogue.sqlite").read_bytes()[:16]
    for path in ("/samples/..%2fcatalogue.sqlite", "/samples/%2e%2e/catalogue.sqlite",
                 f"{url}/files/..%2f..%2f..%2fcatalogue.sqlite", f"{url}/files/%2e%2e%2fjob.json",
                 f"{url}/files/job.json", f"{url}/videos/1/..%2f..%2f..%2fjob.json",
                 f"{url}/videos/0/annotated.mp4", f"{url}/videos/-1/annotated.mp4",
                 f"{url}/videos/9/annotated.mp4", "/static/..%2fcatalogue.sqlite",
                 "/static/%2e%2e/%2e%2e/catalogue.sqlite", f"{url}%2f..%2f..%2fjob.json",
                 "/samples/0123456789ABCDEF/files/summary.json"):
        r = lab.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)
        assert secret not in r.content and b'"sample_id"' not in r.content, path
    r = lab.post(f"{url}/delete", headers={"origin": "http://evil.example"})
    assert r.status_code == 403 and lab.get(f"{url}/progress.json").status_code == 200
    r = lab.post(f"{url}/delete", headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403 and lab.get(f"{url}/progress.json").status_code == 200
    r = lab.get("/samples", headers={"host": "evil.example"})  # DNS rebinding
    assert r.status_code == 421
    (tmp_path / "lab" / "jobs" / url.rsplit("/", 1)[1] / "result" / "summary.json").write_text("{")
    r = lab.get(url, headers=HTML)  # a damaged result: said in a sentence, no stack trace
    assert r.status_code == 500 and "missing or damaged" in r.text and "Traceback" not in r.text


def test_catalogue_of_schema_1_is_migrated(tmp_path: Path) -> None:
    from active.batch.catalogue import SCHEMA_VERSION, Catalogue

    path = tmp_path / "lab" / "catalogue.sqlite"
    path.parent.mkdir()
    with Catalogue(path) as cat:  # made as a batch run of schema 1 left it
        cat.db.executescript("DROP TABLE jobs; UPDATE meta SET value='1'; INSERT INTO files "
                             "VALUES ('/a.mp4', 1, 2, 'abc');")
    with _client(tmp_path / "lab") as c:
        assert c.get("/samples", headers=HTML).status_code == 200
    db = sqlite3.connect(path)
    assert db.execute("SELECT value FROM meta").fetchone()[0] == str(SCHEMA_VERSION) == "2"
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    assert db.execute("SELECT sha256 FROM files").fetchone()[0] == "abc"  # batch's rows kept
    db.close()


@pytest.mark.parametrize("argv, flag", [
    (["--port", "70000"], "--port"), (["--port", "http"], "--port"),
    (["--max-upload-mb", "-1"], "--max-upload-mb"), (["--workers", "0"], "--workers"),
    (["--token", "short"], "--token"), (["--host", "a b"], "--host"),
])
def test_bad_serve_flags_exit_2_naming_the_flag(argv: list[str], flag: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["serve", *argv])
    assert exc.value.code == 2 and f"argument {flag}" in capsys.readouterr().err


def test_serve_data_is_a_file_and_warning_without_token(tmp_path: Path, monkeypatch,
                                                        capsys) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit):
        main(["serve", "--data", str(tmp_path / "f")])
    assert "argument --data" in capsys.readouterr().err
    import uvicorn

    ran = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.append(kw))
    port = _free_port()
    serve(ServeOptions(data=tmp_path / "lab", host="0.0.0.0", port=port))
    assert ran[0]["host"] == "0.0.0.0" and ran[0]["port"] == port
    assert "without --token" in capsys.readouterr().err
    serve(ServeOptions(data=tmp_path / "lab", host="0.0.0.0", port=port, token=TOKEN))
    assert "warning" not in capsys.readouterr().err
    with socket.socket() as taken:  # a port in use, a catalogue another server holds
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        used = str(taken.getsockname()[1])
        assert main(["serve", "--port", used, "--data", str(tmp_path / "lab")]) == 2
        assert f"--port {used}: already in use" in capsys.readouterr().err
    with _client(tmp_path / "lab"):
        assert main(["serve", "--port", str(port), "--data", str(tmp_path / "lab")]) == 2
        assert "another ACTIVE process" in capsys.readouterr().err
    assert len(ran) == 2


def test_web_imports_no_training_and_no_torch() -> None:
    """The web page is part of the base install (no PyTorch): its modules import none of it."""
    web = Path(__file__).resolve().parents[1] / "src" / "active" / "web"
    for path in web.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("torch", "active.training", "active.models")), \
                    (path.name, name)


def test_progress_json_of_a_queued_job(tmp_path: Path, clip: Path) -> None:
    with _client(tmp_path / "lab", workers=1) as c:
        first = _upload(c, "slow-1", [("a.mp4", clip.read_bytes())]).headers["location"]
        queued = _upload(c, "slow-2", [("a.mp4", clip.read_bytes())]).headers["location"]
        _wait(c, first, ("running",))
        p = c.get(f"{queued}/progress.json").json()
        assert (p["status"], p["stage"], p["percent"]) == ("queued",
                                                           "waiting for a free worker", None)
        assert json.loads(c.get(f"{queued}/progress.json").content)["videos"] == 1


def test_microscope_profile_sets_threshold_and_scale(lab: TestClient, clip: Path,
                                                     tmp_path: Path) -> None:
    from active.inference.predictor import resolve_weights
    from active.inference.profile import Profile
    from active.utils.io import file_sha256

    profiles = tmp_path / "lab" / "profiles"
    model = resolve_weights("default")
    Profile(model.name, file_sha256(model), 0.33, um_per_px=0.5).save(profiles / "scope 40x.json")
    Profile("other.onnx", "0" * 64, 0.5).save(profiles / "other.json")
    assert "scope 40x.json" in lab.get("/", headers=HTML).text
    fields = {"sample_id": "P-3", "um_per_px": "", "chamber_depth_um": "20",
              "profile": "scope 40x.json"}
    r = lab.post("/analyses", data=fields, files=[("videos", ("a.mp4", clip.read_bytes()))],
                 headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    job = tmp_path / "lab" / "jobs" / r.headers["location"].rsplit("/", 1)[1]
    spec = json.loads((job / "job.json").read_text())
    assert (spec["conf"], spec["calibration"]["um_per_px"], spec["profile"]) == \
        (0.33, 0.5, "scope 40x.json")
    r = _upload(lab, "P-4", [("a.mp4", clip.read_bytes())], profile="other.json")
    assert r.status_code == 400
    assert _message(r.text).startswith("Microscope profile: other.json: this profile was "
                                       "fitted for other.onnx")
    # the model chosen on the form runs the job; a profile fitted for another model is refused
    assert 'value="fast"' in lab.get("/", headers=HTML).text
    r = _upload(lab, "P-5", [("a.mp4", clip.read_bytes())], model="fast")
    assert r.status_code == 303
    job = tmp_path / "lab" / "jobs" / r.headers["location"].rsplit("/", 1)[1]
    assert json.loads((job / "job.json").read_text())["weights"] == "fast"
    r = _upload(lab, "P-6", [("a.mp4", clip.read_bytes())], model="fast",
                profile="scope 40x.json")
    assert r.status_code == 400
    assert _message(r.text).startswith("Microscope profile: scope 40x.json: this profile was "
                                       f"fitted for {model.name}")


def test_job_spec_sets_the_analysis_model(tmp_path: Path) -> None:
    """The worker runs the job with the model its spec names (jobs written before the model
    choice existed run with the default)."""
    from active.web.worker import Progress, _options

    progress = Progress(tmp_path / "progress.json", {"a.mp4": 10})
    assert _options({"weights": "fast", "conf": None}, progress).weights == "fast"
    assert _options({"conf": 0.3}, progress).weights == "default"
