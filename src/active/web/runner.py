"""Jobs run in worker processes, never in the server's request threads.

One thread of the server (the dispatcher) starts a process per job (multiprocessing's spawn
context: a fresh interpreter, nothing of the server's state inherited) as long as fewer than
``workers`` run, waits for them and records each outcome in the catalogue. The catalogue is the
queue: a job is ``queued`` there before it is started, so nothing is held only in memory.

**A restart loses nothing** (:meth:`Runner.recover`, called before the dispatcher starts): a job
left ``running`` by a server that stopped or crashed is queued again and analysed from the
start (its uploaded videos are kept in its folder, and its outputs are only renamed into place
when complete); after :data:`MAX_ATTEMPTS` starts it is marked failed with the reason, so a
video that kills its process every time cannot loop. Queued jobs simply wait for a worker.
Uploads cut off half-way (``DATA/tmp``) and job folders without a row are removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from active.web.store import JOB_ID, JobStore

log = logging.getLogger("active.web")

#: How often a job is started before an interruption marks it failed instead of queued again.
MAX_ATTEMPTS = 3
#: What a worker process runs: ``target(job_folder, spec)``; tests give a quick stand-in.
Target = Callable[[str, dict[str, Any]], None]


def _default_target() -> Target:
    from active.web.worker import run_job

    return run_job


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers the list of past samples shows, from a finished job's summary.json."""
    conc = summary.get("concentration") or {}
    mot = summary.get("motility") or {}
    return {"concentration_m_per_ml": conc.get("m_per_ml"),
            "cells_counted": conc.get("cells_counted"),
            "progressive_pct": mot.get("progressive_pct"),
            "total_motility_pct": mot.get("total_motility_pct"),
            "frames": sum(int(v.get("frames") or 0) for v in summary.get("videos") or []),
            "notes": list(summary.get("notes") or [])}


class Runner:
    """Starts the queued jobs of ``store`` in worker processes, ``workers`` at a time."""

    def __init__(self, store: JobStore, data: Path, workers: int = 1,
                 target: Target | None = None, poll_s: float = 0.2) -> None:
        self.store, self.data, self.workers = store, Path(data), max(1, int(workers))
        self.target = target or _default_target()
        self.poll_s = poll_s
        self._ctx = multiprocessing.get_context("spawn")
        self._procs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def job_folder(self, job_id: str) -> Path:
        return self.data / "jobs" / job_id

    # ---- life cycle -------------------------------------------------------------------------

    def recover(self) -> dict[str, str]:
        """Tidy up after the last run (module docstring); returns what became of each job left
        running."""
        shutil.rmtree(self.data / "tmp", ignore_errors=True)
        (self.data / "tmp").mkdir(parents=True, exist_ok=True)
        jobs = self.data / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        known = self.store.ids()
        for folder in jobs.iterdir():
            if folder.is_dir() and not (JOB_ID.match(folder.name) and folder.name in known):
                shutil.rmtree(folder, ignore_errors=True)  # a job cut off before its row
        done = self.store.recover(MAX_ATTEMPTS)
        for job_id, what in done.items():
            log.warning("job %s was running when the server stopped: %s", job_id,
                        "queued again" if what == "queued" else "marked failed")
        return done

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="active-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the dispatcher and the running jobs' processes; their rows stay ``running`` and
        the next start queues them again."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            procs = list(self._procs.values())
            self._procs.clear()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    def kick(self) -> None:
        """A job was queued: start it now rather than at the next poll."""
        self._wake.set()

    def cancel(self, job_id: str) -> bool:
        """Stop the job's process if it runs (for a delete); True when one was stopped."""
        with self._lock:
            proc = self._procs.pop(job_id, None)
        if proc is None:
            return False
        proc.terminate()
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=5)
        return True

    # ---- the dispatcher ---------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._launch()
            except Exception:  # a bad moment of the disk or the database: try again
                log.exception("job dispatcher")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _launch(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                if len(self._procs) >= self.workers:
                    return
            job = self.store.claim_next()
            if job is None:
                return
            folder = self.job_folder(job.id)
            try:
                spec = json.loads((folder / "job.json").read_text(encoding="utf-8"))
                for name in ("outcome.json", "progress.json"):
                    (folder / name).unlink(missing_ok=True)
                proc = self._ctx.Process(target=self.target, args=(str(folder), spec),
                                         name=f"active-job-{job.id}", daemon=True)
                proc.start()
            except Exception as exc:
                self.store.finish(job.id, "failed", f"could not start the analysis: {exc}")
                continue
            with self._lock:
                self._procs[job.id] = proc

    def _reap(self) -> None:
        with self._lock:
            ended = [(k, p) for k, p in self._procs.items() if not p.is_alive()]
            for k, _ in ended:
                del self._procs[k]
        for job_id, proc in ended:
            proc.join()
            self._record(job_id, proc.exitcode)

    def _record(self, job_id: str, exitcode: int | None) -> None:
        folder = self.job_folder(job_id)
        outcome: dict[str, Any] = {}
        with contextlib.suppress(OSError, ValueError):
            outcome = json.loads((folder / "outcome.json").read_text(encoding="utf-8"))
        if self.store.get(job_id) is None:  # deleted while it ran
            shutil.rmtree(folder, ignore_errors=True)
            return
        if outcome.get("status") == "done":
            numbers: dict[str, Any] = {}
            with contextlib.suppress(OSError, ValueError):
                numbers = headline(json.loads((folder / "result" / "summary.json").read_text(
                    encoding="utf-8")))
            self.store.finish(job_id, "done", None, numbers)
        elif outcome.get("status") == "failed":
            self.store.finish(job_id, "failed", str(outcome.get("error") or "unknown error"))
        else:
            how = (f"killed by signal {-exitcode}" if exitcode is not None and exitcode < 0
                   else f"exit code {exitcode}")
            self.store.finish(job_id, "failed", f"the analysis process ended without a result "
                              f"({how}; e.g. out of memory); delete the sample and upload it "
                              "again, or analyse it with 'active analyze' to see why")
