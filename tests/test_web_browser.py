"""The lab's web page end to end in a real headless browser: Playwright for Python driving
Debian's ``chromium`` (``scripts/install-test-browser.sh`` installs it; ``playwright install``
cannot work without the internet). The real server (uvicorn, in a thread) runs the real analysis
in a worker process on a small synthetic clip; the test waits for the report, checks the numbers
shown against summary.json, checks that the annotated video plays and seeks, checks the
messages of bad uploads, and keeps screenshots in ``$ACTIVE_TEST_ARTEFACTS`` (default
``test-artefacts/``).

Without chromium these tests skip, saying why, except under CI (``CI`` set), where they fail:
CI must not pass without them."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from active.data.video import write_video
from active.web.app import ServeOptions, running

REPO = Path(__file__).resolve().parents[1]
ARTEFACTS = Path(os.environ.get("ACTIVE_TEST_ARTEFACTS") or REPO / "test-artefacts")
REPORT_TIMEOUT_MS = 240_000  # the analysis of a 30-frame clip on a busy 2-core machine


def _missing(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the browser tests: run scripts/install-test-browser.sh")
    pytest.skip(f"{why} (scripts/install-test-browser.sh installs it)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        _missing("Debian's chromium is not installed: no 'chromium' on PATH")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``active serve``'s application on a free localhost port: (its address, its --data)."""
    data = tmp_path_factory.mktemp("web") / "lab"
    with running(ServeOptions(data=data, port=0, max_upload_mb=0.2, threads=2)) as url:
        yield url, data


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 synthetic frames of 160 x 128 px at 25 frames/s (1.2 s: long enough to grade)."""
    from active.data.synth import SynthConfig, render_video

    cfg = replace(SynthConfig(), width=160, height=128, frames=30, sperm_in_view=(4.0, 6.0),
                  impurities_in_view=(1.0, 1.0), dots_in_view=(3.0, 5.0))
    path = tmp_path_factory.mktemp("clip") / "field 1.mp4"
    write_video(path, render_video(cfg, 0, "T").frames, fps=25)
    return path


def _shot(page: Any, name: str) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"web-{name}.png"), full_page=True)


def _fill(page: Any, url: str, sample: str, files: list[dict[str, Any]]) -> None:
    page.goto(url + "/")
    page.fill("#sample_id", sample)
    page.fill("#um_per_px", "0.7")
    page.fill("#chamber_depth_um", "20")
    page.set_input_files("#videos", files)


def _file(name: str, body: bytes) -> dict[str, Any]:
    return {"name": name, "mimeType": "video/mp4", "buffer": body}


def test_bad_uploads_are_named_on_the_page(browser: Any, server: tuple[str, Path]) -> None:
    url, data = server
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    _fill(page, url, "P-bad", [_file("notes.mp4", b"not a video, a note\n" * 40)])
    page.click("#submit")
    assert "notes.mp4 is a text file, not a video" in page.inner_text("#form-error")
    _shot(page, "bad-upload")
    # the page says it before uploading ...
    _fill(page, url, "P-bad", [_file("empty.mp4", b"")])
    page.click("#submit")
    assert "empty.mp4 is empty (0 bytes)" in page.inner_text("#upload-error")
    big = _file("big.mp4", b"\x00\x00\x00\x18ftypisom" + bytes(300_000))
    _fill(page, url, "P-bad", [big])
    page.click("#submit")
    assert "big.mp4 is larger than the limit of 0.2 MB" in page.inner_text("#upload-error")
    # ... and the server says it too, when the page's check is bypassed
    for f in ([big], [_file("empty.mp4", b"")]):
        _fill(page, url, "P-bad", f)
        page.eval_on_selector("#upload", "f => { f.dataset.maxBytes = ''; f.noValidate = true;"
                              " f.replaceWith(f.cloneNode(true)); }")
        page.set_input_files("#videos", f)
        page.click("#submit")
        page.wait_for_selector("#form-error")
        text = page.inner_text("#form-error")
        assert ("larger than the limit of 0.2 MB" in text if f[0]["name"] == "big.mp4"
                else "is empty (0 bytes)" in text), text
    db = sqlite3.connect(data / "catalogue.sqlite")
    assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
    db.close()
    assert list((data / "jobs").iterdir()) == [] and list((data / "tmp").iterdir()) == []
    page.close()


def _number(text: str) -> tuple[float, int]:
    """The first number in ``text`` and how many decimals it was shown with."""
    m = re.search(r"-?\d+(?:\.(\d+))?", text)
    assert m, text
    return float(m.group(0)), len(m.group(1) or "")


def test_analysis_report_video_and_past_samples(browser: Any, server: tuple[str, Path],
                                                clip: Path) -> None:
    url, data = server
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    _fill(page, url, "S-e2e", [{"name": clip.name, "mimeType": "video/mp4",
                                "buffer": clip.read_bytes()}])
    _shot(page, "new-analysis")
    page.click("#submit")
    page.wait_for_url(re.compile(r"/samples/[0-9a-f]{16}$"))
    job_id = page.url.rsplit("/", 1)[1]
    if page.query_selector("#progress"):
        _shot(page, "progress")
    page.wait_for_selector("#results", timeout=REPORT_TIMEOUT_MS)
    summary = json.loads((data / "jobs" / job_id / "result" / "summary.json").read_text())

    # every number on the page is summary.json's, rounded as shown
    shown = page.eval_on_selector_all("td.value[data-key]",
                                      "els => els.map(e => [e.dataset.key, e.innerText])")
    assert len(shown) >= 9
    for key, text in shown:
        raw: Any = summary
        for part in key.split("."):
            raw = raw[part]
        if raw is None:
            assert "not computed" in text or text == "—", (key, text)
            continue
        value, decimals = _number(text)
        assert abs(value - float(raw)) <= 0.5 * 10 ** -decimals + 1e-9, (key, text, raw)
    assert summary["concentration"]["m_per_ml"] is not None  # the clip was graded and counted
    assert "million/mL" in page.inner_text("#results")
    frame = page.frame_locator("#report-frame")
    assert "Semen analysis report: S-e2e" in frame.locator("h1").inner_text()

    # the annotated video plays and seeks (H.264 served with byte ranges)
    state = page.evaluate("""async () => {
        const v = document.getElementById('video-1');
        for (let i = 0; i < 200 && v.readyState < 2 && !v.error; i++)
            await new Promise(r => setTimeout(r, 50));
        await v.play();
        for (let i = 0; i < 200 && v.currentTime < 0.3; i++)
            await new Promise(r => setTimeout(r, 50));
        v.pause();
        const played = v.currentTime;
        v.currentTime = 1.0;
        await new Promise(r => v.addEventListener('seeked', r, {once: true}));
        return {error: v.error && v.error.code, ready: v.readyState, played: played,
                seeked: v.currentTime, width: v.videoWidth};
    }""")
    assert state["error"] is None and state["ready"] >= 2, state
    assert state["played"] > 0.2 and abs(state["seeked"] - 1.0) < 0.1, state
    assert state["width"] == 160, state
    page.evaluate("document.getElementById('video-1').currentTime = 0.6")
    page.wait_for_timeout(300)
    _shot(page, "report")

    page.goto(f"{url}/samples?q=e2e")
    rows = page.locator("#samples tbody tr")
    assert rows.count() == 1 and "S-e2e" in rows.first.inner_text()
    assert "done" in rows.first.inner_text()
    _shot(page, "past-samples")
    page.on("dialog", lambda dialog: dialog.accept())
    rows.first.locator("button.danger").click()
    page.wait_for_selector("#deleted")
    assert "S-e2e was deleted" in page.inner_text("#deleted")
    assert not (data / "jobs" / job_id).exists()
    page.close()
