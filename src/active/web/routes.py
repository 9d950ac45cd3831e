"""The pages and downloads.

    GET  /                                   new analysis (the upload form)
    GET  /grade-colours.css                  the grade legend's colours (the video's)
    POST /analyses                           upload -> a queued job -> its page
    GET  /samples                            past samples: search by id, date, status
    GET  /samples/{id}                       progress while it runs, the report when done
    GET  /samples/{id}/progress.json         status, frames done/total, frames/s, ETA
    GET  /samples/{id}/report                report.html, as ``active analyze`` writes it
    GET  /samples/{id}/files/{name}          summary.json, tracks.csv, kinematics.csv, report.html
    GET  /samples/{id}/videos/{n}/{name}     annotated.mp4 (with byte ranges), counts.csv, ...
    POST /samples/{id}/delete                the sample's row and every file of it

Every file is found from a job id that must be in the catalogue and a name from a fixed list,
never from a path in the request.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from active.batch.catalogue import now
from active.web.forms import LABELS, MODELS, FieldError, Settings, list_profiles, parse_settings
from active.web.store import STATUSES, Job, new_job_id
from active.web.uploads import Upload, check_video, megabytes, read_form
from active.web.views import grade_rows, headline_numbers, notes, video_rows

router = APIRouter()

#: Downloads of a finished sample: file name -> media type.
FILES = {"summary.json": "application/json", "tracks.csv": "text/csv",
         "kinematics.csv": "text/csv", "report.html": "text/html"}
VIDEO_FILES = {"annotated.mp4": "video/mp4", "counts.csv": "text/csv",
               "detections.json": "application/json"}
#: What the worker's progress.json stages are called on the page.
STAGES = {"starting": "starting: loading the detector",
          "detecting": "finding the sperm heads in every frame",
          "finished": "saving the results"}
REPORT_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
              "frame-ancestors 'self'")


def _state(request: Request) -> Any:
    return request.app.state


def _page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return _state(request).templates.TemplateResponse(request, name, context,
                                                      status_code=status)


def _job(request: Request, job_id: str) -> Job:
    job = _state(request).store.get(job_id)
    if job is None:
        raise HTTPException(404, "There is no sample at this address (it may have been "
                                 "deleted).")
    return job


def _folder(request: Request, job: Job) -> Path:
    return _state(request).options.data / "jobs" / job.id


# ---- new analysis ---------------------------------------------------------------------------


def _form(request: Request, fields: dict[str, str] | None = None,
          error: FieldError | None = None) -> Response:
    opts = _state(request).options
    return _page(request, "new.html.j2", {
        "fields": fields or {}, "error": error, "labels": LABELS, "models": MODELS,
        "profiles": list_profiles(opts.data / "profiles"), "profiles_dir": opts.data / "profiles",
        "max_bytes": opts.max_upload_bytes, "max_text": megabytes(opts.max_upload_bytes),
        "max_videos": opts.max_videos}, status=error.status if error else 200)


@router.get("/")
def new_analysis(request: Request) -> Response:
    return _form(request)


@router.get("/grade-colours.css")
def grade_colours() -> Response:
    """The swatches of the grade legend, in the colours the annotated video draws."""
    from active.analysis.plots import GRADE_COLOURS

    css = "".join(f".grade-{g} {{ background: #{bytes(c).hex()}; }}\n"
                  for g, c in GRADE_COLOURS.items())
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})


def _create(request: Request, settings: Settings, uploads: list[Upload]) -> Job:
    """The job's folder (built under a temporary name, then renamed) and its queued row."""
    opts = _state(request).options
    job_id = new_job_id()
    final = opts.data / "jobs" / job_id
    partial = opts.data / "jobs" / f".{job_id}.partial"
    (partial / "inputs").mkdir(parents=True)
    try:
        videos = []
        for k, up in enumerate(uploads, 1):
            stored = f"video-{k}{up.suffix}"
            os.replace(up.path, partial / "inputs" / stored)
            videos.append({"file": stored, "name": up.name, "bytes": up.size,
                           "frames": up.frames})
        cal = settings.calibration.to_json()
        spec = {"sample_id": settings.sample_id, "videos": [v["file"] for v in videos],
                "frames": [v["frames"] for v in videos], "calibration": cal,
                "weights": settings.model, "conf": settings.conf, "profile": settings.profile,
                "resize_um_per_px": settings.resize_um_per_px, "threads": opts.threads}
        (partial / "job.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
        os.replace(partial, final)
        from active import __version__

        job = Job(job_id, settings.sample_id, "queued", now(), f"jobs/{job_id}", videos, cal,
                  {"model": settings.model, "profile": settings.profile, "conf": settings.conf,
                   "um_per_px_from": settings.um_per_px_from}, active_version=__version__)
        _state(request).store.add(job)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(final, ignore_errors=True)
        raise
    return job


@router.post("/analyses")
async def submit(request: Request) -> Response:
    opts = _state(request).options
    try:
        form = await read_form(request, opts.data / "tmp", opts.max_upload_bytes,
                               opts.max_videos)
    except FieldError as exc:
        return _form(request, None, exc)
    try:
        settings = parse_settings(form.fields, opts.data / "profiles")
        if not form.files:
            raise FieldError("videos", "choose at least one video of the sample")
        for up in form.files:
            await run_in_threadpool(check_video, up)
        no_rate = [up.name for up in form.files if not up.fps_known]
        if no_rate and settings.calibration.fps is None:
            raise FieldError("fps", f"{', '.join(no_rate)} states no frame rate: give the "
                             "camera's frames per second here")
        job = await run_in_threadpool(_create, request, settings, form.files)
    except FieldError as exc:
        return _form(request, form.fields, exc)
    finally:
        form.discard()  # whatever was not moved into a job
    _state(request).runner.kick()
    return RedirectResponse(f"/samples/{job.id}", status_code=303)


# ---- past samples ---------------------------------------------------------------------------


def _day(text: str, label: str) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FieldError(label, f"{text!r} is not a date (YYYY-MM-DD)") from None


@router.get("/samples")
def samples(request: Request, q: str = "", start: str = "", end: str = "", status: str = "",
            deleted: str = "") -> Response:
    error, jobs = None, []
    try:
        first, last = _day(start, "From"), _day(end, "To")
        if status and status not in STATUSES:
            raise FieldError("Status", f"{status!r} is not one of {', '.join(STATUSES)}")
        jobs = _state(request).store.search(q.strip(), first, last, status)
    except FieldError as exc:
        error = exc
    return _page(request, "samples.html.j2", {
        "jobs": jobs, "q": q, "start": start, "end": end, "status": status,
        "statuses": STATUSES, "error": error, "deleted": deleted[:100]},
        status=400 if error else 200)


@router.post("/samples/{job_id}/delete")
def delete(request: Request, job_id: str) -> Response:
    job = _job(request, job_id)
    _state(request).runner.cancel(job.id)
    _state(request).store.delete(job.id)
    shutil.rmtree(_folder(request, job), ignore_errors=True)
    return RedirectResponse(f"/samples?deleted={quote(job.sample_id)}", status_code=303)


# ---- one sample -----------------------------------------------------------------------------


def progress(request: Request, job: Job) -> dict[str, Any]:
    """What the progress page shows (and polls): the row's status and the worker's
    progress.json."""
    data: dict[str, Any] = {}
    if job.status == "running":
        try:
            data = json.loads((_folder(request, job) / "progress.json").read_text("utf-8"))
        except (OSError, ValueError):
            data = {}
    done, total = data.get("frames_done") or 0, data.get("frames_total")
    stage = STAGES.get(data.get("stage") or "", data.get("stage") or "")
    if job.status != "running":
        stage = {"queued": "waiting for a free worker"}.get(job.status, job.status)
    elif not stage:
        stage = STAGES["starting"]
    if job.status == "running" and total and done >= total:
        stage = "writing the report and the annotated video"
    return {"id": job.id, "sample_id": job.sample_id, "status": job.status,
            "error": job.error, "attempts": job.attempts, "stage": stage,
            "frames_done": done, "frames_total": total,
            "percent": round(100.0 * min(done / total, 1.0), 1) if total else None,
            "frames_per_s": data.get("frames_per_s"), "eta_s": data.get("eta_s"),
            "videos": len(job.videos)}


@router.get("/samples/{job_id}/progress.json")
def progress_json(request: Request, job_id: str) -> Response:
    return JSONResponse(progress(request, _job(request, job_id)),
                        headers={"Cache-Control": "no-store"})


@router.get("/samples/{job_id}")
def sample(request: Request, job_id: str) -> Response:
    job = _job(request, job_id)
    context: dict[str, Any] = {"job": job, "progress": progress(request, job)}
    if job.status != "done":
        return _page(request, "progress.html.j2", context)
    try:
        summary = json.loads((_folder(request, job) / "result" / "summary.json").read_text(
            "utf-8"))
    except (OSError, ValueError):
        raise HTTPException(500, "This sample's results are missing or damaged on the "
                                 "server's disk; delete it and analyse it again.") from None
    names = {v["file"]: v["name"] for v in job.videos}
    result = _folder(request, job) / "result" / "videos"
    context.update(numbers=headline_numbers(summary), grades=grade_rows(summary),
                   videos=video_rows(summary, names), notes=notes(summary, names),
                   annotated=[k for k, v in enumerate(job.videos, 1)
                              if (result / Path(v["file"]).stem / "annotated.mp4").is_file()],
                   summary=summary)
    return _page(request, "sample.html.j2", context)


def _download_name(job: Job, name: str) -> str:
    return f"{re.sub(r'[^A-Za-z0-9._-]+', '_', job.sample_id).strip('._') or 'sample'}-{name}"


@router.get("/samples/{job_id}/report")
def report(request: Request, job_id: str) -> Response:
    job = _job(request, job_id)
    path = _folder(request, job) / "result" / "report.html"
    if job.status != "done" or not path.is_file():
        raise HTTPException(404, "This sample has no report yet.")
    return FileResponse(path, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": REPORT_CSP})


@router.get("/samples/{job_id}/files/{name}")
def download(request: Request, job_id: str, name: str) -> Response:
    job = _job(request, job_id)
    if name not in FILES:
        raise HTTPException(404, f"No file {name!r}: a sample has {', '.join(FILES)}.")
    path = _folder(request, job) / "result" / name
    if job.status != "done" or not path.is_file():
        raise HTTPException(404, "This sample has no results yet.")
    return FileResponse(path, media_type=FILES[name], filename=_download_name(job, name),
                        headers={"Content-Security-Policy": "default-src 'none'"})


@router.get("/samples/{job_id}/videos/{index}/{name}")
def video_file(request: Request, job_id: str, index: int, name: str) -> Response:
    job = _job(request, job_id)
    if name not in VIDEO_FILES or not 1 <= index <= len(job.videos):
        raise HTTPException(404, "No such file of this sample.")
    stem = Path(job.videos[index - 1]["file"]).stem
    path = _folder(request, job) / "result" / "videos" / stem / name
    if not path.is_file():
        raise HTTPException(404, "This sample has no such file (yet).")
    if name == "annotated.mp4":  # played in the page: inline, with byte ranges for seeking
        return FileResponse(path, media_type="video/mp4")
    return FileResponse(path, media_type=VIDEO_FILES[name],
                        filename=_download_name(job, f"{stem}-{name}"))
