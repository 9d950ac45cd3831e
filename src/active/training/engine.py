"""One training epoch and one evaluation pass: plain functions, like the reference loops of
DETR and torchvision (the prediction itself is :func:`active.models.predict.predict_records`)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from active.data.ap import ClassAP, evaluate_ap
from active.data.record import FrameRecord
from active.models.coder import BoxCoder
from active.models.postprocess_config import PostProcessConfig
from active.models.predict import predict_records


class ModelEMA:
    """Exponential moving average of a model's weights with YOLOv5's ramped decay
    ``decay * (1 - exp(-updates / 2000))`` (torch's AveragedModel has no warm-up of the decay,
    which on short runs leaves the average dominated by the initial weights)."""

    def __init__(self, model: nn.Module, decay: float = 0.999, ramp: float = 2000.0) -> None:
        import copy

        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay, self.ramp, self.updates = decay, ramp, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.ramp))
        own = self.module.state_dict()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                own[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                own[k].copy_(v)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX, as oneDNN sees it).
    Without it bf16 autocast is emulated: measured here 2026-12-01 on an AVX2-only EPYC, an
    epoch of the CPU recipe took 530 s instead of ~15 s."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a build without oneDNN
        return False


def precision_warning(device: torch.device, precision: str) -> str | None:
    """A warning for a precision that will run far slower than fp32 on ``device``, or None."""
    if device.type == "cpu" and precision == "bf16" and not cpu_has_native_bf16():
        cap = torch.backends.cpu.get_cpu_capability()
        return (f"warning: precision=bf16 on a CPU without native bfloat16 ({cap}, no "
                "AVX512-BF16/AMX): autocast is emulated and training runs many times slower "
                "than fp32 (an epoch took 35x longer on such a CPU); use precision=fp32")
    return None


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for bf16/fp16, or a no-op for fp32."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def train_one_epoch(model: nn.Module, criterion: nn.Module, loader: Iterable,
                    optimizer: torch.optim.Optimizer,
                    scheduler: torch.optim.lr_scheduler.LRScheduler,
                    device: torch.device, precision: str = "fp32", grad_clip: float = 10.0,
                    ema: ModelEMA | None = None, scaler: torch.amp.GradScaler | None = None,
                    max_steps: int | None = None,
                    on_step: Callable[[int, dict[str, float]], None] | None = None
                    ) -> dict[str, float]:
    """Train for one pass over ``loader``; returns the mean of each loss part per image."""
    model.train()
    takes_targets = getattr(criterion, "takes_targets", False)
    sums: dict[str, float] = {}
    steps = 0
    for step, (images, targets) in enumerate(loader):
        if max_steps is not None and step >= max_steps:
            break
        images, targets = images.to(device, non_blocking=True), targets.to(device)
        with autocast(device, precision):  # losses in forward (torchvision, second stage)
            raw = model(images, targets) if takes_targets else model(images)
        loss, parts = criterion(raw, targets)  # each criterion computes in fp32
        if not torch.isfinite(loss):
            hint = ("lower the lr" if precision == "fp32" else
                    f"try precision=fp32 (Faster R-CNN's loss became NaN under {precision} "
                    "here), or lower the lr")
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; {hint}")
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(getattr(model, "module", model))
        values = {k: float(v) for k, v in parts.items()}
        values["total"] = float(loss.detach()) / (
            1 if getattr(criterion, "mean_over_batch", False) else len(images))
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        steps += 1
        if on_step is not None:
            on_step(step, values)
    return {k: v / max(steps, 1) for k, v in sums.items()}


def evaluate(model: nn.Module, records: Sequence[FrameRecord], imgsz: tuple[int, int],
             coder: BoxCoder, cfg: PostProcessConfig, device: torch.device,
             batch_size: int = 8) -> dict[str, ClassAP]:
    """AP50 per class of ``model`` on ``records`` (VOC all-point, one class per box)."""
    results = predict_records(model, records, imgsz, coder, cfg, device, batch_size)
    return evaluate_ap(results, records[0].class_names if records else ())
