"""Whole-process detection speed, start-up and memory against a trained YOLOv8n (issue 31).

Each pipeline runs as its own process, as a user runs ``active detect``: start the interpreter,
import, load the ONNX model, then decode -> letterbox -> network -> NMS -> draw -> write the
annotated H.264 video, with decoding and drawing/writing in their own threads (``detect()`` of
``active.inference.detect``, the function behind the command). Pipelines:

- ACTIVE, a checkpoint exported to ONNX (fp32), at its input size and at any smaller ones given
  with ``--active-sizes`` (fewer pixels: what ``--um-per-px`` scale normalisation allows);
- YOLOv8n trained by this project's trainer (the Ultralytics adapter, ``--yolo``), exported to
  ONNX at each of ``--yolo-sizes`` (416x416, its native size, and ACTIVE's size), run by ONNX
  Runtime through the same ``detect()``: same letterbox, decode, drawing and writing; its
  post-processing is the adapter's (best class per box, score threshold, per-class plain-IoU NMS),
  here in numpy and OpenCV's ``NMSBoxesBatched`` so that its process imports no torch either.

Per pipeline: sperm AP50 on the held-out video (``--test-video``; both checkpoints must be trained
without it, e.g. fold 0 of a leave-one-video-out split), computed in this process with the same
pipeline objects at score threshold 0.001; then ``--repeats`` round-robin whole-process runs on
the benchmark video (``S_0004.mp4`` of the SVIA sample played forward and backward to
``--frames`` frames). Reported: start-up (process start to the first frame's detections), peak
RSS (the child's ``VmHWM``), whole-process frames/s (frames over the
process's wall time) and the ratio to YOLOv8n at 416.

    python scripts/bench_pipeline.py --active runs/shipped-plain-12k/fold0/last.pt \
        --yolo runs/yolov8n-fold0/last.pt --test-video S_0004 --doc docs/inference.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT.parent / "shared/data/svia-sample"


class YoloOnnx:
    """A YOLOv8n ONNX export behind the interface ``detect()`` uses; numpy + OpenCV only."""

    def __init__(self, path: Path, conf: float = 0.25, iou: float = 0.45,
                 threads: int | None = None, max_det: int = 300) -> None:
        from active.inference.backends import OnnxBackend

        self.backend = OnnxBackend(path, "cpu", threads)
        # the metadata through ONNX Runtime: importing the onnx package would cost this process
        # ~0.5 s of start-up that ACTIVE's does not pay
        meta = self.backend.session.get_modelmeta().custom_metadata_map
        self.names = tuple(json.loads(meta["names"]))
        self.imgsz = tuple(json.loads(meta["imgsz"]))
        self.weights = path
        self.conf, self.iou, self.max_det = conf, iou, max_det
        self.postprocess_config = argparse.Namespace(score_threshold=conf, iou_threshold=iou,
                                                      merge=False)
        self.rescorer = None
        self.timings = {"preprocess": 0.0, "inference": 0.0, "postprocess": 0.0}

    def predict_frames(self, frames, sources=None, indices=None, times=None):
        import cv2

        from active.data.transforms import letterbox_batch
        from active.inference.results import Results

        n = len(frames)
        sources, indices, times = sources or [None] * n, indices or list(range(n)), \
            times or [None] * n
        t0 = time.perf_counter()
        batch, metas = letterbox_batch(frames, self.imgsz)
        t1 = time.perf_counter()
        pred = self.backend.run(batch)[0]  # (B, 4 + nc, N): cx, cy, w, h (px), class scores
        t2 = time.perf_counter()
        out = []
        for i, p in enumerate(pred):
            p = p.T
            cls = p[:, 4:].argmax(1)
            scores = p[np.arange(len(p)), 4 + cls]
            keep = scores > self.conf
            p, scores, cls = p[keep], scores[keep], cls[keep]
            xywh = np.concatenate([p[:, :2] - p[:, 2:4] / 2, p[:, 2:4]], 1)
            k = np.asarray(cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores.tolist(), cls.tolist(),
                                                   self.conf, self.iou), dtype=np.int64)
            k = k.reshape(-1)[np.argsort(-scores[k.reshape(-1)], kind="stable")][: self.max_det]
            xyxy = np.concatenate([xywh[k, :2], xywh[k, :2] + xywh[k, 2:]], 1)
            h, w = self.imgsz
            xyxy = np.clip(xyxy, 0, [w, h, w, h])
            out.append(Results(metas[i].undo(xyxy).astype(np.float32),
                               scores[k].astype(np.float32), cls[k].astype(np.int64), self.names,
                               frames[i].shape[:2], sources[i], indices[i], times[i]))
        t3 = time.perf_counter()
        self.timings["preprocess"] += t1 - t0
        self.timings["inference"] += t2 - t1
        self.timings["postprocess"] += t3 - t2
        return out

    def __call__(self, image):
        return self.predict_frames([image])[0]


def export_yolo(weights: Path, imgsz: tuple[int, int], path: Path) -> Path:
    """The trained adapter's Ultralytics network, in export mode, to ONNX (raw (B, 4+nc, N))."""
    import onnx
    import torch

    from active.models.checkpoint import load_model

    model, data = load_model(weights)
    net = model.net.eval()
    for m in net.modules():
        if hasattr(m, "export") and hasattr(m, "format"):
            m.export, m.format = True, "onnx"
    net.fuse(verbose=False)
    program = torch.onnx.export(net, (torch.zeros(1, 3, *imgsz),), dynamo=True,
                                input_names=["images"], verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {"names": json.dumps(list(data["class_names"])),
                                        "imgsz": json.dumps(list(imgsz))})
    onnx.save(proto, str(path))
    return path


def bench_video(frames: int, folder: Path) -> tuple[Path, str]:
    from active.data.video import VideoReader, write_video

    src = SAMPLE / "original videos/S_0004.mp4"
    with VideoReader(src) as v:
        clip = [f.image for f in v]
    seq = clip + clip[::-1][1:-1]
    path = folder / "bench.mp4"
    write_video(path, [seq[i % len(seq)] for i in range(frames)], fps=30.0)
    return path, f"{src.name} (698x528) forward and backward, {frames} frames"


def child(kind: str, model: str, size: str, video: str, out: str, t_start: float) -> None:
    """One whole pipeline run; prints a JSON line (start-up, seconds, frames, torch imported)."""
    from active.inference.detect import DetectOptions, detect

    if kind == "active":
        from active.inference.predictor import Predictor

        h, w = (int(v) for v in size.split("x"))
        pred = Predictor(model, backend="onnx", imgsz=(h, w))
    else:
        pred = YoloOnnx(Path(model))
    first: list[float] = []
    inner = pred.predict_frames

    def predict_frames(*a, **k):
        r = inner(*a, **k)
        if not first:
            first.append(time.time())
        return r

    pred.predict_frames = predict_frames  # type: ignore[method-assign]
    s = detect(pred, video, DetectOptions(out=Path(out), progress=False))
    # VmHWM (peak resident set of this process's memory map) starts afresh at exec, unlike
    # ru_maxrss, which keeps the forking parent's size: so the child reads its own
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text()
               .splitlines() if line.startswith("VmHWM:"))
    print(json.dumps({"startup_s": first[0] - t_start, "frames": s.frames,
                      "peak_rss_mb": hwm / 1024,
                      "boxes_per_frame": sum(c["mean"] for c in s.counts.values()),
                      "stage_ms": s.stage_ms, "torch": "torch" in sys.modules}))


def run_child(kind: str, model: Path, size: tuple[int, int], video: Path, out: Path) -> dict:
    """Run one child as its own process and time it from before its start to its exit."""
    t0 = time.time()
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen([sys.executable, __file__, "--child", kind, str(model),
                              f"{size[0]}x{size[1]}", str(video), str(out), repr(t0)],
                             stdout=subprocess.PIPE, stderr=err, text=True)
        stdout, _ = p.communicate()
        wall = time.time() - t0
        if p.returncode:
            err.seek(0)
            raise SystemExit(f"{kind} {model} failed:\n{err.read()[-2000:]}")
    rec = json.loads(stdout.strip().splitlines()[-1])
    rec["wall_s"] = wall
    return rec


def sizes(texts: list[str]) -> list[tuple[int, int]]:
    """``["544x704", ...]`` (height x width) as (h, w) tuples."""
    return [(int(h), int(w)) for h, w in (t.split("x") for t in texts)]


def ap50(pipe, records) -> float:
    from active.data.ap import ImageResult, evaluate_ap

    res = [ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls)
           for r, d in zip(records, (pipe(r.image) for r in records), strict=True)]
    return evaluate_ap(res, pipe.names)["sperm"].ap


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:7], float(sys.argv[7]))
        return 0
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--active", type=Path, required=True, help="ACTIVE checkpoint (.pt)")
    ap.add_argument("--yolo", type=Path, default=None, help="YOLOv8n checkpoint of the adapter")
    ap.add_argument("--active-sizes", nargs="+", default=["544x704", "480x608", "416x544"])
    ap.add_argument("--yolo-sizes", nargs="+", default=["416x416", "544x704"])
    ap.add_argument("--active-extra", action="append", default=[], metavar="LABEL=PT@HxW",
                    help="another ACTIVE checkpoint at one input size, e.g. a model trained at "
                    "that size: 'trained at 448=runs/small/last.pt@352x448' (repeatable)")
    ap.add_argument("--test-video", default="S_0004")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", type=Path, default=Path("runs/bench-pipeline"))
    ap.add_argument("--doc", type=Path, default=None)
    args = ap.parse_args(argv)

    from active.data.dataset import load_dataset
    from active.inference.predictor import Predictor
    from active.models.export import export_onnx

    args.work.mkdir(parents=True, exist_ok=True)
    test = [r for r in load_dataset(SAMPLE) if r.video_id == args.test_video]
    pipes: list[tuple[str, str, Path, tuple[int, int]]] = []
    for s in sizes(args.active_sizes):
        act = export_onnx(args.active, args.work / f"active-{s[0]}x{s[1]}.onnx", imgsz=s)
        pipes.append((f"ACTIVE {s[1]}x{s[0]}", "active", act, s))
    for spec in args.active_extra:
        label, _, rest = spec.partition("=")
        weights, _, size = rest.rpartition("@")
        if not (label and weights and size):
            ap.error(f"--active-extra {spec!r}: expected LABEL=WEIGHTS@HxW")
        s = sizes([size])[0]
        act = export_onnx(Path(weights), args.work / f"extra-{len(pipes)}-{s[0]}x{s[1]}.onnx",
                          imgsz=s)
        pipes.append((f"ACTIVE {s[1]}x{s[0]} ({label})", "active", act, s))
    if args.yolo is not None:
        os.environ["YOLO_OFFLINE"] = "1"
        for s in sizes(args.yolo_sizes):
            onnx_path = export_yolo(args.yolo, s, args.work / f"yolov8n-{s[0]}x{s[1]}.onnx")
            pipes.append((f"YOLOv8n {s[1]}x{s[0]}", "yolo", onnx_path, s))
    acc = {}
    for name, kind, path, s in pipes:
        pipe = (Predictor(path, backend="onnx", imgsz=s, conf=0.001) if kind == "active"
                else YoloOnnx(path, conf=0.001))
        acc[name] = ap50(pipe, test)
        print(f"{name}: sperm AP50 on {args.test_video} = {acc[name]:.4f}", flush=True)

    runs: dict[str, list[dict]] = {p[0]: [] for p in pipes}
    with tempfile.TemporaryDirectory() as tmp:
        video, desc = bench_video(args.frames, Path(tmp))
        for _name, kind, path, s in pipes:  # warm the file cache
            run_child(kind, path, s, video, Path(tmp) / "warm")
        for i in range(args.repeats):
            for name, kind, path, s in pipes:
                runs[name].append(run_child(kind, path, s, video, Path(tmp) / f"r{i}"))
    base = next((n for n in runs if n.startswith("YOLOv8n 416")), None)
    med = {n: statistics.median(r["frames"] / r["wall_s"] for r in rs) for n, rs in runs.items()}
    lines = [f"Video: {desc}; each run a whole process (`detect()` of `active detect`: decode, "
             f"letterbox, network, NMS, draw, write H.264), {args.repeats} round-robin repeats "
             "(medians). AP50: sperm, on held-out video "
             f"{args.test_video} ({len(test)} frames), same pipeline at score threshold 0.001.",
             f"ACTIVE: `{args.active}`; YOLOv8n: `{args.yolo}`.",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
             f"{platform.python_version()}; date {time.strftime('%Y-%m-%d %H:%M')}.",
             f"Command: `python scripts/bench_pipeline.py {' '.join(argv or sys.argv[1:])}`", "",
             "| pipeline | sperm AP50 | start-up s | peak RSS MB | frames/s (whole process) "
             "| vs YOLOv8n 416 | network ms/frame | torch imported |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rs in runs.items():
        ratio = f"{med[name] / med[base]:.2f}x" if base else "-"
        lines.append(
            f"| {name} | {acc[name]:.3f} "
            f"| {statistics.median(r['startup_s'] for r in rs):.2f} "
            f"| {statistics.median(r['peak_rss_mb'] for r in rs):.0f} | {med[name]:.1f} "
            f"| {ratio} | {statistics.median(r['stage_ms']['inference'] for r in rs):.1f} "
            f"| {'yes' if any(r['torch'] for r in rs) else 'no'} |")
    table = "\n".join(lines)
    print(table)
    from active.utils.io import write_json

    write_json(args.work / "bench.json", {"accuracy": acc, "runs": runs, "table": table})
    if args.doc:
        from active.utils.io import write_between

        write_between(args.doc, "<!-- pipeline-bench -->", "<!-- /pipeline-bench -->", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
