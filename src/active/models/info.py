"""Size and speed of a model: parameters, GFLOPs, output shapes, CPU latency at batch 1."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from active.models.build import build_model
from active.models.variants import ModelConfig


def count_params(module: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in module.parameters())


def count_gflops(model: nn.Module, x: torch.Tensor) -> float:
    """GFLOPs of one forward pass on ``x`` (FLOPs = 2 x multiply-adds; convs and matmuls only,
    as torch's FlopCounterMode counts them; the convention Ultralytics' GFLOPs also use)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() / 1e9


def time_forward(fn: Callable[[], Any], runs: int = 20, warmup: int = 3) -> list[float]:
    """Wall-clock seconds of ``runs`` calls of ``fn`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def model_info(
    variant: str = "active-i",
    scale: str = "n",
    imgsz: tuple[int, int] = (416, 416),
    branches: Sequence[str] = ("b1", "b2"),
    device: str | torch.device = "cpu",
    runs: int = 10,
    warmup: int = 2,
    channels_last: bool = False,
    config: ModelConfig | None = None,
) -> dict[str, Any]:
    """Build a model in eval mode and measure it on a random ``(1, 3, H, W)`` input.

    ``imgsz`` is (H, W), multiples of 32. ``runs == 0`` skips the latency. ``config`` overrides
    ``variant``/``scale``/``branches``. Returns a JSON-friendly dict: ``variant``, ``scale``,
    ``branches``, ``imgsz``, ``params``, ``params_backbone``, ``gflops``, ``output_shapes``,
    ``latency_ms`` (median; ``None`` when skipped), ``latency_min_ms``, ``device``, ``threads``.
    """
    cfg = config or ModelConfig(variant=variant, scale=scale, branches=tuple(branches),
                                imgsz=tuple(imgsz))
    device = torch.device(device)
    model = build_model(cfg).eval().to(device)
    x = torch.rand(1, 3, *imgsz, device=device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = model(x)
    # torchvision baselines return post-processed detections, not raw maps
    shapes = [list(o.shape) if torch.is_tensor(o) else "detections" for o in out]
    gflops = count_gflops(model, x)
    latency = latency_min = None
    if runs > 0:

        def forward() -> None:
            with torch.inference_mode():
                model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        times = time_forward(forward, runs, warmup)
        latency, latency_min = statistics.median(times) * 1e3, min(times) * 1e3
    return {
        "variant": cfg.variant,
        "scale": cfg.scale,
        "branches": list(cfg.branches),
        "imgsz": list(imgsz),
        "params": count_params(model),
        "params_backbone": count_params(model.backbone),
        "gflops": gflops,
        "output_shapes": shapes,
        "latency_ms": latency,
        "latency_min_ms": latency_min,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def format_info(info: dict[str, Any]) -> str:
    """One human-readable line per fact of :func:`model_info`'s dict."""
    h, w = info["imgsz"]
    lines = [
        f"{info['variant']} scale={info['scale']} branches={'+'.join(info['branches'])} "
        f"input={h}x{w}",
        f"  params      {info['params'] / 1e6:.2f} M "
        f"(backbone {info['params_backbone'] / 1e6:.2f} M)",
        f"  GFLOPs      {info['gflops']:.2f}",
        f"  outputs     {', '.join(_shape_text(s) for s in info['output_shapes'])}",
    ]
    if info.get("latency_ms") is not None:
        lines.append(
            f"  latency     {info['latency_ms']:.1f} ms median, "
            f"{info['latency_min_ms']:.1f} ms min "
            f"(batch 1, {info['device']}, {info['threads']} threads)"
        )
    return "\n".join(lines)


def _shape_text(shape: list[int] | str) -> str:
    """``[1, 3, 68, 88]`` -> ``1x3x68x88``; a word (``detections``) as it is."""
    return shape if isinstance(shape, str) else "x".join(map(str, shape))
