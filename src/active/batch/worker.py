"""What runs on a Dask worker: one video's analysis, with the detector loaded once per worker.

:class:`ModelCache` is a Dask worker plugin: registered once by the client, it is installed on
every worker (and on a worker that restarts after a crash) and keeps that worker's detectors, so
the model is loaded on a worker's first video, not on every video. :func:`analyze_task` analyses
one video and returns its :class:`Outcome`; a failure is returned as an outcome too (never
raised), so a bad video is recorded and the batch goes on. Workers write nothing: the client
writes the catalogue and the tables.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distributed import WorkerPlugin, get_worker

from active.analysis.calibration import Calibration
from active.analysis.run import (
    AnalyzeOptions,
    analyze_video,
    load_predictor,
    model_info,
    video_rate,
)
from active.analysis.sample import VideoAnalysis
from active.batch.catalogue import now
from active.errors import describe_failure

PLUGIN = "active-model-cache"


@dataclass(frozen=True)
class Task:
    """One video to analyse: its catalogue key, file and calibration (``fps``: an override)."""

    key: str
    path: str
    calibration: Calibration


@dataclass
class Outcome:
    """What a worker returns for one video: its analysis, or the error that stopped it."""

    key: str
    status: str  # "done" or "failed"
    analysis: VideoAnalysis | None = None
    model: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    worker: str = ""
    started_at: str = ""
    finished_at: str = ""
    seconds: float = 0.0


class ModelCache(WorkerPlugin):
    """Each worker's detectors, one per frame scale, loaded on first use (module docstring)."""

    name = PLUGIN

    def __init__(self, options: AnalyzeOptions) -> None:
        self.options = options
        self._predictors: dict[float | None, Any] = {}

    def setup(self, worker: Any) -> None:
        self._predictors = {}

    def predictor(self, calibration: Calibration) -> Any:
        scale = (calibration.um_per_px if calibration.um_per_px is not None
                 else self.options.resize_um_per_px)
        if scale not in self._predictors:
            self._predictors[scale] = load_predictor(self.options, calibration)
        return self._predictors[scale]


def _worker_cache() -> ModelCache:
    return get_worker().plugins[PLUGIN]  # type: ignore[return-value]


def analyze_task(task: Task) -> Outcome:
    """Analyse one video on this worker (module docstring)."""
    started, t0 = now(), time.perf_counter()
    who = f"{socket.gethostname()}:{os.getpid()}"
    try:
        cache = _worker_cache()
        path = Path(task.path)
        fps, fps_from = video_rate(path, task.calibration)
        predictor = cache.predictor(task.calibration)
        with tempfile.TemporaryDirectory(prefix="active-batch-") as scratch:
            va, _ = analyze_video(path, fps, fps_from, task.calibration, predictor,
                                  cache.options, Path(scratch))
        model = model_info(predictor)
        meta = getattr(predictor.backend, "metadata", None) or {}
        if meta.get("checkpoint_sha256"):  # the checkpoint an ONNX file was exported from
            model["checkpoint_sha256"] = meta["checkpoint_sha256"]
    except Exception as exc:  # recorded in the catalogue; the batch goes on
        return Outcome(task.key, "failed", error=describe_failure(exc), worker=who,
                       started_at=started, finished_at=now(), seconds=time.perf_counter() - t0)
    return Outcome(task.key, "done", va, model, None, who, started, now(),
                   time.perf_counter() - t0)
