"""What a worker process runs for one job: ``active.analysis.run.analyze`` on the uploaded
videos, with its progress written to ``progress.json`` and its outcome to ``outcome.json``.

The job's folder (``DATA/jobs/<id>/``)::

    job.json        what to run (written by the server before the job is queued)
    inputs/         the uploaded videos, under generated names (video-1.mp4, ...)
    progress.json   frames done and total, frames per second, stage (rewritten atomically)
    result/         the analysis' outputs, as ``active analyze --out`` writes them; renamed
                    from result.partial/ only when complete
    outcome.json    {"status": "done"} or {"status": "failed", "error": "..."}, written last

The server never imports this module's dependencies into its own process: it starts a process
with :func:`run_job` as its target (multiprocessing's spawn context) and reads the files.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from active.utils.io import write_json

#: progress.json is rewritten at most this often (seconds): often enough for a live page, rarely
#: enough to cost nothing beside the detector.
PROGRESS_EVERY_S = 0.5


class Progress:
    """Frames done over all of a job's videos, written to ``progress.json`` (atomically)."""

    def __init__(self, path: Path, totals: dict[str, int]) -> None:
        self.path = path
        self.totals = totals  # frames per video (the container's count; may be approximate)
        self.done: dict[str, int] = dict.fromkeys(totals, 0)
        self.first_frame_at: float | None = None
        self.last_write = 0.0
        self.stage = "starting"

    def frame(self, video: Path, done: int) -> None:
        """``AnalyzeOptions.on_frame``: ``done`` frames of ``video`` are detected."""
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
            self.stage = "detecting"
        self.done[video.name] = done
        if time.monotonic() - self.last_write >= PROGRESS_EVERY_S:
            self.write()

    def write(self, stage: str | None = None) -> None:
        self.stage = stage or self.stage
        done, total = sum(self.done.values()), sum(self.totals.values())
        elapsed = (time.monotonic() - self.first_frame_at) if self.first_frame_at else 0.0
        # the rate since the first frame (the clock starts there: loading the model is not
        # detection), once it is more than noise
        fps = (done - 1) / elapsed if elapsed > 0.2 and done > 1 else None
        eta = (max(total - done, 0) / fps) if fps and total else None
        write_json(self.path, {
            "stage": self.stage, "frames_done": done, "frames_total": total or None,
            "frames_per_s": None if fps is None else round(fps, 2),
            "eta_s": None if eta is None else round(eta, 1),
            "detecting_s": round(elapsed, 1), "videos": len(self.totals),
            "videos_done": sum(1 for k, n in self.done.items()
                               if self.totals[k] and n >= self.totals[k]),
            "updated": time.time()}, indent=None)
        self.last_write = time.monotonic()


def describe(exc: BaseException) -> str:
    """One line for the page (:func:`active.errors.describe_failure`); an unexpected exception
    is marked as an internal error to report."""
    from active.errors import ActiveError, describe_failure

    line = describe_failure(exc)
    if isinstance(exc, ActiveError | OSError):
        return line
    return f"internal error {line} (please report it)"


def _options(spec: dict[str, Any], progress: Progress) -> Any:
    from active.analysis.run import AnalyzeOptions

    return AnalyzeOptions(weights=spec.get("weights", "default"), conf=spec.get("conf"),
                          threads=spec.get("threads"),
                          profile=spec.get("profile"),
                          resize_um_per_px=spec.get("resize_um_per_px"),
                          progress=False, on_frame=progress.frame)


def _exit_with_parent() -> None:
    """End this process when the server that started it is gone (killed, crashed): the
    restarted server runs the job again, and two processes must never write one job."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_job(folder: str, spec: dict[str, Any]) -> None:
    """Analyse the job in ``folder`` as ``spec`` says (job.json: ``sample_id``, ``videos``: the
    input files' names, ``frames``: their frame counts, ``calibration``, and the detector's
    ``conf``, ``profile``, ``resize_um_per_px``, ``threads``). Never raises: the outcome, good
    or bad, is ``outcome.json``."""
    # Ctrl-C in the server's terminal reaches this process too: the server stops it instead
    # (SIGTERM), and the job, left unfinished, is run again when the server starts
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    job = Path(folder)
    videos = [job / "inputs" / name for name in spec["videos"]]
    progress = Progress(job / "progress.json", dict(zip(spec["videos"], spec["frames"],
                                                        strict=True)))
    partial, result = job / f"result.partial-{os.getpid()}", job / "result"
    try:
        progress.write("starting")
        from active.analysis.calibration import Calibration
        from active.analysis.run import analyze

        for old in job.glob("result.partial*"):  # an earlier attempt's, interrupted
            shutil.rmtree(old, ignore_errors=True)
        analyze(videos, Calibration(**spec["calibration"]), partial, spec["sample_id"],
                _options(spec, progress))
        progress.write("finished")
        shutil.rmtree(result, ignore_errors=True)
        os.replace(partial, result)
        outcome: dict[str, Any] = {"status": "done"}
    except Exception as exc:  # recorded for the page; the process ends here anyway
        shutil.rmtree(partial, ignore_errors=True)
        outcome = {"status": "failed", "error": describe(exc)}
    write_json(job / "outcome.json", outcome)
