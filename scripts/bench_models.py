"""The paper's comparison, measured: train and evaluate several models on the same folds with
the same recipe, then measure what each costs. Prints a Markdown table and writes a plot.

    python scripts/bench_models.py --models active-i yolov3 yolov4 faster-rcnn ssd \\
        --config configs/svia-cpu.yaml --folds 4 --out runs/compare --doc docs/comparison.md

Accuracy comes from ``active cv`` (``run_cv``: same split file, epochs, augmentation and
evaluator for every model; resumable, so an interrupted benchmark continues where it stopped and a
rerun with the same settings reuses the measured costs, cached in ``costs.json``). With
``--no-train`` nothing is trained: accuracy comes from the results already in ``--out`` (runs
made elsewhere, e.g. on a GPU, or by ``active cv`` workers). Costs, each model in turn in this
process unless said otherwise:

- parameters and GFLOPs at the config's input size (``active model info``);
- training seconds per epoch here: the median time of ``--mem-steps`` training steps at the
  config's first-stage batch size (random data, 2 threads) x the mean steps per epoch over the
  folds; also the median epoch time logged by the runs themselves (wherever they ran);
- peak training memory: the peak resident set size of a fresh subprocess above its RSS after
  the imports (the peak is reset through ``/proc/self/clear_refs``) while it builds the model
  and takes those steps (weights, activations, gradients, Adam state, allocator slack);
- latency at batch 1 with PyTorch and with ONNX Runtime where the model exports, measured round
  robin (``--runs`` each) so that machine noise hits every model alike, on the model's trained
  weights of the first fold that has a ``best.pt`` here (the number of boxes that reach NMS
  depends on them), else on untrained weights; ``--remeasure-latency`` measures it again, e.g.
  once trained weights have arrived;
- peak inference memory: the same for loading the model and 5 predictions (PyTorch backend).

``--costs-only`` trains and tabulates no accuracy and writes the cost table alone (between the
doc's ``comparison-costs`` markers): every model's costs side by side on one machine, for an
accuracy table whose runs were made on several.
"""

from __future__ import annotations

import argparse
import csv
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


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise OSError(field)


def _start_peak() -> float:
    """Reset this process's peak RSS (Linux: ``clear_refs`` 5) and return the current RSS in MB;
    :func:`_peak_since` then gives the peak above it. Where the reset is not possible, the
    baseline is the peak so far (imports included), which can hide a small model."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return _status_mb("VmRSS")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _peak_since(base: float) -> float:
    try:
        peak = _status_mb("VmHWM")
    except OSError:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return max(0.0, peak - base)


def measure_train_memory(model_name: str, scale: str, imgsz: tuple[int, int], batch: int,
                         steps: int) -> tuple[float, float]:
    """(child process) peak RSS in MB above the RSS after the imports (the interpreter and
    libraries are ~1.1 GB whatever the model) while building the model and taking ``steps``
    training steps on random data, and the median seconds per step after the first."""
    from active.models.build import build_model
    from active.models.variants import ModelConfig
    from active.training.loss import LossConfig, YoloCriterion

    base = _start_peak()
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant=model_name, scale=scale, imgsz=imgsz)).train()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    tv = getattr(model, "returns_detections", False)
    crit = None if tv else YoloCriterion(model.anchors, model.strides, 2, LossConfig())
    h, w = imgsz
    rows = [[i, i % 2, 20 + 7 * j, 30 + 5 * j, 36 + 7 * j, 46 + 5 * j]
            for i in range(batch) for j in range(30)]
    targets = torch.tensor(rows, dtype=torch.float32)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        x = torch.rand(batch, 3, h, w)
        if tv:
            loss = torch.stack(list(model(x, targets).values())).sum()
        else:
            loss, _ = crit(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return _peak_since(base), statistics.median(times[1:] or times)


def measure_infer_memory(weights: str, backend: str) -> float:
    """(child process) peak RSS in MB above the RSS after the imports while loading the model
    and making 5 predictions on a 698x528 frame."""
    import onnxruntime  # noqa: F401  (counted in the baseline like torch)

    from active.inference.predictor import Predictor

    base = _start_peak()
    p = Predictor(weights, backend=backend)  # type: ignore[arg-type]
    frame = (np.random.default_rng(0).random((528, 698, 3)) * 255).astype(np.uint8)
    for _ in range(5):
        p(frame)
    return _peak_since(base)


def child(args: list[str]) -> list[float]:
    out = subprocess.run([sys.executable, str(HERE), *args], capture_output=True, text=True,
                         check=True, env={**os.environ, "OMP_NUM_THREADS": "2"})
    return [float(v) for v in out.stdout.strip().splitlines()[-1].split()]


def steps_per_epoch(cfg: Any, split: Path, folds: int) -> float:
    """Mean training steps per epoch of the first stage over the folds (frames / batch)."""
    from dataclasses import replace

    from active.training.trainer import load_splits

    batch = cfg.stages[0].batch
    n = [len(load_splits(replace(cfg, data=replace(cfg.data, split=str(split), fold=i)))["train"])
         for i in range(folds)]
    return statistics.mean(-(-k // batch) for k in n)


def untrained_checkpoint(name: str, cfg: Any, path: Path) -> Path:
    """A checkpoint of a freshly initialised ``name`` (latency and memory do not depend on the
    weights, except through the number of boxes that reach NMS)."""
    from dataclasses import replace

    from active.models.build import build_model
    from active.models.checkpoint import save_checkpoint

    if not path.is_file():
        torch.manual_seed(0)
        save_checkpoint(path, build_model(replace(cfg.model, variant=name)).eval())
    return path


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


def measure_memory(name: str, cfg: Any, weights: Path, mem_steps: int) -> dict[str, float]:
    """Peak training and inference memory (MB) of ``name``, each in a fresh subprocess, and the
    median training step (s) of the training one."""
    h, w = cfg.model.imgsz
    mem, s_step = child(["--_train-mem", name, cfg.model.scale, str(h), str(w),
                         str(cfg.stages[0].batch), "--mem-steps", str(mem_steps)])
    infer = child(["--_infer-mem", str(weights), "torch"])[0]
    return {"train_mem_mb": mem, "s_per_step": s_step, "infer_mem_mb": infer}


def latency_weights(result: Any, out: Path, name: str, cfg: Any) -> tuple[Path, int | None]:
    """The weights of the first fold of ``name`` that are on this machine (the path its results
    entry names, else ``out/<name>/fold<i>/best.pt``) and that fold; else a freshly initialised
    checkpoint and None."""
    for fold in range(result.k):
        entry = result.fold_result(name, fold)
        for path in ([Path(entry.weights)] if entry else []) + [
                out / name / f"fold{fold}" / "best.pt"]:
            if path.is_file():
                return path, fold
    (out / "untrained").mkdir(parents=True, exist_ok=True)
    return untrained_checkpoint(name, cfg, out / "untrained" / f"{name}.pt"), None


def measure_latency(weights: dict[str, Path], runs: int) -> dict[str, tuple[float, float]]:
    """(ms torch, ms ONNX Runtime or NaN) per model at batch 1, one 698x528 frame, 2 threads,
    round robin over every model and backend."""
    from active.inference.predictor import Predictor

    frame = (np.random.default_rng(0).random((528, 698, 3)) * 255).astype(np.uint8)
    calls: dict[str, Any] = {}
    for name, path in weights.items():
        pt = Predictor(path, backend="torch", threads=2)
        calls[f"{name} torch"] = lambda pt=pt: pt(frame)
        if not getattr(pt.backend, "returns_detections", False):
            ox = Predictor(path, backend="onnx", threads=2)
            calls[f"{name} onnx"] = lambda ox=ox: ox(frame)
    lat = latencies(calls, runs)
    return {name: (lat.get(f"{name} torch", float("nan")), lat.get(f"{name} onnx", float("nan")))
            for name in weights}


def measure_costs(models: list[str], cfg: Any, out: Path, mem_steps: int, runs: int,
                  result: Any) -> dict[str, dict[str, Any]]:
    """Parameters, GFLOPs, training s/step and memory, latency and inference memory per model
    (latency and inference memory on trained weights where a fold under ``out`` has them)."""
    from active.models.info import model_info

    imgsz, scale = tuple(cfg.model.imgsz), cfg.model.scale
    rows: dict[str, dict[str, Any]] = {}
    weights: dict[str, Path] = {}
    for name in models:
        info = model_info(name, scale, imgsz, runs=0)
        row: dict[str, Any] = {"params_m": info["params"] / 1e6, "gflops": info["gflops"]}
        weights[name], row["weights_fold"] = latency_weights(result, out, name, cfg)
        row["trained_weights"] = row["weights_fold"] is not None
        row.update(measure_memory(name, cfg, weights[name], mem_steps))
        print(f"{name}: {row['params_m']:.2f} M, {row['gflops']:.1f} GFLOPs, "
              f"{row['s_per_step']:.2f} s/step, +{row['train_mem_mb']:.0f} MB training",
              flush=True)
        rows[name] = row
    for name, (ms_torch, ms_onnx) in measure_latency(weights, runs).items():
        rows[name].update(ms_torch=ms_torch, ms_onnx=ms_onnx)
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    ap.add_argument("--doc", type=Path, default=None, help="write the table between the "
                    "'comparison-table' markers of this Markdown file (created if missing)")
    ap.add_argument("--no-train", action="store_true",
                    help="measure the costs only: accuracy from --out's results.json where it "
                    "has them (e.g. trained elsewhere), latency on untrained weights where "
                    "--out has no best.pt")
    ap.add_argument("--costs", type=Path, default=None,
                    help="cache of the measured costs (default OUT/costs.json); reused when it "
                    "holds every model at the same scale, input size and batch")
    ap.add_argument("--remeasure-memory", action="store_true",
                    help="measure the two memory columns again, keep the cached times")
    ap.add_argument("--remeasure-latency", action="store_true",
                    help="measure the latency columns again (on the trained weights now in "
                    "--out where there are some), keep the other cached costs")
    ap.add_argument("--tta", action="store_true",
                    help="also evaluate every fold's weights with flip TTA (models that give "
                    "candidates before NMS); adds a column of the TTA difference to the first "
                    "model")
    ap.add_argument("--costs-only", action="store_true",
                    help="train and tabulate no accuracy: the costs table alone (written "
                    "between the doc's 'comparison-costs' markers), e.g. to measure every model "
                    "side by side on one machine when the accuracy runs were made elsewhere")
    ap.add_argument("--trained-on", default=None,
                    help="where the accuracy runs were trained (for the table's heading)")
    ap.add_argument("--_train-mem", nargs=5, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--_infer-mem", nargs=2, default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def remeasure(args: argparse.Namespace, cfg: Any, result: Any, cached: dict[str, Any]) -> None:
    """``--remeasure-memory`` / ``--remeasure-latency``: measure those columns of the cached
    costs again, in place, keeping the rest (the step time stays the quiet machine's)."""
    costs = cached["models"]
    if args.remeasure_memory:
        for name in args.models:
            weights, _ = latency_weights(result, args.out, name, cfg)
            mem = measure_memory(name, cfg, weights, args.mem_steps)
            del mem["s_per_step"]
            costs[name].update(mem)
            print(f"{name}: +{costs[name]['train_mem_mb']:.0f} MB training, "
                  f"+{costs[name]['infer_mem_mb']:.0f} MB inference", flush=True)
        cached["memory_measured"] = time.strftime("%Y-%m-%d %H:%M")
    if args.remeasure_latency:
        found = {name: latency_weights(result, args.out, name, cfg) for name in args.models}
        lat = measure_latency({n: w for n, (w, _) in found.items()}, args.runs)
        for name, (ms_torch, ms_onnx) in lat.items():
            fold = found[name][1]
            costs[name].update(ms_torch=ms_torch, ms_onnx=ms_onnx, weights_fold=fold,
                               trained_weights=fold is not None)
            print(f"{name}: {ms_torch:.1f} ms torch, {ms_onnx:.1f} ms ONNX Runtime ("
                  + ("untrained" if fold is None else f"fold {fold}") + " weights)", flush=True)
        cached["latency_measured"] = time.strftime("%Y-%m-%d %H:%M")


def costs_of(args: argparse.Namespace, cfg: Any, result: Any) -> dict[str, Any]:
    """The costs cache (``key``, ``measured``, ``models``: name -> costs): reused from
    ``--costs`` when it holds every model at this scale, input size and batch (and remeasured
    where asked), else measured here and written."""
    from active.utils.io import write_json

    costs_file = args.costs or args.out / "costs.json"
    h, w = cfg.model.imgsz
    key = f"{cfg.model.scale} {h}x{w} batch {cfg.stages[0].batch}"
    cached = json.loads(costs_file.read_text()) if costs_file.is_file() else {}
    if cached.get("key") == key and set(args.models) <= set(cached.get("models", {})):
        print(f"costs: reused from {costs_file} (measured {cached['measured']})")
        if args.remeasure_memory or args.remeasure_latency:
            remeasure(args, cfg, result, cached)
            write_json(costs_file, cached)
        return cached
    costs = measure_costs(args.models, cfg, args.out, args.mem_steps, args.runs, result)
    cached = {"key": key, "measured": time.strftime("%Y-%m-%d %H:%M"), "models": costs}
    write_json(costs_file, cached)
    return cached


def logged_s_per_epoch(out: Path, name: str, folds: int) -> float:
    """Median epoch time over the training logs (``log.csv``) of ``name``'s folds under ``out``."""
    secs: list[float] = []
    for fold in range(folds):
        log = out / name / f"fold{fold}" / "log.csv"
        if log.is_file():
            with log.open(newline="") as fh:
                secs += [float(row["seconds"]) for row in csv.DictReader(fh)]
    return statistics.median(secs) if secs else float("nan")


def table_rows(models: list[str], result: Any, costs: dict[str, Any], out: Path,
               spe: float) -> dict[str, dict[str, Any]]:
    """One row per model: its costs, accuracy means, fold-0 AP and the paired differences to
    the first model (plain and flip TTA)."""
    rows: dict[str, dict[str, Any]] = {}
    for name in models:
        row = dict(costs[name])
        row["s_per_epoch"] = row["s_per_step"] * spe
        row["logged_s_per_epoch"] = logged_s_per_epoch(out, name, result.k)
        for cls in ("sperm", "impurity"):
            row[f"ap50_{cls}"] = result.summary(name, cls).mean
        row["folds"] = result.summary(name, "sperm").folds
        first = result.fold_result(name, 0)
        row["ap50_sperm_fold0"] = first.ap50.get("sperm", float("nan")) if first else float("nan")
        row["delta_sperm"], row["delta_folds"] = result.paired_difference(
            name, models[0], "sperm")
        row["delta_sperm_tta"], row["delta_folds_tta"] = result.paired_difference(
            name, models[0], "sperm", tta=True)
        rows[name] = row
    return rows


def _f(v: float, d: int = 1) -> str:
    return "n/a" if v != v else f"{v:.{d}f}"


def format_table(args: argparse.Namespace, argv: list[str], cfg: Any, result: Any,
                 rows: dict[str, dict[str, Any]], cached: dict[str, Any], spe: float) -> str:
    """The Markdown block: how and where it was measured, the comparison table, the per-fold
    table (the paper's Table I layout)."""
    from active.experiments.crossval import format_table_i

    h, w = cfg.model.imgsz
    weights = ", ".join(
        f"{n}: " + (f"fold {r['weights_fold']}" if r.get("weights_fold") is not None
                    else "trained" if r["trained_weights"] else "untrained")
        for n, r in rows.items())
    head = (f"{args.folds} folds by video of `{cfg.data.path}`, config `{args.config}` "
            f"(scale {cfg.model.scale}, input {w}x{h}), {platform.machine()}, "
            f"{os.cpu_count()} cores, torch {torch.__version__}, "
            f"{time.strftime('%Y-%m-%d %H:%M')}.\n"
            f"Command: `python scripts/bench_models.py {' '.join(argv)}`\n"
            f"Accuracy: test AP50 (%), mean over the folds, trained on "
            f"{args.trained_on or 'this machine'}; s/epoch here: median training step here x "
            f"{spe:.1f} steps per epoch (mean over the folds); logged s/epoch: from the training "
            f"runs' log.csv; difference to {args.models[0]}: mean over the folds both "
            f"finished. Latency on {weights} weights"
            + (f" (latency measured {cached['latency_measured']})"
               if cached.get("latency_measured") else "") + ".\n")
    ref = args.models[0]
    with_tta = any(result.has_tta(name) for name in args.models)

    def delta(name: str, r: dict[str, Any], suffix: str = "") -> str:
        folds = r["delta_folds" + suffix]
        return ("-" if name == ref else "n/a" if not folds else
                f"{100 * r['delta_sperm' + suffix]:+.1f} ({','.join(map(str, folds))})")

    tta_head = f" with flip TTA: vs {ref}, same folds (folds) |" if with_tta else ""
    lines = [head + ("Flip TTA: the same weights, four mirrored views fused "
                     "(`active.models.tta`), not a paper setting.\n" if with_tta else ""),
             f"| model | AP50 sperm, fold 0 | AP50 sperm, mean (folds) | vs {ref}, same "
             f"folds (folds) |{tta_head} AP50 impurity, mean | params (M) | GFLOPs | s/epoch "
             "here | logged s/epoch | train peak +RSS (MB) | ms torch | ms ONNX RT | infer peak "
             "+RSS (MB) |",
             "|---|---|---|---|" + ("---|" if with_tta else "") + "---|---|---|---|---|---|---|"
             "---|---|"]
    for name, r in rows.items():
        tta_cell = f" {delta(name, r, '_tta')} |" if with_tta else ""
        lines.append(f"| {name} | {_f(100 * r['ap50_sperm_fold0'])} | "
                     f"{_f(100 * r['ap50_sperm'])} ({r['folds']}) | {delta(name, r)} |"
                     f"{tta_cell} {_f(100 * r['ap50_impurity'])} | "
                     f"{_f(r['params_m'], 2)} | {_f(r['gflops'], 2)} | {_f(r['s_per_epoch'])} | "
                     f"{_f(r['logged_s_per_epoch'])} | "
                     f"{_f(r['train_mem_mb'], 0)} | {_f(r['ms_torch'])} | {_f(r['ms_onnx'])} | "
                     f"{_f(r.get('infer_mem_mb', float('nan')), 0)} |")
    lines += ["", "Per fold (the held-out video of each fold: `split.json`):", "",
              format_table_i(result)]
    return "\n".join(lines)


def format_costs_table(args: argparse.Namespace, argv: list[str], cfg: Any,
                       rows: dict[str, dict[str, Any]], cached: dict[str, Any],
                       spe: float) -> str:
    """``--costs-only``: the cost columns alone, with how and where they were measured."""
    h, w = cfg.model.imgsz
    weights = ", ".join(f"{n}: " + (f"fold {r['weights_fold']}" if r.get("weights_fold")
                                    is not None else "untrained") for n, r in rows.items())
    lines = [f"Costs at scale {cfg.model.scale}, input {w}x{h}, batch {cfg.stages[0].batch}, "
             f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"measured {cached['measured']} in one run"
             + "".join(f", {what} again {cached[key]}" for what, key in (
                 ("memory", "memory_measured"), ("latency", "latency_measured")) if key in cached)
             + " (latency: round robin over the models).\n"
             f"Command: `python scripts/bench_models.py {' '.join(argv)}`\n"
             f"s/epoch here: median training step x {spe:.1f} steps per epoch (mean over the "
             f"folds of `{args.out / 'split.json'}`); latency at batch 1 on {weights} "
             f"weights; latency ratios to {args.models[0]}: PyTorch against PyTorch, and "
             f"each model's ONNX Runtime time (its PyTorch time where it does not export) "
             f"against {args.models[0]}'s.\n",
             "| model | params (M) | GFLOPs | s/epoch here | train peak +RSS (MB) | ms torch | "
             "ms ONNX RT | latency vs " + args.models[0]
             + ": torch / ONNX RT where exported | infer peak +RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    ref = rows[args.models[0]]
    ref_ms = ref["ms_onnx"] if ref["ms_onnx"] == ref["ms_onnx"] else ref["ms_torch"]
    for name, r in rows.items():
        best = r["ms_onnx"] if r["ms_onnx"] == r["ms_onnx"] else r["ms_torch"]
        lines.append(f"| {name} | {_f(r['params_m'], 2)} | {_f(r['gflops'], 2)} | "
                     f"{_f(r['s_per_epoch'])} | {_f(r['train_mem_mb'], 0)} | "
                     f"{_f(r['ms_torch'])} | {_f(r['ms_onnx'])} | "
                     f"{r['ms_torch'] / ref['ms_torch']:.2f}x / {best / ref_ms:.2f}x | "
                     f"{_f(r.get('infer_mem_mb', float('nan')), 0)} |")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, Any]], paths: list[Path]) -> None:
    """AP50 sperm on fold 0 against batch-1 latency (ONNX Runtime where exported), one point per
    model that has a fold-0 result, saved to every path in ``paths``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, r in rows.items():
        x = r["ms_onnx"] if r["ms_onnx"] == r["ms_onnx"] else r["ms_torch"]
        y = 100 * r["ap50_sperm_fold0"]
        if y != y:
            continue
        ax.scatter(x, y)
        ax.annotate(name, (x, y), fontsize=8)
    ax.set_xlabel("latency, batch 1 (ms; ONNX Runtime where exported)")
    ax.set_ylabel("AP50 sperm, fold 0 (%)")
    ax.set_xscale("log")
    fig.tight_layout()
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args._train_mem:
        m, s, h, w, b = args._train_mem
        print(*measure_train_memory(m, s, (int(h), int(w)), int(b), args.mem_steps))
        return
    if args._infer_mem:
        print(measure_infer_memory(*args._infer_mem))  # one value
        return

    from active.experiments.crossval import format_table_i, load_experiment_config, run_cv
    from active.utils.io import write_between, write_json

    cfg = load_experiment_config(args.config, args.set, args.epochs)
    # --no-train / --costs-only: no fold is trained; the table takes the results already in --out
    result = run_cv(cfg, args.models, args.folds, args.out, progress=not args.quiet,
                    only_folds=[] if args.no_train or args.costs_only else None,
                    tta=args.tta and not args.costs_only)
    spe = steps_per_epoch(cfg, args.out / "split.json", args.folds)
    cached = costs_of(args, cfg, result)
    if args.costs_only:
        rows = {name: {**cached["models"][name],
                       "s_per_epoch": cached["models"][name]["s_per_step"] * spe}
                for name in args.models}
        table = format_costs_table(args, sys.argv[1:] if argv is None else argv, cfg, rows,
                                   cached, spe)
        print(table)
        if args.doc:
            write_between(args.doc, "<!-- comparison-costs -->", "<!-- /comparison-costs -->",
                          table, heading="" if args.doc.is_file() else "# The comparison")
        return
    print(format_table_i(result))
    rows = table_rows(args.models, result, cached["models"], args.out, spe)
    table = format_table(args, sys.argv[1:] if argv is None else argv, cfg, result, rows,
                         cached, spe)
    print(table)
    write_json(args.out / "comparison.json", rows)
    img = args.doc.parent / "img" / "comparison_ap_vs_latency.png" if args.doc else None
    plot(rows, [args.out / "ap_vs_latency.png"] + ([img] if img else []))
    if img:
        block = table + f"\n\n![AP50 against latency]({os.path.relpath(img, args.doc.parent)})"
        write_between(args.doc, "<!-- comparison-table -->", "<!-- /comparison-table -->", block,
                      heading="" if args.doc.is_file() else "# The comparison")


if __name__ == "__main__":
    main()
