"""Run a batch: plan the videos against the catalogue, analyse what is not done on a Dask
cluster, record each outcome as it arrives, then write the cohort summary.

>>> from active.batch import BatchOptions, expand, run_batch                # doctest: +SKIP
>>> jobs = expand(["archive/"], Calibration(um_per_px=0.35, chamber_depth_um=20))
>>> report = run_batch(jobs, Path("runs/batch"), AnalyzeOptions(), BatchOptions(workers=2))

The cluster is a :class:`distributed.LocalCluster` of ``workers`` processes (one task at a time
each, ONNX Runtime given ``cores // workers`` threads so the processes do not fight over cores),
or the cluster at ``scheduler`` (``tcp://host:8786``; its workers must see the video paths and
have ACTIVE installed). The client alone writes: per-video tables under ``videos/`` and the
catalogue, one transaction per video, so a run killed at any point resumes with nothing lost or
counted twice.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from active.analysis.run import AnalyzeOptions
from active.analysis.sample import combine_sample
from active.batch.catalogue import CATALOGUE, Catalogue, Planned, now, sha256_file, sha256_json
from active.batch.catalogue import video_key as make_key
from active.batch.cohort import sample_row, video_parts
from active.batch.inputs import VideoJob
from active.batch.worker import ModelCache, Outcome, Task, analyze_task
from active.errors import UsageError

log = logging.getLogger(__name__)


@dataclass
class BatchOptions:
    """How the batch runs: on a local cluster of ``workers`` processes (default: one per core)
    or on the cluster at ``scheduler``."""

    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True
    tables: bool = True  # tracks.csv, kinematics.csv, summary.json per video under videos/


@dataclass
class BatchReport:
    """What a run did, and how long each part took (seconds)."""

    out: Path
    catalogue: Path
    videos: int = 0  # distinct analyses the inputs ask for
    skipped: int = 0  # done by an earlier run
    done: int = 0
    failed: int = 0
    frames: int = 0
    workers: int = 0
    threads: int = 0
    plan_s: float = 0.0  # hashing and the catalogue's plan
    startup_s: float = 0.0  # the cluster up and the model cache registered
    run_s: float = 0.0  # first submission to last outcome recorded
    task_s: float = 0.0  # the sum of the workers' time in analyze_task
    summary: dict[str, str] = field(default_factory=dict)

    def format(self) -> str:
        rate = f", {60 * (self.done + self.failed) / self.run_s:.1f} videos/min" \
            if self.run_s > 0 and self.done + self.failed else ""
        threads = f"{self.threads} threads" if self.threads else "the workers' own threads"
        return (f"{self.videos} videos: {self.done} done, {self.failed} failed, {self.skipped} "
                f"already done (skipped); {self.workers} workers x {threads}{rate}\n"
                f"catalogue: {self.catalogue}")


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def video_params(job: VideoJob, options: AnalyzeOptions) -> dict[str, Any]:
    """Everything that changes one video's result, besides its bytes and the model: part of its
    catalogue key. (The dilution and the sample id change only the sample's numbers.)"""
    cal = job.calibration

    def num(v: float | None) -> float | None:  # 20 and 20.0 are one depth, and one key
        return None if v is None else float(v)

    return {"um_per_px": num(cal.um_per_px), "fps": num(cal.fps),
            "chamber_depth_um": num(cal.chamber_depth_um), "backend": options.backend,
            "conf": num(options.conf), "window": options.window,
            "resize_um_per_px": None if cal.um_per_px is not None
            else num(options.resize_um_per_px),
            "tracker": asdict(options.tracker), "grading": asdict(options.grading)}


def model_sha256(options: AnalyzeOptions) -> str:
    """The SHA-256 of the model file ``options`` name (the version in every key)."""
    from active.inference.predictor import resolve_weights

    path = resolve_weights(options.weights)
    if not path.is_file():
        raise UsageError(f"--weights {path}: no such model file")
    return sha256_file(path)


def plan(cat: Catalogue, jobs: list[VideoJob], options: AnalyzeOptions) -> list[Planned]:
    """Each job with its key (content hash, parameters, model)."""
    model = model_sha256(options)
    out = []
    for job in jobs:
        params = video_params(job, options)
        psha = sha256_json(params)
        content = cat.content_sha256(job.path)
        out.append(Planned(make_key(content, psha, model), job.path, job.sample_id, content,
                           params, psha, model))
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "_"


def _connect(options: BatchOptions, threads: int | None) -> tuple[Any, Any, int, int]:
    """The Dask client (and the local cluster it owns, if any), workers and ONNX threads each."""
    from distributed import Client, LocalCluster

    if options.scheduler is not None:
        try:
            client = Client(options.scheduler, timeout="20s")
        except (OSError, TimeoutError) as exc:
            raise UsageError(f"--scheduler {options.scheduler}: cannot connect ({exc})") from None
        n = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        return client, None, n, threads or 0
    n = options.workers or cores()
    each = threads or max(1, cores() // n)
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           dashboard_address=":0",  # any free port: never a clash
                           silence_logs=logging.CRITICAL)  # lost tasks are reported here
    return Client(cluster), cluster, n, each


def run_batch(jobs: list[VideoJob], out: Path, options: AnalyzeOptions,
              batch: BatchOptions | None = None,
              task: Callable[[Task], Outcome] = analyze_task) -> BatchReport:
    """Analyse ``jobs`` into ``out`` (module docstring); ``task`` is what each worker runs
    (tests wrap it to fail on purpose). Returns what was done; the catalogue holds the rest."""
    bopts = batch or BatchOptions()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report = BatchReport(out, out / CATALOGUE)
    cals = {j.sample_id: j.calibration for j in jobs}
    t0 = time.perf_counter()
    with Catalogue(report.catalogue) as cat:
        planned = plan(cat, jobs, options)
        keys = list(dict.fromkeys(p.key for p in planned))
        statuses = cat.statuses(keys)
        todo = {k for k in keys if statuses.get(k) != "done"}
        from active import __version__

        cat.start(planned, todo, __version__)
        report.videos, report.skipped = len(keys), len(keys) - len(todo)
        first: dict[str, tuple[Planned, VideoJob]] = {}
        for p, j in zip(planned, jobs, strict=True):
            first.setdefault(p.key, (p, j))  # a file listed twice is analysed once
        report.plan_s = time.perf_counter() - t0
        if todo:
            _run(cat, [first[k] for k in keys if k in todo], cals, options, bopts, task, report)
        cat.put_samples([sample_row(s, cals[s], cat.members(s), now()) for s in cals])
        from active.batch.summary import write_summary

        report.summary = write_summary(cat, out)
    return report


def _run(cat: Catalogue, todo: list[tuple[Planned, VideoJob]], cals: dict[str, Any],
         options: AnalyzeOptions, bopts: BatchOptions,
         task: Callable[[Task], Outcome], report: BatchReport) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    t0 = time.perf_counter()
    client, cluster, n, threads = _connect(bopts, options.threads)
    report.workers, report.threads = n, threads
    try:
        worker_opts = replace(options, threads=threads or None, progress=False, annotated=False,
                              report=False)
        client.register_plugin(ModelCache(worker_opts))
        tasks = [Task(p.key, str(p.path.resolve()), j.calibration) for p, j in todo]
        report.startup_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        futures = [client.submit(task, t, key=f"active-video-{t.key}", pure=False)
                   for t in tasks]
        planned = {p.key: (p, j) for p, j in todo}
        with tqdm(total=len(futures), unit="video", disable=not bopts.progress,
                  dynamic_ncols=True) as bar:
            for fut in as_completed(futures):
                outcome = _outcome(fut)
                _record(cat, *planned[outcome.key], outcome, cals, bopts, report)
                fut.release()
                bar.update(1)
                bar.set_postfix(failed=report.failed, refresh=False)
        report.run_s = time.perf_counter() - t1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _outcome(fut: Any) -> Outcome:
    """The worker's outcome, or a failure when the task itself was lost (its worker died more
    often than Dask's ``allowed-failures``, the cluster went away)."""
    key = str(fut.key).removeprefix("active-video-")
    try:
        return fut.result()
    except Exception as exc:
        return Outcome(key, "failed", error=f"the task was lost: {type(exc).__name__}: {exc}",
                       finished_at=now())


def _record(cat: Catalogue, p: Planned, job: VideoJob, outcome: Outcome, cals: dict[str, Any],
            bopts: BatchOptions, report: BatchReport) -> None:
    """Write one video's tables (first, atomically), then its row and its samples' rows in one
    transaction: a run killed between the two redoes the video, never counts it twice."""
    fields: dict[str, Any] = {"status": outcome.status, "error": outcome.error,
                              "worker": outcome.worker or None,
                              "started_at": outcome.started_at or None,
                              "finished_at": outcome.finished_at or now(),
                              "seconds": round(outcome.seconds, 4)}
    va = outcome.analysis
    report.task_s += outcome.seconds
    if outcome.status == "done" and va is not None:
        result = va.to_json(job.calibration.um_per_px)
        timings = result.pop("seconds")  # the result alone, comparable between runs
        fields.update(frames=va.frames, timings=json.dumps(timings),
                      model=json.dumps(outcome.model, sort_keys=True),
                      result=json.dumps(result, sort_keys=True),
                      parts=json.dumps(video_parts(va)))
        if bopts.tables:
            folder = report.out / "videos" / _safe(p.sample_id) / _safe(p.path.stem)
            from active.analysis.outputs import write_tables

            write_tables(combine_sample(p.sample_id, job.calibration, [va], outcome.model),
                         folder)
            fields["outputs"] = str(folder.relative_to(report.out))
        report.done += 1
        report.frames += va.frames
    else:
        report.failed += 1
    samples = [s for s in cat.samples_of(p.key) if s in cals]
    cat.finish(p.key, fields, lambda: [sample_row(s, cals[s], cat.members(s), now())
                                       for s in samples])
