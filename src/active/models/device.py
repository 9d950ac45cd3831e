"""The PyTorch device a command asked for (``--device``), checked against this machine, and
PyTorch's CPU threads."""

from __future__ import annotations

import torch

from active.errors import UsageError


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; anything else as given. A device this
    machine does not have (or a name that is none) is a UsageError naming ``--device``."""
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


def set_threads(threads: int) -> None:
    """PyTorch's intra-op CPU threads, for the whole process (``--threads``)."""
    torch.set_num_threads(threads)
