"""Inference backends: the network's raw per-level outputs from PyTorch or ONNX Runtime.

Both take a (B, 3, H, W) float32 batch in [0, 1] (a numpy array) and return the raw head tensors
as torch tensors, so decoding and DIoU-NMS are one code path whatever runs the network.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from active.errors import CheckpointError
from active.models.coder import BoxCoder


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else as given."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


@dataclass(frozen=True)
class ModelSpec:
    """What post-processing needs to know about a network, whatever runs it."""

    names: tuple[str, ...]
    imgsz: tuple[int, int]  # (height, width) of the network input
    anchors: torch.Tensor  # (levels, anchors, 2) in input pixels
    strides: tuple[int, ...]
    coder: BoxCoder
    description: str = ""

    def metadata(self) -> dict[str, str]:
        """String metadata for an exported ONNX file (read back by :meth:`from_metadata`)."""
        return {
            "format": "active-onnx",
            "version": "1",
            "names": json.dumps(list(self.names)),
            "imgsz": json.dumps(list(self.imgsz)),
            "anchors": json.dumps(self.anchors.tolist()),
            "strides": json.dumps(list(self.strides)),
            "coder": json.dumps({"mode": self.coder.mode, "scale_xy": self.coder.scale_xy,
                                 "max_log_wh": self.coder.max_log_wh}),
            "description": self.description,
        }

    @classmethod
    def from_metadata(cls, meta: dict[str, str], path: Path) -> ModelSpec:
        if meta.get("format") != "active-onnx":
            raise CheckpointError(path, "ONNX model without ACTIVE metadata (export it with "
                                        "'active export WEIGHTS --format onnx')")
        if int(meta.get("version", "0")) > 1:
            raise CheckpointError(path, f"ONNX metadata version {meta['version']} is newer than "
                                        "this ACTIVE understands (1); upgrade ACTIVE")
        try:
            return cls(
                names=tuple(json.loads(meta["names"])),
                imgsz=tuple(json.loads(meta["imgsz"])),  # type: ignore[arg-type]
                anchors=torch.tensor(json.loads(meta["anchors"]), dtype=torch.float32),
                strides=tuple(json.loads(meta["strides"])),
                coder=BoxCoder(**json.loads(meta["coder"])),
                description=meta.get("description", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(path, f"malformed ACTIVE metadata in ONNX model: {exc}"
                                  ) from None


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


class OnnxBackend:
    """An ONNX model (a file or serialized bytes) in ONNX Runtime; CPU provider unless a CUDA
    device is asked for and onnxruntime has it."""

    name = "onnx"

    def __init__(self, model: str | Path | bytes, device: str | torch.device = "cpu",
                 threads: int | None = None, origin: str | Path | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(origin) if origin is not None else (
            Path(model) if not isinstance(model, bytes) else Path("<memory>"))
        if not isinstance(model, bytes) and not Path(model).is_file():
            raise CheckpointError(self.path, "ONNX model not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or max(1, min(os.cpu_count() or 1, 8))
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # No busy-waiting between runs: the decode and draw threads of `active detect` and
        # PyTorch's post-processing need those cores (spinning cost ~2x post-processing time).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if (pick_device(device).type == "cuda"
                and "CUDAExecutionProvider" in ort.get_available_providers()):
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(
                model if isinstance(model, bytes) else str(model), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise CheckpointError(self.path, "not a loadable ONNX model: "
                                             f"{str(exc).splitlines()[0][:300]}") from None
        self.input_name = self.session.get_inputs()[0].name
        shape = self.session.get_inputs()[0].shape
        #: False for an older export whose input size is fixed (it cannot run other sizes).
        self.dynamic_hw = len(shape) == 4 and not all(isinstance(v, int) for v in shape[2:])
        self.metadata: dict[str, Any] = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The raw head outputs as numpy arrays (the path that needs no PyTorch)."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch,
                                                                            dtype=np.float32)})

    def __call__(self, batch: np.ndarray) -> list[torch.Tensor]:
        return [torch.from_numpy(o) for o in self.run(batch)]
