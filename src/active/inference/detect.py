"""``active detect``: run a predictor over a source and write what a lab needs.

Outputs in the run folder (each written to a temporary name and renamed when complete)::

    annotated.mp4        (video source; or annotated/<image> for images) boxes coloured by
                         class and a live count overlay
    counts.csv           one row per frame: source, frame, time, a count per class
    detections.json      every detection: source, frame, time, class, score, pixel xyxy box
    summary.json         frames, mean/median/min/max count per class per frame, speed per stage
    crops/<class>/...    (``save_crops``) one PNG per detection

Decoding runs in a reader thread and drawing/encoding in a writer thread, so on a 2-core CPU they
overlap with the network (OpenCV and ONNX Runtime release the GIL).
"""

from __future__ import annotations

import csv
import io
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from active.data.images import write_image
from active.data.video import VideoWriter
from active.inference.predictor import Predictor
from active.inference.results import Results
from active.inference.sources import FrameSource, SourceFrame
from active.utils.draw import draw_boxes, draw_counts
from active.utils.io import write_json, write_text

_DONE = object()


@dataclass
class DetectOptions:
    """What ``active detect`` writes and how it runs."""

    out: Path = Path("runs/detect")
    save_annotated: bool = True
    video: bool | None = None  # annotated video (default: for a video source) or images
    save_crops: bool = False
    crop_margin: int = 4
    labels: bool = False  # class name and score beside each box
    batch: int = 1
    threads: bool = True  # decode and draw/write in their own threads
    progress: bool = True


@dataclass
class DetectSummary:
    """The numbers of one run (also written as ``summary.json``)."""

    source: str
    frames: int
    names: tuple[str, ...]
    counts: dict[str, dict[str, float]]
    seconds: float
    stage_ms: dict[str, float]
    outputs: dict[str, str]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "frames": self.frames, "classes": list(self.names),
                "count_per_frame": self.counts, "seconds": round(self.seconds, 3),
                "fps": round(self.fps, 2), "stage_ms_per_frame": self.stage_ms,
                "outputs": self.outputs, **self.extra}

    def format(self) -> str:
        lines = [f"{self.source}: {self.frames} frames in {self.seconds:.1f} s "
                 f"({self.fps:.1f} frames/s)",
                 f"{'class':<10} {'mean':>7} {'median':>7} {'min':>5} {'max':>5} {'total':>7}"]
        for name in self.names:
            c = self.counts[name]
            lines.append(f"{name:<10} {c['mean']:>7.2f} {c['median']:>7.1f} {c['min']:>5.0f} "
                         f"{c['max']:>5.0f} {c['total']:>7.0f}")
        stages = ", ".join(f"{k} {v:.1f}" for k, v in self.stage_ms.items())
        lines.append(f"ms per frame by stage: {stages}")
        lines += [f"{k}: {v}" for k, v in self.outputs.items()]
        return "\n".join(lines)


def count_stats(per_frame: np.ndarray) -> dict[str, float]:
    if per_frame.size == 0:
        return {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0, "std": 0.0, "total": 0.0}
    return {"mean": round(float(per_frame.mean()), 3), "median": float(np.median(per_frame)),
            "min": float(per_frame.min()), "max": float(per_frame.max()),
            "std": round(float(per_frame.std()), 3), "total": float(per_frame.sum())}


def annotate(image: np.ndarray, result: Results, labels: bool = False) -> np.ndarray:
    """The frame with its boxes (coloured by class) and the per-class counts in a corner."""
    out = draw_boxes(image, result.xyxy, result.cls, result.names,
                     result.conf if labels else None, thickness=1, show_labels=labels)
    return draw_counts(out, result.counts())


def _crop(image: np.ndarray, box: np.ndarray, margin: int) -> np.ndarray:
    h, w = image.shape[:2]
    x0, y0 = max(0, int(box[0]) - margin), max(0, int(box[1]) - margin)
    x1, y1 = min(w, int(np.ceil(box[2])) + margin), min(h, int(np.ceil(box[3])) + margin)
    return image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


class _Worker(threading.Thread):
    """A daemon thread that keeps the first exception for the main thread to re-raise."""

    def __init__(self, target: Any) -> None:
        super().__init__(daemon=True)
        self._fn = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._fn()
        except BaseException as exc:  # handed to the main thread
            self.error = exc


class _Sink:
    """Draws and writes frames; used inline or from the writer thread."""

    def __init__(self, source: FrameSource, opts: DetectOptions) -> None:
        self.opts = opts
        self.video_out = opts.video if opts.video is not None else source.kind == "video"
        self.writer: VideoWriter | None = None
        self.paths: dict[str, str] = {}
        if opts.save_annotated and self.video_out:
            self.writer = VideoWriter(opts.out / "annotated.mp4", fps=source.fps or 30.0)
            self.paths["annotated"] = str(opts.out / "annotated.mp4")
        elif opts.save_annotated:
            self.paths["annotated"] = str(opts.out / "annotated")
        if opts.save_crops:
            self.paths["crops"] = str(opts.out / "crops")
        self.draw_s = 0.0
        self.write_s = 0.0

    def __call__(self, frame: SourceFrame, result: Results) -> None:
        opts = self.opts
        if opts.save_annotated:
            t0 = time.perf_counter()
            img = annotate(frame.image, result, opts.labels)
            t1 = time.perf_counter()
            if self.writer is not None:
                self.writer.write(img, frame.source if frame.time is None else None)
            else:
                write_image(opts.out / "annotated" / Path(frame.source).name, img)
            self.draw_s += t1 - t0
            self.write_s += time.perf_counter() - t1
        if opts.save_crops:
            stem = Path(frame.source).stem
            for i, (box, c) in enumerate(zip(result.xyxy, result.cls, strict=True)):
                write_image(opts.out / "crops" / result.names[int(c)]
                            / f"{stem}_{frame.index:06d}_{i:03d}.png",
                            _crop(frame.image, box, opts.crop_margin))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def detect(predictor: Predictor, source: str | Path, opts: DetectOptions | None = None,
           on_result: Callable[[SourceFrame, Results], None] | None = None) -> DetectSummary:
    """Detect on every frame of ``source`` and write the outputs into ``opts.out``;
    ``on_result(frame, result)`` (if given) sees every frame's result in order."""
    opts = opts or DetectOptions()
    frames_src = FrameSource(source)
    opts.out.mkdir(parents=True, exist_ok=True)
    sink = _Sink(frames_src, opts)
    for k in predictor.timings:
        predictor.timings[k] = 0.0
    decode_s = 0.0
    rows: list[list[Any]] = []
    detections: list[dict[str, Any]] = []
    per_class: list[list[int]] = []
    bar = None
    if opts.progress:
        from tqdm import tqdm

        bar = tqdm(total=frames_src.total or None, unit="frame", desc=frames_src.stem,
                   dynamic_ncols=True)

    def timed_frames():
        nonlocal decode_s
        it = iter(frames_src)
        while True:
            t0 = time.perf_counter()
            try:
                f = next(it)
            except StopIteration:
                return
            decode_s += time.perf_counter() - t0
            yield f

    reader_q: queue.Queue = queue.Queue(maxsize=max(8, 2 * opts.batch))
    sink_q: queue.Queue = queue.Queue(maxsize=16)
    workers: list[_Worker] = []
    stop = threading.Event()

    def read_all() -> None:
        try:
            for f in timed_frames():
                while not stop.is_set():
                    try:
                        reader_q.put(f, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        finally:
            while True:  # the end marker; when stopping, nobody may be left to make room
                try:
                    reader_q.put(_DONE, timeout=0.1)
                    break
                except queue.Full:
                    if stop.is_set():
                        break

    def sink_all() -> None:
        while True:
            try:
                item = sink_q.get(timeout=0.1)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            if item is _DONE or stop.is_set():
                return
            sink(*item)

    def handle(batch: list[SourceFrame]) -> None:
        results = predictor.predict_frames([f.image for f in batch], [f.source for f in batch],
                                           [f.index for f in batch], [f.time for f in batch])
        for f, r in zip(batch, results, strict=True):
            counts = r.counts()
            per_class.append([counts[n] for n in predictor.names])
            rows.append([f.source, f.index, "" if f.time is None else round(f.time, 4),
                         *per_class[-1], len(r)])
            detections.extend(r.to_json())
            if on_result is not None:
                on_result(f, r)
            if opts.threads:
                while True:
                    if workers[1].error is not None:
                        raise workers[1].error
                    try:
                        sink_q.put((f, r), timeout=0.1)
                        break
                    except queue.Full:
                        continue
            else:
                sink(f, r)
        if bar is not None:
            bar.update(len(batch))

    def queued_frames():
        while (item := reader_q.get()) is not _DONE:
            yield item

    start = time.perf_counter()
    try:
        if opts.threads:
            workers[:] = [_Worker(read_all), _Worker(sink_all)]
            for w in workers:
                w.start()
        batch: list[SourceFrame] = []
        for f in queued_frames() if opts.threads else timed_frames():
            batch.append(f)
            if len(batch) == opts.batch:
                handle(batch)
                batch = []
        if batch:
            handle(batch)
        if opts.threads:
            sink_q.put(_DONE)
            for w in workers:
                w.join()
            for w in workers:
                if w.error is not None:
                    raise w.error
        sink.close()
    except BaseException:
        stop.set()
        for w in workers:
            w.join(timeout=5)
        sink.abort()
        raise
    finally:
        frames_src.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    n = len(rows)
    counts_arr = np.asarray(per_class, dtype=np.int64).reshape(n, len(predictor.names))
    summary = DetectSummary(
        source=str(source), frames=n, names=predictor.names,
        counts={name: count_stats(counts_arr[:, i]) for i, name in enumerate(predictor.names)},
        seconds=seconds,
        stage_ms={k: round(1000 * v / max(n, 1), 2) for k, v in
                  {"decode": decode_s, **predictor.timings, "draw": sink.draw_s,
                   "write": sink.write_s}.items()},
        outputs={**sink.paths, "counts": str(opts.out / "counts.csv"),
                 "detections": str(opts.out / "detections.json"),
                 "summary": str(opts.out / "summary.json")},
        extra={"model": str(predictor.weights) if len(getattr(predictor, "members", ())) < 2
               else [str(w) for w in predictor.members], "backend": predictor.backend.name,
               "imgsz": list(predictor.imgsz),
               "score_threshold": getattr(predictor, "conf",
                                          predictor.postprocess_config.score_threshold),
               "iou_threshold": predictor.postprocess_config.iou_threshold,
               "merge": predictor.postprocess_config.merge,
               "tta": getattr(predictor, "tta", False) or getattr(predictor, "ensemble_tta",
                                                                  False),
               "rescorer_weight": (None if getattr(predictor, "rescorer", None) is None
                                   else predictor.rescorer.weight),
               "threads": opts.threads, "batch": opts.batch},
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["source", "frame", "time", *predictor.names, "total"])
    w.writerows(rows)
    write_text(opts.out / "counts.csv", buf.getvalue())
    write_json(opts.out / "detections.json",
               {"source": str(source), "classes": list(predictor.names),
                "box_format": "pixel xyxy, 0-based, right/bottom exclusive",
                "detections": detections}, indent=None)
    write_json(opts.out / "summary.json", summary.to_json())
    return summary
