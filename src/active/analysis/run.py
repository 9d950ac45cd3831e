"""``active analyze``: detect in every video of a sample, then track, measure, grade and count,
and write the report.

>>> from active import analyze                                          # doctest: +SKIP
>>> result = analyze(["S_0001.mp4"], Calibration(um_per_px=0.35, chamber_depth_um=20))
>>> result.concentration.m_per_ml, result.motility.progressive_pct

Outputs in ``out`` (each written to a temporary name, then renamed)::

    report.html          the sample's report (self-contained, printable)
    summary.json         every sample number, machine-readable (``schema_version``)
    tracks.csv           frame, time, track id, class, x/y in px and µm, box, score
    kinematics.csv       one row per track: WHO kinematics and grade
    videos/<name>/annotated.mp4   track ids and tails coloured by grade
    videos/<name>/counts.csv, detections.json, summary.json   the detector's own outputs

Every video is checked (readable, a usable frame rate or ``--fps``) before any is analysed, so a
bad input fails at once and writes nothing.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from active.analysis.calibration import Calibration
from active.analysis.grades import GradeConfig
from active.analysis.outputs import write_tables
from active.analysis.sample import (
    SampleAnalysis,
    VideoAnalysis,
    analyze_detections,
    combine_sample,
)
from active.analysis.tracking import TrackerConfig
from active.data.video import VideoReader
from active.errors import UsageError, VideoError


@dataclass
class AnalyzeOptions:
    """How ``analyze`` runs and what it writes."""

    weights: str | Path = "default"
    backend: str = "auto"
    conf: float | None = None
    threads: int | None = None
    annotated: bool = True
    report: bool = True
    progress: bool = False
    profile: str | None = None  # the microscope profile the threshold came from, if any
    #: µm/px to resize frames to the model's scale when the calibration has none for measuring
    #: (a profile's estimate from head size).
    resize_um_per_px: float | None = None
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    grading: GradeConfig = field(default_factory=GradeConfig)
    window: int = 5
    #: Called after each frame is detected with the video's path and how many of its frames are
    #: done (the web page's progress); it runs inside the detection loop, so it must be quick.
    on_frame: Callable[[Path, int], None] | None = None


def video_rate(path: Path, calibration: Calibration) -> tuple[float, str]:
    """The frame rate to use for ``path`` and where it came from; an error when there is none."""
    with VideoReader(path) as video:
        info = video.info
    if calibration.fps is not None:
        return calibration.fps, "--fps"
    if not info.fps_known:
        raise UsageError(f"{path}: the video states no usable frame rate; give it with --fps "
                         "(speeds and grades are per second)")
    return info.fps, "container"


def model_info(predictor: Any) -> dict[str, Any]:
    """What the report says about the detector: file, hash, backend, input size, threshold."""
    from active.utils.io import file_sha256

    weights = Path(str(predictor.weights))
    return {"weights": weights.name, "sha256": file_sha256(weights)[:16] if weights.is_file()
            else None, "backend": predictor.backend.name, "imgsz": list(predictor.imgsz),
            "score_threshold": float(getattr(predictor, "conf", 0.25)),
            "threshold_from": getattr(predictor, "operating_point", None),
            "model_um_per_px": getattr(predictor, "model_um_per_px", None),
            "resize_factor": getattr(predictor, "scale_factor", None),
            "classes": list(predictor.names)}


def analyze(videos: Sequence[str | Path], calibration: Calibration | None = None,
            out: str | Path | None = None, sample_id: str | None = None,
            options: AnalyzeOptions | None = None) -> SampleAnalysis:
    """Analyse one sample recorded in ``videos`` (replicate fields); write its outputs into
    ``out`` when given. Returns the typed result (``.motility``, ``.concentration``,
    ``.videos[i].tracks``, ``.to_json()``)."""
    cal = calibration or Calibration()
    opts = options or AnalyzeOptions()
    paths = [Path(v) for v in videos]
    if not paths:
        raise UsageError("analyze needs at least one video")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise UsageError("two videos of one sample have the same file name: "
                         + ", ".join(sorted({n for n in names if names.count(n) > 1})))
    rates = [video_rate(p, cal) for p in paths]  # fail before any work
    sample_id = sample_id or paths[0].stem
    out_dir = Path(out) if out is not None else None
    predictor = load_predictor(opts, cal)
    # Annotated videos are drawn in a background thread (OpenCV's decode, draw and encode
    # release the GIL) while the next video is detected and the report is made.
    with tempfile.TemporaryDirectory(prefix="active-analyze-") as scratch, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="annotate") as pool:
        jobs: list[Future[None]] = []
        try:
            sample, first_frames = _run(paths, rates, cal, predictor, opts, out_dir,
                                        Path(scratch), pool, jobs)
            sample.sample_id = sample_id
            if out_dir is not None and opts.report:
                from active.analysis.report import write_report

                write_report(sample, out_dir, first_frames)
            for job in jobs:
                job.result()  # re-raise a failure of the annotated video here
        except BaseException:
            for job in jobs:
                job.cancel()
            raise
    if out_dir is not None:
        write_tables(sample, out_dir)  # last: summary.json carries every stage's time
    return sample


def load_predictor(options: AnalyzeOptions, calibration: Calibration) -> Any:
    """The detector ``options`` ask for, set to see frames of ``calibration``'s scale (or the
    profile's estimate) at the size the model was trained at."""
    from active.inference.predictor import Predictor

    kwargs: dict[str, Any] = {"backend": options.backend, "threads": options.threads}
    if options.conf is not None:
        kwargs["conf"] = options.conf
    predictor = Predictor(options.weights, **kwargs)
    resize = (calibration.um_per_px if calibration.um_per_px is not None
              else options.resize_um_per_px)
    if resize is not None and predictor.model_um_per_px is not None:
        predictor.set_scale(resize)  # heads reach the network at its trained size
    return predictor


def analyze_video(path: Path, fps: float, fps_from: str, calibration: Calibration,
                  predictor: Any, options: AnalyzeOptions, det_dir: Path
                  ) -> tuple[VideoAnalysis, np.ndarray | None]:
    """Detect in every frame of one video (the detector's own outputs go into ``det_dir``),
    then track, measure, grade and count it; returns its analysis and its first frame."""
    from active.inference.detect import DetectOptions, detect

    got = _Collected(path=path, on_frame=options.on_frame)
    t0 = time.perf_counter()
    detect(predictor, path, DetectOptions(out=det_dir, save_annotated=False,
                                          progress=options.progress), got.keep)
    t1 = time.perf_counter()
    if not got.boxes:
        raise VideoError(path, "no frame could be decoded")
    va = analyze_detections(got.boxes, got.classes, got.scores, predictor.names, got.size, fps,
                            calibration, str(path), fps_from, options.tracker, options.grading,
                            options.window)
    va.seconds = {"detection": t1 - t0, **va.seconds}
    return va, got.first


def write_outputs(sample: SampleAnalysis, out: Path, first_frames: dict[str, np.ndarray | None],
                  report: bool = True) -> dict[str, str]:
    """Write the tables and (``report``) report.html into ``out``; returns the paths."""
    paths = write_tables(sample, out)
    if report:
        from active.analysis.report import write_report

        paths["report"] = str(write_report(sample, out, first_frames))
    return paths


def _annotate(path: Path, va: VideoAnalysis, out: Path, fps: float) -> None:
    from active.analysis.annotate import write_annotated_video

    t0 = time.perf_counter()
    write_annotated_video(path, va, out, fps)
    va.seconds["annotated_video"] = time.perf_counter() - t0


@dataclass
class _Collected:
    """The detector's output for one video, frame by frame (and its first frame, for plots)."""

    boxes: list[np.ndarray] = field(default_factory=list)
    classes: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    first: np.ndarray | None = None
    path: Path = Path()
    on_frame: Callable[[Path, int], None] | None = None

    def keep(self, frame: Any, r: Any) -> None:
        if self.first is None:
            self.size = (int(r.shape[1]), int(r.shape[0]))
            self.first = frame.image
        self.boxes.append(r.xyxy)
        self.classes.append(r.cls)
        self.scores.append(r.conf)
        if self.on_frame is not None:
            self.on_frame(self.path, len(self.boxes))


def _run(paths: list[Path], rates: list[tuple[float, str]], cal: Calibration, predictor: Any,
         opts: AnalyzeOptions, out_dir: Path | None, scratch: Path, pool: ThreadPoolExecutor,
         jobs: list[Future[None]]) -> tuple[SampleAnalysis, dict[str, np.ndarray | None]]:
    analyses = []
    first_frames: dict[str, np.ndarray | None] = {}
    for path, (fps, fps_from) in zip(paths, rates, strict=True):
        det_dir = (out_dir if out_dir is not None else scratch) / "videos" / path.stem
        va, first_frames[str(path)] = analyze_video(path, fps, fps_from, cal, predictor, opts,
                                                    det_dir)
        if out_dir is not None and opts.annotated:
            jobs.append(pool.submit(_annotate, path, va, det_dir / "annotated.mp4", fps))
        analyses.append(va)
    model = model_info(predictor)
    if opts.profile is not None:
        model.update(threshold_from="profile", profile=str(opts.profile))
    return combine_sample("", cal, analyses, model), first_frames
