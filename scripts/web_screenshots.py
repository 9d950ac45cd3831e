"""The screenshots of docs/web.md: the lab's page (``active serve``) in headless Chromium, driven by
Playwright as tests/test_web_browser.py drives it, on synthetic clips analysed for real.

    python scripts/web_screenshots.py --out docs/images          # about a minute or two

Needs Debian's chromium (scripts/install-test-browser.sh) and the dev extra (playwright). Each
page is saved 1200 px wide as a 256-colour PNG (text stays sharp, files stay small).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from PIL import Image

from active.data.synth import SynthConfig, render_video
from active.data.video import write_video
from active.web.app import ServeOptions, running

WIDTH = 1200
#: Every video of the page at 1 s, painted (a screenshot taken before the frame is presented
#: shows a black box).
SHOW_FRAME = """async () => {
    const wait = (v, event) => Promise.race([
        new Promise(r => v.addEventListener(event, r, {once: true})),
        new Promise(r => setTimeout(r, 5000))]);
    for (const v of document.querySelectorAll('video')) {
        if (v.readyState < 2) await wait(v, 'loadeddata');
        v.currentTime = 1.0;
        await wait(v, 'seeked');
        await Promise.race([new Promise(r => v.requestVideoFrameCallback(r)),
                            new Promise(r => setTimeout(r, 2000))]);
    }
}"""


def _save(page: Any, out: Path, name: str, height: int | None = None) -> None:
    """A screenshot of the page (its top ``height`` px, else the viewport) as a small PNG."""
    path = out / f"web-{name}.png"
    clip = {"x": 0, "y": 0, "width": WIDTH, "height": height} if height else None
    page.screenshot(path=str(path), clip=clip, full_page=bool(height))
    # octree keeps the legend's small swatches in their colours (median cut merges them)
    Image.open(path).convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(
        path, optimize=True)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")


def _clips(folder: Path, frames: int) -> list[Path]:
    cfg = replace(SynthConfig(), frames=frames)
    paths = []
    for seed in range(2):
        path = folder / f"P-0231 field {seed + 1}.mp4"
        write_video(path, render_video(cfg, seed, f"F{seed}").frames, fps=cfg.fps)
        paths.append(path)
    return paths


def _upload(page: Any, url: str, sample: str, videos: list[Path], submit: bool = True) -> str:
    page.goto(url + "/")
    page.fill("#sample_id", sample)
    page.fill("#um_per_px", "0.35")
    page.fill("#chamber_depth_um", "20")
    page.set_input_files("#videos", [str(v) for v in videos])
    if not submit:
        return ""
    page.click("#submit")
    page.wait_for_url("**/samples/*")
    return page.url


def _wait_detecting(data: Path, job_url: str, timeout_s: float = 300) -> None:
    """Until a fifth of the frames are done (the page then shows a settled speed and ETA)."""
    progress = data / "jobs" / job_url.rsplit("/", 1)[1] / "progress.json"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            p = json.loads(progress.read_text())
            if p.get("eta_s") is not None and p["frames_done"] >= 0.2 * p["frames_total"]:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)


def _profile(path: Path) -> None:
    """A microscope profile for the bundled model, so the form's list shows one."""
    from active.inference.predictor import resolve_weights
    from active.inference.profile import Profile
    from active.utils.io import file_sha256

    model = resolve_weights("default")
    Profile(model.name, file_sha256(model), 0.45, um_per_px=0.35).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("docs/images"))
    ap.add_argument("--frames", type=int, default=60, help="frames per synthetic clip")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    out = args.out.resolve()
    with tempfile.TemporaryDirectory(prefix="active-shots-") as tmp, sync_playwright() as pw:
        os.chdir(tmp)  # the page names its data folder as a lab would: active-lab/
        tmp_path = Path(tmp)
        videos = _clips(tmp_path, args.frames)
        data = Path("active-lab")
        _profile(data / "profiles" / "lab-scope-40x.json")
        browser = pw.chromium.launch(executable_path=shutil.which("chromium"),
                                     args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        with running(ServeOptions(data=data, port=0)) as url:
            _upload(page, url, "P-0231", videos, submit=False)
            _save(page, out, "new-analysis")
            first = _upload(page, url, "P-0231", videos)
            _wait_detecting(data, first)
            page.wait_for_timeout(1500)  # the page's next poll shows frames/s and ETA
            _save(page, out, "progress")
            page.wait_for_selector("#results", timeout=600_000)
            _upload(page, url, "P-0232", videos[1:])
            page.goto(first)
            page.evaluate(SHOW_FRAME)
            page.wait_for_timeout(500)
            _save(page, out, "report", height=1500)
            page.locator("#video").scroll_into_view_if_needed()
            page.evaluate("window.scrollTo(0, document.getElementById('video').offsetTop - 10)")
            page.evaluate(SHOW_FRAME)
            page.wait_for_timeout(500)
            _save(page, out, "report-video")
            page.goto(url + "/samples")
            _save(page, out, "past-samples", height=560)
            page.goto(url + "/")
            page.fill("#sample_id", "P-0233")
            page.set_input_files("#videos", [{"name": "P-0233.mp4", "mimeType": "video/mp4",
                                              "buffer": b"notes of the sample\n" * 10}])
            page.click("#submit")
            page.wait_for_selector("#form-error")
            _save(page, out, "bad-upload", height=540)
            page.goto(url + "/login")
            _save(page, out, "login", height=420)
        browser.close()


if __name__ == "__main__":
    main()
