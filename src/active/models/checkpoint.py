"""The checkpoint format: weights, the configs that rebuild the model, anchors, class names, a
format version and (for ``--resume``) the training state. Written atomically; read with
``torch.load(weights_only=True)``, so loading never executes pickled code. Every value in a file
is a tensor or plain data (dicts, lists, strings, numbers), never a pickled class, so moving or
renaming a class never breaks loading an older file.

The format belongs to the model layer so that inference loads a checkpoint without importing
training code: the training config is stored as plain data (``loss_config``) and only the box
coder is read back from it here (:func:`checkpoint_coder`).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from active.errors import CheckpointError
from active.models.build import build_model
from active.models.coder import BoxCoder
from active.models.spec import ModelSpec
from active.models.variants import ModelConfig
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
    data = read_checkpoint(path)
    try:
        cfg = ModelConfig.from_dict(data["model_config"])
        model = build_model(cfg)
        model.load_state_dict(data["model"])
        coder = checkpoint_coder(data)  # a bad loss_config is said here, naming the file
        if cfg.second_stage:  # its proposals decode with the coder it trained with
            model.coder = coder
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(path, f"incompatible checkpoint: {str(exc).splitlines()[0][:300]}"
                              ) from None
    return model.to(device).eval(), data


def checkpoint_coder(data: dict[str, Any]) -> BoxCoder:
    """The box coder the checkpoint's model was trained with (post-processing must decode with
    the same one): ``decode`` and ``scale_xy`` of its stored ``loss_config``, which is what
    ``LossConfig.coder()`` builds; a missing key takes LossConfig's default (``"bounded"``,
    1.0), as ``LossConfig.from_dict`` would. Read here, as plain data, so that inference needs
    no training code to load a model."""
    loss = data.get("loss_config") or {}
    if not isinstance(loss, dict):
        raise ValueError(f"loss_config is a {type(loss).__name__}, not a mapping")
    return BoxCoder(mode=loss.get("decode", "bounded"), scale_xy=loss.get("scale_xy", 1.0))


def checkpoint_spec(model: torch.nn.Module, data: dict[str, Any],
                    imgsz: tuple[int, int] | None = None, members: int = 1) -> ModelSpec:
    """The :class:`ModelSpec` of a model loaded from checkpoint ``data`` (``imgsz``: the input
    size to run at, default the trained one; ``members``: the size of an ensemble it heads)."""
    cfg = model.config
    return ModelSpec(
        names=tuple(data["class_names"]),
        imgsz=imgsz or tuple(cfg.imgsz),
        anchors=model.anchors.detach().clone(),
        strides=tuple(model.strides),
        coder=checkpoint_coder(data),
        description=f"{cfg.variant}/{cfg.scale}" + (" + second stage" if cfg.second_stage else "")
        + (f", ensemble of {members}" if members > 1 else ""),
    )
