"""Checkpoints: weights, the configs that rebuild the model, anchors, class names, a format
version and (for ``--resume``) the training state. Written atomically; read with
``torch.load(weights_only=True)``, so loading never executes pickled code."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from active.errors import CheckpointError
from active.utils.io import atomic_path

FORMAT = "active-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, model: torch.nn.Module, loss_config: dict | None = None,
                    train_state: dict | None = None, meta: dict | None = None) -> None:
    """Write ``model`` (its weights and ``model.config``) and optional training state to
    ``path`` atomically. Every value is a tensor or plain data, as ``weights_only`` requires."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    payload: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "class_names": list(model.class_names),
        "anchors": model.anchors.detach().cpu().tolist(),
        "loss_config": loss_config or {},
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "meta": meta or {},
    }
    if train_state is not None:
        payload["train_state"] = train_state
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


#: What a file that ``weights_only`` refuses is, and what to do, in ACTIVE's words. torch's own
#: message goes on to suggest loading it with ``weights_only=False``, which would run whatever
#: code the file carries: it is never shown.
UNSAFE = ("refused: it holds pickled Python objects besides tensors and plain data, and "
          "loading those could run code hidden in the file, which ACTIVE never does. An ACTIVE "
          "checkpoint holds none: if this one came from 'active train' or 'active export', it "
          "was altered; if it came from elsewhere, use a model from a source you trust, or "
          "export the weights to ONNX ('active export') where they were made")


def load_file(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load(weights_only=True)`` to the CPU (no pickled code runs); a missing, empty,
    corrupt or unsafe file is a CheckpointError naming it and ``what`` it should have been."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, f"{what} not found" if not path.is_dir()
                              else f"is a folder, not a {what} file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, f"{what} file is empty (0 bytes): an interrupted copy or "
                                    "download? copy it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only load failed" in str(exc).lower():
            raise CheckpointError(path, UNSAFE) from None
        raise CheckpointError(path, f"corrupt or not a {what} ({_first_line(exc)})") from None
    except (zipfile.BadZipFile, RuntimeError, EOFError, OSError, ValueError, TypeError,
            AttributeError, IndexError, KeyError, MemoryError, OverflowError) as exc:
        # torch.load meets arbitrary bytes with any of these
        raise CheckpointError(path, f"corrupt or not a {what} ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    """``Type: first line of the message`` (at most 200 characters), for any exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and check a checkpoint file (tensors loaded to the CPU)."""
    path = Path(path)
    data = load_file(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(path, "not an ACTIVE checkpoint (no 'format' marker)")
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise CheckpointError(path, f"checkpoint format version {version} is newer than this "
                                    f"ACTIVE understands ({VERSION}); upgrade ACTIVE")
    for key in ("model_config", "model", "class_names", "anchors"):
        if key not in data:
            raise CheckpointError(path, f"checkpoint lacks {key!r}")
    return data


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module,
                                                                               dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights; returns (model, data)."""
    from active.models.detector import build_model
    from active.models.variants import ModelConfig

    data = read_checkpoint(path)
    try:
        cfg = ModelConfig.from_dict(data["model_config"])
        model = build_model(cfg)
        model.load_state_dict(data["model"])
        if cfg.second_stage:  # its proposals decode with the coder it trained with
            from active.training.loss import LossConfig

            model.coder = LossConfig.from_dict(data.get("loss_config") or {}).coder()
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"incompatible checkpoint: {str(exc).splitlines()[0][:300]}"
                              ) from None
    return model.to(device).eval(), data
