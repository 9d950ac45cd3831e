"""End-to-end detection throughput on an SVIA video, side by side in one process.

Pipelines (each is ``active detect``'s: decode -> letterbox -> network -> NMS -> draw -> write
mp4, with decoding and drawing/writing in their own threads):

- ACTIVE (bundled model) with the PyTorch backend,
- ACTIVE with ONNX Runtime,
- any checkpoints given with ``--also``, with the PyTorch backend (a second-stage model, say),
- Ultralytics YOLOv8n (built from its yaml, 2 classes, random weights, nothing downloaded)
  exported to ONNX at the same input size, run by ONNX Runtime with the same letterbox,
  class-aware NMS (torchvision), drawing and writing. Skipped when ultralytics is absent.

The video is ``S_0004.mp4`` of the shared SVIA sample (698x528, 82 frames) played forward and
backward until ``--frames`` frames (real content, real decode cost), or a synthetic clip when the
sample is absent. The pipelines take turns ``--repeats`` times (round robin, so the noise of this
shared machine hits them alike); the table gives the best and the median frames/s of the threaded
runs, and a per-stage breakdown (ms per frame) from one single-threaded run of each.

    python scripts/bench_pipeline.py --frames 300 --repeats 3 --doc docs/speed.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from active.data.transforms import letterbox_batch
from active.data.video import VideoReader, write_video
from active.inference.detect import DetectOptions, detect
from active.inference.predictor import Predictor
from active.inference.results import Results

SAMPLE = Path(__file__).resolve().parents[2] / "shared/data/svia-sample/original videos/S_0004.mp4"


class YoloV8Onnx:
    """Ultralytics YOLOv8n exported to ONNX, behind the interface ``detect`` uses."""

    def __init__(self, imgsz: tuple[int, int], names: tuple[str, ...], threads: int,
                 conf: float = 0.25, iou: float = 0.45, max_det: int = 300) -> None:
        os.environ["YOLO_OFFLINE"] = "1"
        from ultralytics.nn.tasks import DetectionModel

        from active.inference.backends import OnnxBackend

        torch.manual_seed(0)
        model = DetectionModel("yolov8n.yaml", nc=len(names), verbose=False).eval()
        for m in model.modules():
            if hasattr(m, "export") and hasattr(m, "format"):
                m.export, m.format = True, "onnx"
        model.fuse(verbose=False)
        program = torch.onnx.export(model, (torch.zeros(1, 3, *imgsz),), dynamo=True,
                                    input_names=["images"], verbose=False)
        self.backend = OnnxBackend(program.model_proto.SerializeToString(), "cpu", threads,
                                   origin="yolov8n.onnx")
        self.backend.name = "onnx"
        self.names, self.imgsz = names, imgsz
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.weights = Path("yolov8n.yaml (random weights)")
        self.postprocess_config = argparse.Namespace(score_threshold=conf, iou_threshold=iou)
        self.timings = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}

    def predict_frames(self, frames, sources, indices, times) -> list[Results]:
        from torchvision.ops import batched_nms

        t0 = time.perf_counter()
        batch, metas = letterbox_batch(frames, self.imgsz)
        t1 = time.perf_counter()
        # (B, 4 + nc, N): cx, cy, w, h, class scores
        pred = torch.from_numpy(self.backend.run(batch)[0])
        t2 = time.perf_counter()
        results = []
        for i, p in enumerate(pred):
            p = p.T
            scores, cls = p[:, 4:].max(1)
            keep = scores > self.conf
            p, scores, cls = p[keep], scores[keep], cls[keep]
            xy, wh = p[:, :2], p[:, 2:4]
            boxes = torch.cat([xy - wh / 2, xy + wh / 2], 1)
            k = batched_nms(boxes, scores, cls, self.iou)[: self.max_det]
            results.append(Results(metas[i].undo(boxes[k].numpy()).astype(np.float32),
                                   scores[k].numpy(), cls[k].numpy().astype(np.int64),
                                   self.names, frames[i].shape[:2], sources[i], indices[i],
                                   times[i]))
        t3 = time.perf_counter()
        self.timings["preprocess"] += t1 - t0
        self.timings["inference"] += t2 - t1
        self.timings["postprocess"] += t3 - t2
        return results


def bench_video(frames: int, folder: Path) -> tuple[Path, str]:
    """The benchmark video (ping-pong of S_0004 up to ``frames``), or a synthetic clip."""
    if SAMPLE.is_file():
        with VideoReader(SAMPLE) as v:
            clip = [f.image for f in v]
        desc = f"{SAMPLE.name} (698x528) forward and backward"
    else:
        from active.data.synth import SynthConfig, render_video

        clip = render_video(SynthConfig(frames=60), 7, "BENCH").frames
        desc = "a synthetic 698x528 clip (SVIA sample not found)"
    seq = clip + clip[::-1][1:-1]
    out = [seq[i % len(seq)] for i in range(frames)]
    path = folder / "bench.mp4"
    write_video(path, out, fps=30.0)
    return path, f"{desc}, {frames} frames"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="default")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--imgsz", type=int, nargs=2, default=None, metavar=("H", "W"))
    ap.add_argument("--no-yolo", action="store_true")
    ap.add_argument("--also", nargs="*", default=[], metavar="WEIGHTS",
                    help="more checkpoints to time with the PyTorch backend (e.g. one with a "
                    "second stage, which does not export)")
    ap.add_argument("--doc", type=Path, default=None, help="write the tables between the "
                    "'pipeline-bench' markers of this Markdown file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    imgsz = tuple(args.imgsz) if args.imgsz else None
    pipes: dict[str, object] = {
        "ACTIVE, PyTorch": Predictor(args.weights, backend="torch", device="cpu", imgsz=imgsz,
                                     threads=args.threads),
        "ACTIVE, ONNX Runtime": Predictor(args.weights, backend="onnx", device="cpu",
                                          imgsz=imgsz, threads=args.threads),
    }
    size = pipes["ACTIVE, PyTorch"].imgsz
    for weights in args.also:
        extra = Predictor(weights, backend="torch", device="cpu", imgsz=size, threads=args.threads)
        pipes[f"{extra.spec.description}, PyTorch ({weights})"] = extra
    if not args.no_yolo:
        try:
            pipes["YOLOv8n, ONNX Runtime"] = YoloV8Onnx(size, pipes["ACTIVE, PyTorch"].names,
                                                        args.threads)
        except Exception as exc:  # ultralytics missing or its export failing
            print(f"skipping YOLOv8n: {exc!r}", file=sys.stderr)
    fps: dict[str, list[float]] = {k: [] for k in pipes}
    stages: dict[str, dict[str, float]] = {}
    dets: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        video, desc = bench_video(args.frames, Path(tmp))
        for name, p in pipes.items():  # warm-up and the per-stage breakdown (one thread)
            s = detect(p, video, DetectOptions(out=Path(tmp) / "seq", threads=False,
                                               progress=False))
            stages[name] = s.stage_ms
            dets[name] = sum(c["mean"] for c in s.counts.values())
        for _ in range(args.repeats):
            for name, p in pipes.items():
                s = detect(p, video, DetectOptions(out=Path(tmp) / "thr", progress=False))
                fps[name].append(s.fps)
    lines = [f"Video: {desc}. Input {size[1]}x{size[0]} (letterbox), batch 1, "
             f"{args.threads} threads, {args.repeats} round-robin repeats.",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
             f"torch {torch.__version__}; date {time.strftime('%Y-%m-%d %H:%M')}.",
             f"Command: `python scripts/bench_pipeline.py {' '.join(argv or sys.argv[1:])}`", "",
             "| pipeline | end-to-end frames/s (best) | median | boxes/frame |",
             "|---|---|---|---|"]
    for name in pipes:
        lines.append(f"| {name} | {max(fps[name]):.1f} | {statistics.median(fps[name]):.1f} | "
                     f"{dets[name]:.1f} |")
    keys = list(next(iter(stages.values())))
    lines += ["", "Milliseconds per frame by stage (single-threaded run, stages in sequence):",
              "", "| pipeline | " + " | ".join(keys) + " | sum |",
              "|---|" + "---|" * (len(keys) + 1)]
    for name, st in stages.items():
        lines.append(f"| {name} | " + " | ".join(f"{st[k]:.1f}" for k in keys)
                     + f" | {sum(st.values()):.1f} |")
    table = "\n".join(lines)
    print(table)
    if args.doc:
        from active.utils.io import write_between

        write_between(args.doc, "<!-- pipeline-bench -->", "<!-- /pipeline-bench -->", table)


if __name__ == "__main__":
    main()
