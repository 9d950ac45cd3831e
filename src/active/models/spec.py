"""What running a trained network needs besides its weights, whatever runs it (PyTorch or ONNX
Runtime): :class:`ModelSpec` (class names, input size, anchors, strides, box coder: everything
decoding and DIoU-NMS need) and :class:`Deployment` (the counting operating point and the scale the
model was trained at). Both are read from a checkpoint or from an exported ONNX file's metadata,
and written into that metadata at export. Plain data and numpy: no PyTorch, so the ONNX path of
:mod:`active.inference` reads them without it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from active.errors import CheckpointError
from active.models.coder import BoxCoder


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


def _threshold(value: object) -> float | None:
    """A stored operating threshold, if it is a usable one."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if 0 < v < 1 else None


def _positive(value: object) -> float | None:
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


@dataclass(frozen=True)
class Deployment:
    """The settings a trained model carries for its users (None: not recorded, or unusable).

    Attributes:
        score_threshold: the counting operating point (the score threshold at which its count per
            frame was unbiased on validation data), in (0, 1).
        um_per_px: the scale (µm per pixel) its network input had in training: the training
            frames' scale divided by the letterbox factor that fitted them to its input size
            (:func:`active.data.scale.training_scale`).
        head_box_px: the median sperm box (long side, px) at that same input scale.
    """

    score_threshold: float | None = None
    um_per_px: float | None = None
    head_box_px: float | None = None

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any]) -> Deployment:
        """From a checkpoint's ``meta`` (``operating_point`` and ``scale``)."""
        meta = data.get("meta") or {}
        scale = meta.get("scale") or {}
        return cls(_threshold((meta.get("operating_point") or {}).get("score_threshold")),
                   _positive(scale.get("um_per_px")), _positive(scale.get("head_box_px")))

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str]) -> Deployment:
        """From an exported ONNX file's metadata (inverse of :meth:`metadata`)."""
        return cls(_threshold(meta.get("score_threshold")), _positive(meta.get("um_per_px")),
                   _positive(meta.get("head_box_px")))

    def metadata(self) -> dict[str, str]:
        """The recorded settings as ONNX metadata strings (the unrecorded ones left out)."""
        return {k: repr(v) for k, v in (("score_threshold", self.score_threshold),
                                        ("um_per_px", self.um_per_px),
                                        ("head_box_px", self.head_box_px)) if v is not None}
