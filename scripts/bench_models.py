"""The paper's comparison, measured: train and evaluate several models on the same folds with
the same recipe, then measure what each costs. Prints a Markdown table and writes a plot.

    python scripts/bench_models.py --models active-i yolov3 yolov4 faster-rcnn ssd \\
        --config configs/svia-cpu.yaml --folds 4 --out runs/compare --doc docs/comparison.md

Accuracy comes from ``active cv`` (``run_cv``: same split file, epochs, augmentation and
evaluator for every model; resumable, so an interrupted benchmark continues where it stopped and a
rerun with the same settings only re-measures the costs). Costs, each model in turn in this
process unless said otherwise:

- parameters and GFLOPs at the config's input size (``active model info``);
- training seconds per epoch: the mean over the cross-validation runs' epochs (from log.csv);
- peak training memory: the peak resident set size a fresh subprocess adds, over its imports,
  in ``--mem-steps`` training steps at the config's first-stage batch size (weights, activations,
  gradients, Adam state, allocator slack; 0 for a model too small to lift the peak);
- latency at batch 1 with PyTorch and with ONNX Runtime where the model exports, measured round
  robin (``--runs`` each) so that machine noise hits every model alike;
- peak inference memory: the same for loading the model and 5 predictions (PyTorch backend).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

HERE = Path(__file__).resolve()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def measure_train_memory(model_name: str, scale: str, imgsz: tuple[int, int], batch: int,
                         steps: int) -> float:
    """(child process) peak RSS in MB added by ``steps`` training steps on random data (over the
    peak after the imports: the interpreter and libraries are ~1.1 GB whatever the model)."""
    from active.models.detector import build_model
    from active.models.variants import ModelConfig
    from active.training.loss import LossConfig, YoloCriterion

    base = _rss_mb()
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=model_name, scale=scale, imgsz=imgsz)).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    tv = getattr(model, "returns_detections", False)
    crit = None if tv else YoloCriterion(model.anchors, model.strides, 2, LossConfig())
    h, w = imgsz
    rows = [[i, i % 2, 20 + 7 * j, 30 + 5 * j, 36 + 7 * j, 46 + 5 * j]
            for i in range(batch) for j in range(30)]
    targets = torch.tensor(rows, dtype=torch.float32)
    for _ in range(steps):
        x = torch.rand(batch, 3, h, w)
        if tv:
            loss = torch.stack(list(model(x, targets).values())).sum()
        else:
            loss, _ = crit(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return _rss_mb() - base


def measure_infer_memory(weights: str, backend: str) -> float:
    """(child process) peak RSS in MB added by loading the model and 5 predictions on a 698x528
    frame (over the peak after the imports)."""
    import onnxruntime  # noqa: F401  (counted in the baseline like torch)

    from active.inference.predictor import Predictor

    base = _rss_mb()
    p = Predictor(weights, backend=backend)  # type: ignore[arg-type]
    frame = (np.random.default_rng(0).random((528, 698, 3)) * 255).astype(np.uint8)
    for _ in range(5):
        p(frame)
    return _rss_mb() - base


def child(args: list[str]) -> float:
    out = subprocess.run([sys.executable, str(HERE), *args], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return float(out.stdout.strip().splitlines()[-1])


def latencies(models: dict[str, Any], runs: int) -> dict[str, float]:
    """Median ms per batch-1 call, round robin over ``models`` (name -> callable)."""
    times: dict[str, list[float]] = {k: [] for k in models}
    for fn in models.values():
        fn()
        fn()
    for _ in range(runs):
        for name, fn in models.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["active-i", "yolov3", "yolov4"])
    ap.add_argument("--config", type=Path, default=Path("configs/svia-cpu.yaml"))
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--epochs", type=int, nargs="+", default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=Path("runs/compare"))
    ap.add_argument("--quiet", action="store_true", help="no training progress bars")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--mem-steps", type=int, default=3)
    ap.add_argument("--doc", type=Path, default=None)
    ap.add_argument("--_train-mem", nargs=5, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_infer-mem", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._train_mem:
        m, s, h, w, b = args._train_mem
        print(measure_train_memory(m, s, (int(h), int(w)), int(b), args.mem_steps))
        return
    if args._infer_mem:
        print(measure_infer_memory(*args._infer_mem))
        return

    from active.evaluation.crossval import format_table_i, load_experiment_config, run_cv
    from active.inference.predictor import Predictor
    from active.models.info import model_info

    cfg = load_experiment_config(args.config, args.set, args.epochs)
    result = run_cv(cfg, args.models, args.folds, args.out, progress=not args.quiet)
    print(format_table_i(result))
    imgsz = tuple(cfg.model.imgsz)
    scale = cfg.model.scale
    rows: dict[str, dict[str, Any]] = {}
    calls: dict[str, Any] = {}
    frame = (np.random.default_rng(0).random((528, 698, 3)) * 255).astype(np.uint8)
    for name in args.models:
        info = model_info(name, scale, imgsz, runs=0)
        row: dict[str, Any] = {"params_m": info["params"] / 1e6, "gflops": info["gflops"]}
        secs = []
        for fold in range(result.k):
            log = args.out / name / f"fold{fold}" / "log.csv"
            if log.is_file():
                lines = log.read_text().splitlines()
                col = lines[0].split(",").index("seconds")
                secs += [float(r.split(",")[col]) for r in lines[1:]]
        row["s_per_epoch"] = statistics.median(secs) if secs else float("nan")
        for cls in ("sperm", "impurity"):
            s = result.summary(name, cls)
            row[f"ap50_{cls}"] = s.mean
        weights = args.out / name / "fold0" / "best.pt"
        row["train_mem_mb"] = child(["--_train-mem", name, scale, str(imgsz[0]), str(imgsz[1]),
                                     str(cfg.stages[0].batch), "--mem-steps",
                                     str(args.mem_steps)])
        if weights.is_file():
            pt = Predictor(weights, backend="torch", threads=2)
            calls[f"{name} torch"] = lambda pt=pt: pt(frame)
            row["infer_mem_mb"] = child(["--_infer-mem", str(weights), "torch"])
            if not getattr(pt.backend, "returns_detections", False):
                ox = Predictor(weights, backend="onnx", threads=2)
                calls[f"{name} onnx"] = lambda ox=ox: ox(frame)
        rows[name] = row
    lat = latencies(calls, args.runs)
    for name, row in rows.items():
        row["ms_torch"] = lat.get(f"{name} torch", float("nan"))
        row["ms_onnx"] = lat.get(f"{name} onnx", float("nan"))

    def f(v: float, d: int = 1) -> str:
        return "n/a" if v != v else f"{v:.{d}f}"

    head = (f"{args.folds} folds by video of `{cfg.data.path}`, config `{args.config}` "
            f"(scale {scale}, input {imgsz[1]}x{imgsz[0]}), {platform.machine()}, "
            f"{os.cpu_count()} cores, torch {torch.__version__}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}.\n"
            f"Command: `python scripts/bench_models.py {' '.join(argv or sys.argv[1:])}`\n")
    lines = [head, "| model | AP50 sperm | AP50 impurity | params (M) | GFLOPs | s/epoch | "
             "train peak +RSS (MB) | ms torch | ms ONNX RT | infer peak +RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {f(100 * r['ap50_sperm'])} | {f(100 * r['ap50_impurity'])} | "
                     f"{f(r['params_m'], 2)} | {f(r['gflops'], 2)} | {f(r['s_per_epoch'])} | "
                     f"{f(r['train_mem_mb'], 0)} | {f(r['ms_torch'])} | {f(r['ms_onnx'])} | "
                     f"{f(r.get('infer_mem_mb', float('nan')), 0)} |")
    table = "\n".join(lines)
    print(table)
    (args.out / "comparison.json").write_text(json.dumps(rows, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, r in rows.items():
        x = r["ms_onnx"] if r["ms_onnx"] == r["ms_onnx"] else r["ms_torch"]
        ax.scatter(x, 100 * r["ap50_sperm"])
        ax.annotate(name, (x, 100 * r["ap50_sperm"]), fontsize=8)
    ax.set_xlabel("latency, batch 1 (ms; ONNX Runtime where exported)")
    ax.set_ylabel("AP50 sperm (%)")
    fig.tight_layout()
    fig.savefig(args.out / "ap_vs_latency.png", dpi=120)
    if args.doc:
        from active.utils.io import write_text

        write_text(args.doc, "# The comparison\n\n" + table + "\n\n![AP50 against latency]"
                   f"({os.path.relpath(args.out / 'ap_vs_latency.png', args.doc.parent)})\n")


if __name__ == "__main__":
    main()
