"""Export a checkpoint: to ONNX (dynamic batch axis, ACTIVE metadata) or to a stripped
checkpoint (weights and what rebuilds the model, no training state) for shipping.

The ONNX file holds exactly the network (raw per-level outputs) and, in its metadata, what
decoding and DIoU-NMS need (:class:`~active.models.spec.ModelSpec`) and what the checkpoint records
for its users (:class:`~active.models.spec.Deployment`), so that
:class:`~active.inference.predictor.Predictor` runs it in ONNX Runtime without PyTorch."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from active.errors import UsageError
from active.models.checkpoint import checkpoint_spec, load_model, read_checkpoint
from active.models.spec import Deployment, ModelSpec
from active.utils.io import atomic_path, file_sha256


def onnx_bytes(model: torch.nn.Module, spec: ModelSpec, opset: int = 18,
               extra_meta: dict[str, str] | None = None) -> bytes:
    """The raw-output network as a serialized ONNX model with a dynamic batch axis and
    ``spec.metadata()`` in its metadata properties (input ``images``: (B, 3, H, W) float in
    [0, 1]; one output per pyramid level, as :class:`~active.models.detector.Detector`)."""
    import copy

    import onnx
    from torch.export import Dim

    if getattr(model.config, "second_stage", False):
        raise UsageError(f"{model.config.variant} with a second stage does not export to ONNX "
                         "(its RoI head runs with the torch backend)")
    if getattr(model, "returns_detections", False):
        raise UsageError(f"{model.config.variant} does not export to ONNX here (an external "
                         "model; export covers ACTIVE and the YOLOv3/YOLOv4 baselines)")

    net = copy.deepcopy(model).float().eval().cpu()
    if hasattr(net, "fuse"):
        net.fuse()
    h, w = spec.imgsz
    batch = Dim("batch", min=1, max=256)
    # Height and width are dynamic (multiples of 32, up to 4096 px) so that frames can be
    # resized to the model's physical scale (Predictor(um_per_px=...)) at any size.
    h32, w32 = Dim("h32", min=2, max=128), Dim("w32", min=2, max=128)
    program = torch.onnx.export(
        net, (torch.zeros(2, 3, h, w),), dynamo=True, opset_version=opset,
        input_names=["images"], output_names=[f"level{s}" for s in spec.strides],
        dynamic_shapes=({0: batch, 2: 32 * h32, 3: 32 * w32},), verbose=False,
    )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {**spec.metadata(), **(extra_meta or {})})
    proto.producer_name = "active"
    return proto.SerializeToString()


def export_onnx(weights: str | Path, path: str | Path | None = None, opset: int = 18,
                imgsz: tuple[int, int] | None = None) -> Path:
    """Export checkpoint ``weights`` to ONNX at ``path`` (default: beside it, ``.onnx``),
    atomically; the checkpoint's SHA-256 goes into the metadata (see
    :func:`~active.inference.predictor.onnx_twin`), and so do its counting operating point and
    training scale when it records them."""
    weights = Path(weights)
    if weights.suffix == ".onnx":
        raise UsageError(f"{weights}: already an ONNX file; export a checkpoint (.pt)")
    if imgsz is not None and (len(imgsz) != 2 or any(v <= 0 or v % 32 for v in imgsz)):
        raise UsageError(f"imgsz must be (height, width) multiples of 32, got {imgsz}")
    path = Path(path) if path is not None else weights.with_suffix(".onnx")
    model, data = load_model(weights)
    spec = checkpoint_spec(model, data, tuple(imgsz) if imgsz is not None else None)
    extra = {"checkpoint_sha256": file_sha256(weights), "checkpoint": weights.name,
             **Deployment.from_checkpoint(data).metadata()}
    proto = onnx_bytes(model, spec, opset, extra)
    with atomic_path(path) as tmp:
        tmp.write_bytes(proto)
    return path


def export_stripped(src: str | Path, path: str | Path, extra_meta: dict[str, Any] | None = None
                    ) -> Path:
    """Copy a checkpoint without its training state (optimizer, raw weights, RNG) or unmeasured
    (NaN) scores: what a released model needs. ``extra_meta`` (e.g. the evaluation it was
    scored by) joins ``meta``."""
    data = read_checkpoint(src)
    data.pop("train_state", None)
    # a run without validation records its validation score as NaN: a released model leaves
    # out what was not measured rather than carry a NaN
    meta = {k: v for k, v in (data.get("meta") or {}).items()
            if not (isinstance(v, float) and math.isnan(v))}
    meta.update(extra_meta or {})
    meta["exported_from"] = str(src)
    meta["exported_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    data["meta"] = meta
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path
