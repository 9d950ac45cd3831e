"""Network time of the shipped architecture with each activation ONNX Runtime could run (issue 31).

The fold-0 checkpoint of the shipped recipe is rebuilt with SiLU, ReLU, LeakyReLU and Hardswish
(activations have no weights, so the same state dict loads; the accuracy is meaningless, the
time is not), exported to ONNX at 704x544, ReLU and LeakyReLU also quantized to int8 (ONNX
Runtime's static QDQ, 16 frames of the training videos), and timed round robin, batch 1, at one
and two intra-op threads; then the SiLU and ReLU networks at smaller inputs beside YOLOv8n-416.

    python results/2026-12-07-relu/act_timing.py
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from active.data.dataset import load_dataset  # noqa: E402
from active.inference.predictor import Predictor  # noqa: E402
from active.models.checkpoint import read_checkpoint  # noqa: E402
from active.models.export import export_onnx  # noqa: E402
from quantize_experiment import calibration_batches, quantize, time_networks  # noqa: E402

out = ROOT / "runs/act-timing"
out.mkdir(parents=True, exist_ok=True)
data = read_checkpoint(ROOT / "runs/shipped-plain-12k/fold0/last.pt")
paths = {}
for act in ("silu", "relu", "leaky_relu", "hardswish"):
    d = {**data, "model_config": {**data["model_config"], "act": act}}
    torch.save(d, out / f"{act}.pt")
    paths[act] = export_onnx(out / f"{act}.pt", out / f"{act}.onnx")
recs = [r for r in load_dataset(ROOT.parent / "shared/data/svia-sample") if r.video_id != "S_0004"]
batches = calibration_batches(Predictor(paths["relu"], backend="onnx", conf=0.001), recs, 16)
for a in ("relu", "leaky_relu"):
    q = out / f"{a}-int8.onnx"
    if not q.exists():
        quantize(paths[a], q, batches, "MinMax")
    paths[a + "-int8"] = q
for threads in (1, 2):
    timing = time_networks(paths, batches[0], 30, threads)
    print(f"704x544, {threads} thread(s):", json.dumps(timing))

sized = {"yolov8n-416": ROOT / "runs/bench-pipeline/yolov8n-416x416.onnx"}
inputs = {"yolov8n-416": np.random.default_rng(0).random((1, 3, 416, 416), dtype=np.float32)}
for h, w in ((544, 704), (480, 608), (416, 544), (384, 480)):
    for act in ("silu", "relu"):
        name = f"{act}-{w}x{h}"
        sized[name] = export_onnx(out / f"{act}.pt", out / f"{name}.onnx", imgsz=(h, w))
        inputs[name] = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
print("by size, 2 threads:", json.dumps({n: time_networks({n: p}, inputs[n], 25, 2)[n]["median_ms"]
                                          for n, p in sized.items()}))
