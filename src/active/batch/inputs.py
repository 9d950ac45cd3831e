"""What a batch analyses: videos from folders, glob patterns or a CSV manifest, each with its
sample id and calibration.

A manifest is a CSV file with a header row; ``path`` is required, the other columns optional::

    path,sample_id,um_per_px,fps,chamber_depth_um,dilution
    2024-03/P-0231-a.avi,P-0231,0.35,,20,1
    2024-03/P-0231-b.avi,P-0231,0.35,,20,1

Relative paths are read from the manifest's folder. A blank cell takes the command line's value
(``--um-per-px``, ``--fps``, ``--chamber-depth``, ``--dilution``; no flag: no value, as in
single-sample mode). Rows of one sample are its replicate fields and must agree on µm/px, chamber
depth and dilution (the frame rate may differ). Every mistake is a :class:`DataError` naming the
manifest and the line, raised before any video is analysed.
"""

from __future__ import annotations

import csv
import glob
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from active.analysis.calibration import (
    Calibration,
    check_depth,
    check_dilution,
    check_fps,
    check_um_per_px,
)
from active.data.video import VIDEO_SUFFIXES
from active.errors import DataError, UsageError

COLUMNS = ("path", "sample_id", "um_per_px", "fps", "chamber_depth_um", "dilution")
_CHECKS: dict[str, Callable[[float, str], float | None]] = {
    "um_per_px": check_um_per_px, "fps": check_fps, "chamber_depth_um": check_depth,
    "dilution": check_dilution}
_GLOB = set("*?[")


@dataclass(frozen=True)
class VideoJob:
    """One video of the batch: where it is, the sample it belongs to and its calibration (``fps``
    set only when it overrides the container's rate)."""

    path: Path
    sample_id: str
    calibration: Calibration
    source: str  # where it was named: "manifest.csv line 4", "folder archive/", ...


def is_batch_input(item: str) -> bool:
    """Whether a command-line input asks for batch mode: a folder, a glob pattern or a manifest."""
    p = Path(item)
    return p.is_dir() or p.suffix.lower() == ".csv" or (not p.exists() and bool(_GLOB & set(item)))


def _videos_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def _sample_of(path: Path, sample_by: str) -> str:
    return path.parent.name if sample_by == "folder" else path.stem


def expand(inputs: Sequence[str], calibration: Calibration, sample_by: str = "video"
           ) -> list[VideoJob]:
    """The videos that ``inputs`` name (videos, folders searched recursively, glob patterns,
    ``.csv`` manifests), in order, each once. ``sample_by``: ``video`` (each video its own
    sample, named after the file) or ``folder`` (the videos of one folder are the replicate
    fields of one sample, named after the folder); a manifest names its samples itself."""
    if sample_by not in ("video", "folder"):
        raise UsageError(f"--sample-by must be 'video' or 'folder', got {sample_by!r}")
    jobs: list[VideoJob] = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() == ".csv":
            jobs.extend(read_manifest(path, calibration))
            continue
        if path.is_dir():
            found, where = _videos_in(path), f"folder {path}"
        elif not path.exists() and _GLOB & set(item):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True)
                           if Path(p).suffix.lower() in VIDEO_SUFFIXES and Path(p).is_file())
            where = f"pattern {item}"
        else:
            if not path.is_file():
                raise UsageError(f"{path}: no such video, folder or manifest")
            found, where = [path], "command line"
        if not found:
            raise UsageError(f"{where}: holds no video ({', '.join(VIDEO_SUFFIXES)})")
        jobs.extend(VideoJob(p, _sample_of(p, sample_by), calibration, where) for p in found)
    return _checked(jobs)


def _unique(jobs: list[VideoJob]) -> list[VideoJob]:
    """Each (sample, file) once: a folder and a pattern may name the same video twice."""
    seen: set[tuple[str, Path]] = set()
    out = []
    for job in jobs:
        key = (job.sample_id, job.path.resolve())
        if key not in seen:
            seen.add(key)
            out.append(job)
    return out


def _groups(jobs: list[VideoJob]) -> dict[str, list[VideoJob]]:
    by_sample: dict[str, list[VideoJob]] = {}
    for job in jobs:
        by_sample.setdefault(job.sample_id, []).append(job)
    return by_sample


def _checked(jobs: list[VideoJob]) -> list[VideoJob]:
    """Refuse a sample whose fields disagree on their calibration, or share a file name (their
    outputs would overwrite each other); a file listed twice in one sample counts once."""
    for sample, members in _groups(jobs).items():
        first = members[0]
        for job in members[1:]:
            a, b = first.calibration, job.calibration
            if (a.um_per_px, a.chamber_depth_um, a.dilution) != (b.um_per_px,
                                                                 b.chamber_depth_um, b.dilution):
                raise DataError(None, f"sample {sample}: {job.source} ({job.path.name}) and "
                                f"{first.source} ({first.path.name}) give different µm/px, "
                                "chamber depth or dilution; the fields of one sample share them")
    jobs = _unique(jobs)
    for sample, members in _groups(jobs).items():
        names = [j.path.name for j in members]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise DataError(None, f"sample {sample}: two videos named {twice[0]} (from "
                            f"{', '.join(j.source for j in members if j.path.name == twice[0])})"
                            "; rename one or give them different sample ids")
    return jobs


def read_manifest(manifest: Path, defaults: Calibration) -> list[VideoJob]:
    """The videos of a CSV manifest (module docstring); a :class:`DataError` names the line."""
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(manifest, "is not a UTF-8 text CSV file") from None
    except FileNotFoundError:
        raise DataError(manifest, "manifest not found") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or not any(c.strip() for c in rows[0]):
        raise DataError(manifest, f"empty manifest: the first line must name the columns "
                        f"({', '.join(COLUMNS)})")
    header = [c.strip().lower() for c in rows[0]]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise DataError(manifest, f"line 1: unknown column {unknown[0]!r} (columns: "
                        f"{', '.join(COLUMNS)})")
    if "path" not in header:
        raise DataError(manifest, "line 1: no 'path' column")
    if len(set(header)) != len(header):
        raise DataError(manifest, "line 1: a column is named twice")
    jobs = []
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue  # blank lines are allowed
        if len(row) != len(header):
            raise DataError(manifest, f"line {line}: {len(row)} cells, the header has "
                            f"{len(header)}")
        cells = {k: v.strip() for k, v in zip(header, row, strict=True)}
        jobs.append(_row(manifest, line, cells, defaults))
    if not jobs:
        raise DataError(manifest, "the manifest lists no video")
    return jobs


def _row(manifest: Path, line: int, cells: dict[str, str], defaults: Calibration) -> VideoJob:
    where = f"line {line}"
    if not cells["path"]:
        raise DataError(manifest, f"{where}: empty path")
    path = Path(cells["path"])
    path = path if path.is_absolute() else manifest.parent / path
    if not path.is_file():
        raise DataError(manifest, f"{where}: video {path} not found")
    values: dict[str, float | None] = {}
    for column, check in _CHECKS.items():
        text = cells.get(column, "")
        if not text:
            continue
        try:
            values[column] = check(text, column)
        except UsageError as exc:
            raise DataError(manifest, f"{where}: {exc}") from None
    cal = replace(defaults, **values)
    sample = cells.get("sample_id") or path.stem
    return VideoJob(path, sample, cal, f"{manifest.name} {where}")
