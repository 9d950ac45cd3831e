"""A microscope profile: the operating threshold (and, when the lab gives it, the µm/px) fitted
for one model on a lab's own annotated frames by ``active calibrate``; ``active detect
--profile`` and ``active analyze --profile`` use it.

A profile belongs to one model: it records the model file's SHA-256 and is refused for any
other model (a threshold fitted for one network means nothing for another).

File (JSON)::

    {"schema_version": 1, "kind": "active-profile", "model_file": "active-i-n-svia.pt",
     "model_sha256": "...", "score_threshold": 0.41, "um_per_px": 0.35 | null,
     "fitted_on": {"data": "...", "frames": 40, "sperm_boxes": 1200},
     "metrics": {...}, "created": "2026-12-07 01:00:00"}
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from active.data.scale import UM_PER_PX_RANGE
from active.errors import DataError, UsageError
from active.utils.io import write_json

KIND = "active-profile"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Profile:
    """The operating point of one model on one lab's set-up."""

    model_file: str
    model_sha256: str
    score_threshold: float
    um_per_px: float | None = None
    fitted_on: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    #: "given" (the lab measured it: good for micrometres) or "estimated from head size" (good
    #: for resizing frames to the model, not for measuring: ``analyze`` then asks for it).
    um_per_px_from: str = "given"

    @property
    def measured_scale(self) -> float | None:
        """µm/px fit for measurements (distances, speeds, volumes): only a given one."""
        return self.um_per_px if self.um_per_px_from == "given" else None

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "kind": KIND, **asdict(self)}

    def save(self, path: str | Path) -> Path:
        """Write the profile atomically (temporary file, then rename)."""
        path = Path(path)
        write_json(path, self.to_json())
        return path

    def check_model(self, sha256: str, model: str | Path, source: str | Path) -> None:
        """Refuse to apply this profile (read from ``source``) to another model."""
        if sha256 != self.model_sha256:
            raise UsageError(f"{source}: this profile was fitted for {self.model_file} "
                             f"(sha256 {self.model_sha256[:12]}...), not for {Path(model).name} "
                             f"(sha256 {sha256[:12]}...); run 'active calibrate' for this model")


def load_profile(path: str | Path) -> Profile:
    """Read and check a profile file; every problem is a :class:`DataError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "profile not found (make one with 'active calibrate')")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"not a profile (not JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("kind") != KIND:
        raise DataError(path, f"not an ACTIVE profile (no \"kind\": \"{KIND}\")")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DataError(path, f"profile schema {data.get('schema_version')!r}, this version of "
                              f"ACTIVE reads {SCHEMA_VERSION}")
    for key in ("model_file", "model_sha256"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise DataError(path, f"profile field {key!r} is missing or not a string")
    t = data.get("score_threshold")
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise DataError(path, "profile field 'score_threshold' is missing or not a number")
    t = float(data["score_threshold"])
    if not (math.isfinite(t) and 0 < t < 1):
        raise DataError(path, f"score_threshold must be between 0 and 1, got {t}")
    um = data.get("um_per_px")
    lo, hi = UM_PER_PX_RANGE
    if um is not None and (isinstance(um, bool) or not isinstance(um, int | float)
                           or not lo <= um <= hi):
        raise DataError(path, f"um_per_px must be a number in {lo}-{hi} or null, got {um!r}")
    return Profile(model_file=data["model_file"], model_sha256=data["model_sha256"],
                   score_threshold=t, um_per_px=None if um is None else float(um),
                   fitted_on=dict(data.get("fitted_on") or {}),
                   metrics=dict(data.get("metrics") or {}), created=str(data.get("created", "")),
                   um_per_px_from=str(data.get("um_per_px_from", "given")))


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")
