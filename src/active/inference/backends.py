"""Inference backends: the network's raw per-level outputs from PyTorch or ONNX Runtime.

Both take a (B, 3, H, W) float32 batch in [0, 1] (a numpy array). ``OnnxBackend.run`` returns
numpy arrays (post-processed by :mod:`active.inference.postprocess_np`, so the ONNX path never
imports PyTorch); calling either backend returns torch tensors for the torch post-processing.
:class:`TorchBackend` lives in :mod:`active.inference.torch_backend` (imported on first use).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from active.errors import CheckpointError
from active.models.coder import BoxCoder

if TYPE_CHECKING:
    import torch


def __getattr__(name: str) -> Any:  # TorchBackend needs PyTorch: import it only when asked for
    if name == "TorchBackend":
        from active.inference.torch_backend import TorchBackend

        return TorchBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def device_type(device: str | Any) -> str:
    """``"cuda"`` for ``"cuda"``, ``"cuda:N"`` and ``"auto"`` (use CUDA where the runtime has it),
    else ``"cpu"``; without importing PyTorch."""
    text = str(device)
    return "cuda" if text == "auto" or text.startswith("cuda") else "cpu"


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else as given. A device this
    machine does not have (or a name that is none) is a UsageError naming ``--device``."""
    import torch

    from active.errors import UsageError

    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UsageError(f"--device {device}: not a device (auto, cpu, cuda, cuda:N)") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(f"--device {device}: no CUDA here (PyTorch sees no GPU on this "
                             "machine); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UsageError(f"--device {device}: this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s), numbered from 0")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise UsageError(f"--device {device}: no MPS (Apple GPU) here; use --device cpu")
    return dev


@dataclass(frozen=True)
class ModelSpec:
    """What post-processing needs to know about a network, whatever runs it."""

    names: tuple[str, ...]
    imgsz: tuple[int, int]  # (height, width) of the network input
    anchors: Any  # (levels, anchors, 2) in input pixels: a torch tensor or a numpy array
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
                anchors=np.asarray(json.loads(meta["anchors"]), dtype=np.float32),
                strides=tuple(json.loads(meta["strides"])),
                coder=BoxCoder(**json.loads(meta["coder"])),
                description=meta.get("description", ""),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(path, f"malformed ACTIVE metadata in ONNX model: {exc}"
                                  ) from None


class OnnxBackend:
    """An ONNX model (a file or serialized bytes) in ONNX Runtime; CPU provider unless a CUDA
    device is asked for and onnxruntime has it."""

    name = "onnx"

    def __init__(self, model: str | Path | bytes, device: str | Any = "cpu",
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
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if device_type(device) == "cuda" and has_cuda:
            providers.insert(0, "CUDAExecutionProvider")
        elif str(device).startswith("cuda"):
            from active.errors import UsageError

            raise UsageError(f"--device {device}: no CUDA here (ONNX Runtime has no CUDA "
                             "provider on this machine); use --device cpu")
        try:
            self.session = ort.InferenceSession(
                model if isinstance(model, bytes) else str(model), opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            empty = not isinstance(model, bytes) and Path(model).stat().st_size == 0
            raise CheckpointError(self.path, "ONNX model file is empty (0 bytes)" if empty
                                  else f"not a loadable ONNX model: {first}") from None
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
        import torch

        return [torch.from_numpy(o) for o in self.run(batch)]
