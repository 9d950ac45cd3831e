"""The PyTorch backend of :class:`active.inference.predictor.Predictor`: a Detector in eval mode on
a device. The predictor imports it only when a checkpoint runs in PyTorch, so the ONNX path stays
free of PyTorch; its ONNX Runtime twin is :class:`active.inference.backends.OnnxBackend`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from active.models.device import pick_device


class TorchBackend:
    """A Detector in eval mode (BatchNorm fused) on a device."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "auto") -> None:
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        if hasattr(self.model, "fuse"):
            self.model.fuse()

    @property
    def returns_detections(self) -> bool:
        """True for models that post-process themselves (the torchvision baselines)."""
        return bool(getattr(self.model, "returns_detections", False))

    @torch.inference_mode()
    def __call__(self, batch: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(batch).to(self.device)
        return [o.float() for o in self.model(x)]

    @property
    def has_candidates(self) -> bool:
        """True for self-post-processing models that also give their candidates before NMS
        (the Ultralytics adapter), so flip TTA can fuse them."""
        return hasattr(self.model, "candidate_rows")

    @property
    def nms(self) -> str | None:
        """The NMS kind a self-post-processing model's recipe uses (None: the configured one)."""
        return getattr(self.model, "nms", None)

    @torch.inference_mode()
    def candidate_rows(self, batch: np.ndarray | torch.Tensor) -> list[torch.Tensor]:
        """Candidates before NMS of a model that has them, ``(N, 5 + nc)`` rows per image."""
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(batch)
        return [r.cpu() for r in self.model.candidate_rows(x.to(self.device))]

    @torch.inference_mode()
    def detect(self, batch: np.ndarray, cfg: Any) -> list[Any]:
        """Detections from a model that post-processes itself, moved to the CPU."""
        dets = self.model.detect(torch.from_numpy(batch).to(self.device), cfg)
        return [type(d)(d.boxes.cpu(), d.scores.cpu(), d.classes.cpu()) for d in dets]
