"""The ONNX Runtime backend: the network's raw per-level outputs as numpy arrays.

It takes a (B, 3, H, W) float32 batch in [0, 1] (a numpy array) and returns numpy arrays,
post-processed by :mod:`active.inference.postprocess_np`, so the ONNX path never imports PyTorch.
A checkpoint run by PyTorch is :class:`active.models.torch_backend.TorchBackend` (the predictor
imports it on first use); what both need to know about the network is
:class:`active.models.spec.ModelSpec`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from active.errors import CheckpointError, UsageError


def device_type(device: str | Any) -> str:
    """``"cuda"`` for ``"cuda"``, ``"cuda:N"`` and ``"auto"`` (use CUDA where the runtime has it),
    else ``"cpu"``; without importing PyTorch."""
    text = str(device)
    return "cuda" if text == "auto" or text.startswith("cuda") else "cpu"


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
        # No pre-planned memory pattern: the arena alone peaks 12 MB lower on the bundled model
        # (93 vs 105 MB for a 704x544 session) at the same speed (measured 2026-12-07, issue 31).
        opts.enable_mem_pattern = False
        providers = ["CPUExecutionProvider"]
        has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
        if device_type(device) == "cuda" and has_cuda:
            providers.insert(0, "CUDAExecutionProvider")
        elif str(device).startswith("cuda"):
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

    __call__ = run  # a backend maps a batch to its raw outputs (numpy here, tensors in PyTorch)
