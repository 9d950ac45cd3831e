"""The new-analysis form's fields, checked: each error is a :class:`FieldError` that names the
field as the page labels it, with a sentence a technician can act on.

The numbers are checked by the analysis' own rules (:mod:`active.analysis.calibration`, the
same as ``active analyze``'s flags). The detector is one of the bundled models, by name (never a
path: :data:`MODELS`). A microscope profile is chosen by name from the profiles in
``DATA/profiles/`` (the files ``active calibrate`` writes): only a listed name is accepted, so the
field can never name another path.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from active.analysis.calibration import (
    Calibration,
    check_depth,
    check_dilution,
    check_fps,
    check_um_per_px,
)
from active.errors import ActiveError

#: The form's fields and how the page labels them (errors name the label).
LABELS = {"sample_id": "Sample ID", "um_per_px": "µm per pixel",
          "fps": "Frame rate override (frames/s)", "chamber_depth_um": "Chamber depth (µm)",
          "dilution": "Dilution factor", "model": "Detector", "profile": "Microscope profile",
          "videos": "Videos"}
#: The bundled models the form offers (``--weights`` names) and how the page describes them.
MODELS = {"default": "accurate (the default)",
          "fast": "fast: about 1.9x the speed, 2.4 points less detection accuracy"}
MAX_SAMPLE_ID = 64
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,99}\.json$")


class FieldError(ActiveError, ValueError):
    """A form field that cannot be used: ``field`` (a key of :data:`LABELS`) and why. ``status``
    is the HTTP status of the page that says so (400; 413 for a file over the size limit)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        self.field, self.message, self.status = field, message, status
        super().__init__(f"{LABELS.get(field, field)}: {message}")


@dataclass(frozen=True)
class Settings:
    """A new analysis as the form asks for it (the videos come separately)."""

    sample_id: str
    calibration: Calibration
    model: str = "default"  # a key of MODELS
    profile: str | None = None  # a file name in DATA/profiles
    conf: float | None = None
    resize_um_per_px: float | None = None
    um_per_px_from: str = ""  # "form", "profile" or "" (none)


def _number(fields: dict[str, str], name: str, check: Any) -> float | None:
    text = (fields.get(name) or "").strip().replace(",", ".")  # 0,35 is 0.35 in many labs
    if not text:
        return None
    try:
        return check(text, LABELS[name])
    except ActiveError as exc:
        raise FieldError(name, str(exc).removeprefix(LABELS[name]).lstrip(": ")) from None


def sample_id(text: str) -> str:
    """The sample id as typed, trimmed; refused when empty, too long or holding control
    characters (it is shown on pages and in file names of downloads, never used as a path)."""
    value = unicodedata.normalize("NFC", (text or "").strip())
    if not value:
        raise FieldError("sample_id", "required: the lab's id of this sample (e.g. P-0231)")
    if len(value) > MAX_SAMPLE_ID:
        raise FieldError("sample_id", f"at most {MAX_SAMPLE_ID} characters, got {len(value)}")
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise FieldError("sample_id", "letters, digits and punctuation only (no control "
                         "characters or line breaks)")
    return value


def list_profiles(folder: Path) -> list[str]:
    """The profile files the form offers (``DATA/profiles/*.json``), by name."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir()
                  if p.is_file() and _PROFILE_NAME.match(p.name))


def _model(fields: dict[str, str]) -> str:
    name = (fields.get("model") or "default").strip()
    if name not in MODELS:
        raise FieldError("model", f"{name!r} is not one of the bundled models "
                         f"({', '.join(MODELS)})")
    return name


def _profile(name: str, folder: Path, model_name: str = "default") -> Any:
    """The chosen profile, read and checked against the chosen bundled model (as
    ``--profile``: a profile is fitted for one model)."""
    if name not in list_profiles(folder):
        raise FieldError("profile", f"{name!r} is not one of the profiles in {folder.name}/")
    from active.inference.predictor import resolve_weights
    from active.inference.profile import load_profile
    from active.utils.io import file_sha256

    try:
        prof = load_profile(folder / name)
        model = resolve_weights(model_name)
        prof.check_model(file_sha256(model), model, name)
    except ActiveError as exc:
        raise FieldError("profile", str(exc).replace(str(folder / name), name)) from None
    return prof


def parse_settings(fields: dict[str, str], profiles: Path) -> Settings:
    """The form's ``fields`` as :class:`Settings`; a :class:`FieldError` for the first field
    that cannot be used, in the page's order."""
    sid = sample_id(fields.get("sample_id", ""))
    um = _number(fields, "um_per_px", check_um_per_px)
    fps = _number(fields, "fps", check_fps)
    depth = _number(fields, "chamber_depth_um", check_depth)
    dilution = _number(fields, "dilution", check_dilution)
    model = _model(fields)
    name = (fields.get("profile") or "").strip()
    conf = resize = None
    um_from = "form" if um is not None else ""
    if name:
        prof = _profile(name, profiles, model)
        conf = prof.score_threshold
        # as `active analyze --profile`: a measured scale measures, an estimated one only
        # resizes frames to the model's scale
        if um is None and prof.measured_scale is not None:
            um, um_from = prof.measured_scale, "profile"
        elif um is None and prof.um_per_px is not None:
            resize = prof.um_per_px
    cal = Calibration(um_per_px=um, fps=fps, chamber_depth_um=depth,
                      dilution=1.0 if dilution is None else dilution)
    return Settings(sid, cal, model, name or None, conf, resize, um_from)
