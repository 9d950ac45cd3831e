"""The shared state of a cross-validation experiment folder: ``results.json`` (one entry per
finished (model, fold), merged under a file lock so that several processes can add at once) and
the claim files by which those processes divide the (model, fold) pairs (see
:mod:`active.experiments.crossval`)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import socket
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from active.errors import DataError
from active.training.config import TrainConfig
from active.utils.config import ConfigError
from active.utils.io import write_json

# Settings that may change between an interrupted run and its rerun without changing results.
RUN_ONLY = ("out", "device", "threads", "data.split", "data.fold", "data.workers", "data.cache",
             "model.variant", "model.branches", "eval")
# "eval" (the post-processing of the AP) is kept per entry instead (FoldResult.eval): a changed
# evaluation setting re-evaluates finished folds, it does not make them stale.

@dataclass
class FoldResult:
    """Test AP50 of one model on one fold; ``ap50`` is NaN for a class without ground truth in
    the fold's test videos."""

    model: str
    fold: int
    test_videos: list[str]
    frames: int
    ap50: dict[str, float]
    ground_truth: dict[str, int]
    weights: str
    epochs: int = 0
    ap50_tta: dict[str, float] | None = None  # the same weights with flip TTA, when asked for
    eval: dict[str, Any] | None = None  # the post-processing the APs were made with
    members: list[str] | None = None  # a fused row: the runs' weights (``weights`` is then "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("ap50", "ap50_tta"):
            if data[key] is not None:  # null, not NaN: strict JSON readers reject NaN
                data[key] = {k: None if math.isnan(v) else v for k, v in data[key].items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FoldResult:
        def aps(d: dict[str, Any] | None) -> dict[str, float] | None:
            return None if d is None else {
                k: float("nan") if v is None else float(v) for k, v in d.items()}

        return cls(**{**data, "ap50": aps(data["ap50"]), "ap50_tta": aps(data.get("ap50_tta"))})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def claim(run_dir: Path):  # type: ignore[no-untyped-def]
    """Yield True when this process may train ``run_dir`` (it created ``run_dir/claim``, or took
    over the claim of a dead process on this host); the claim is removed afterwards."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "claim"
    me = {"host": socket.gethostname(), "pid": os.getpid()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text(encoding="utf-8"))
                stale = owner.get("host") == me["host"] and not _alive(int(owner["pid"]))
            except (OSError, ValueError, KeyError, TypeError):
                stale = False  # being written right now, or unreadable: leave it
            if not stale:
                yield False
                return
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(me, f)
        try:
            yield True
        finally:
            path.unlink(missing_ok=True)
        return
    yield False


def fingerprint(cfg: TrainConfig | dict[str, Any]) -> dict[str, Any]:
    """The config without the settings that differ per run or may change on a rerun."""
    data = json.loads(json.dumps(cfg if isinstance(cfg, dict) else cfg.to_dict()))
    for key in RUN_ONLY:
        *parents, last = key.split(".")
        node = data
        for p in parents:
            node = node.get(p, {})
        node.pop(last, None)
    return data


def _flat(data: Any, key: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` as ``{"a.b[0]": 1}``, to name the settings that differ."""
    if isinstance(data, dict):
        items = [(f"{key}.{k}" if key else str(k), v) for k, v in data.items()]
    elif isinstance(data, list) and data:
        items = [(f"{key}[{i}]", v) for i, v in enumerate(data)]
    else:
        return {key: data}
    return {k: v for sub, val in items for k, v in _flat(val, sub).items()}


class ResultStore:
    """``results.json``: finished (model, fold) entries and the config they were made with."""

    def __init__(self, path: Path, config: dict[str, Any]) -> None:
        self.path, self.config = path, config
        self.entries: list[FoldResult] = self._read()

    @contextlib.contextmanager
    def _locked(self):  # type: ignore[no-untyped-def]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def reload(self) -> None:
        """Take in what other processes have added."""
        self.entries = self._read()

    def _read(self) -> list[FoldResult]:
        path, config = self.path, self.config
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                entries = [FoldResult.from_dict(e) for e in data["results"]]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise DataError(path, f"not a cross-validation results file: {exc!r}") from None
            legacy = data.get("config", {}).get("eval")
            if isinstance(legacy, dict):  # written before entries kept their own settings,
                legacy = {"merge": False, **legacy}  # and before merging existed
                entries = [e if e.eval is not None else replace(e, eval=legacy) for e in entries]
            old, new = _flat(fingerprint(data.get("config", {}))), _flat(config)
            default = _flat(fingerprint(TrainConfig()))
            # a setting added to the code after the file was written ran at its default then
            changed = sorted(k for k in old.keys() | new.keys() if old.get(k, default.get(k))
                             != new.get(k))
            if entries and changed:
                raise ConfigError(f"{path}: its finished folds were trained with other settings "
                                  f"({', '.join(changed[:8])}); use another output folder or "
                                  "remove the old one")
            return entries
        return []

    def get(self, model: str, fold: int) -> FoldResult | None:
        return next((e for e in self.entries if (e.model, e.fold) == (model, fold)), None)

    def add(self, entry: FoldResult) -> None:
        """Merge ``entry`` into the file under a lock (other processes may add at once)."""
        with self._locked():
            entries = [e for e in self._read() if (e.model, e.fold) != (entry.model, entry.fold)]
            self.entries = [*entries, entry]
            write_json(self.path, {"version": 1, "config": self.config,
                                   "results": [e.to_dict() for e in self.entries]})
