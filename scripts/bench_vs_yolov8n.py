"""Time ACTIVE's small-scale variants against Ultralytics YOLOv8n, side by side, on the CPU.

Every model runs in one process, batch 1, eval mode, ``torch.inference_mode``, the same random
input; after a warm-up the models take turns (round robin), so background load hits them alike;
the table gives the median and the minimum of ``--runs`` forward passes, for contiguous (NCHW)
and channels-last inputs and weights. YOLOv8n is built from its yaml (``YOLO("yolov8n.yaml")``,
random weights, nothing downloaded; ``YOLO_OFFLINE=1``); it is skipped with a message when
``ultralytics`` cannot be imported. BatchNorm is left unfused in all models unless ``--fuse``.

    python scripts/bench_vs_yolov8n.py --scale n --imgsz 416 416 --runs 60 --doc docs/models.md

``--doc`` also writes the tables between the ``yolo-bench`` markers of that Markdown file.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from active.models.build import build_model
from active.models.info import count_gflops, count_params
from active.models.variants import VARIANTS, ModelConfig


def load_yolov8n() -> nn.Module | None:
    """YOLOv8n's network with random weights, or ``None`` (with a message) without ultralytics."""
    os.environ["YOLO_OFFLINE"] = "1"  # before the import: no update checks, no downloads
    try:
        from ultralytics import YOLO
    except Exception as exc:  # ImportError, or a missing dependency of ultralytics
        print(f"skipping YOLOv8n: ultralytics is not importable ({exc!r})")
        return None
    return YOLO("yolov8n.yaml").model


def bench(
    models: dict[str, nn.Module], x: torch.Tensor, runs: int, warmup: int
) -> dict[str, list[float]]:
    """Round-robin timing: run ``i`` of every model happens before run ``i + 1`` of any."""
    times: dict[str, list[float]] = {name: [] for name in models}
    with torch.inference_mode():
        for model in models.values():
            for _ in range(warmup):
                model(x)
        for _ in range(runs):
            for name, model in models.items():
                start = time.perf_counter()
                model(x)
                times[name].append((time.perf_counter() - start) * 1e3)
    return times


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="n")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--imgsz", nargs=2, type=int, default=(416, 416), metavar=("H", "W"))
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fuse", action="store_true", help="fold BatchNorm into convs (all)")
    parser.add_argument("--formats", nargs="+", default=["nchw", "channels_last"])
    parser.add_argument("--doc", type=Path, default=None, help="also write the tables here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    models: dict[str, nn.Module] = {}
    yolo = load_yolov8n()
    if yolo is not None:
        models["yolov8n"] = yolo.eval()
    for name in args.variants:
        models[f"{name} ({args.scale})"] = build_model(
            ModelConfig(variant=name, scale=args.scale)
        ).eval()
    if args.fuse:
        for name, model in models.items():
            model.fuse(verbose=False) if name == "yolov8n" else model.fuse()

    x = torch.rand(1, 3, *args.imgsz)
    stats = {name: (count_params(m) / 1e6, count_gflops(m, x)) for name, m in models.items()}
    command = " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"CPU latency, batch 1, {args.imgsz[0]}x{args.imgsz[1]}, {args.threads} threads, "
        f"{'fused' if args.fuse else 'unfused'} BN, {args.runs} round-robin runs after "
        f"{args.warmup} warm-up; torch {torch.__version__}, {platform.machine()}, "
        f"`python scripts/bench_vs_yolov8n.py {command}`"
    ]
    print(lines[0])
    for fmt in args.formats:
        memory_format = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        xf = x.contiguous(memory_format=memory_format)
        for model in models.values():
            model.to(memory_format=memory_format)
        times = bench(models, xf, args.runs, args.warmup)
        ref = statistics.median(times["yolov8n"]) if "yolov8n" in times else None
        lines += [
            f"\nMemory format: {fmt}\n",
            "| model | params (M) | GFLOPs | median (ms) | min (ms) | median / YOLOv8n |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, ts in times.items():
            med = statistics.median(ts)
            ratio = f"{med / ref:.2f}" if ref else "-"
            params, gflops = stats[name]
            lines.append(
                f"| {name} | {params:.2f} | {gflops:.2f} | {med:.1f} | {min(ts):.1f} | {ratio} |"
            )
        print("\n".join(lines[-len(times) - 3 :]), flush=True)
    if args.doc is not None:
        from active.utils.io import write_between

        write_between(args.doc, "<!-- yolo-bench:begin -->", "<!-- yolo-bench:end -->",
                      "\n".join(lines))
        print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
