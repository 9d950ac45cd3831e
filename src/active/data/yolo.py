"""YOLO txt annotations: ``images/<name>.<ext>`` beside ``labels/<name>.txt``.

Each label line is ``class cx cy w h`` normalised to [0, 1] (a sixth integer column, the track
id, is read and written when present). Class names come from ``classes.txt`` (one per line) or
``data.yaml``'s ``names`` in the dataset root.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from active.data.boxes import xyxy_to_yolo, yolo_to_xyxy
from active.data.classes import ClassMap
from active.data.images import IMAGE_SUFFIXES, write_image
from active.data.record import FrameRecord, LoadReport
from active.errors import DataError
from active.utils.io import write_text


def read_yolo_names(root: Path) -> tuple[str, ...]:
    """Class names of a YOLO dataset from ``classes.txt`` or ``data.yaml``."""
    if (root / "classes.txt").is_file():
        text = _read_text(root / "classes.txt")
        names = [n.strip() for n in text.splitlines() if n.strip()]
        if not names or len(set(names)) != len(names):
            raise DataError(root / "classes.txt", "needs one class name per line, each once")
        return tuple(names)
    if (root / "data.yaml").is_file():
        import yaml

        try:
            data = yaml.safe_load((root / "data.yaml").read_text())
            names = data["names"]
        except Exception as exc:
            raise DataError(root / "data.yaml", f"cannot read class names: {exc}") from None
        try:
            out = tuple(str(names[k]) for k in sorted(names)) if isinstance(names, dict) else \
                tuple(str(n) for n in names)
        except TypeError:
            out = ()
        if not out or len(set(out)) != len(out):
            raise DataError(root / "data.yaml", "'names' must list each class name once")
        return out
    raise DataError(root, "YOLO dataset has neither classes.txt nor data.yaml with names")


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(path, f"not a readable image: {exc}") from None


def read_yolo(
    root: str | Path, classes: ClassMap | None = None, strict: bool = False,
    skip_bad_frames: bool = False,
) -> list[FrameRecord]:
    """Read ``root/images`` + ``root/labels`` (images without a label file have no objects).

    The video id of a frame is its name up to the last ``_`` (SVIA-style ``<video>_<frame>``),
    or the image's sub-folder when images are grouped in folders.
    """
    root = Path(root)
    image_dir, label_dir = root / "images", root / "labels"
    if not image_dir.is_dir():
        raise DataError(root, "not a YOLO dataset: no images/ folder")
    file_names = read_yolo_names(root)
    classes = classes or ClassMap(file_names)
    id_map = [classes.index(n, root) for n in file_names]
    report = LoadReport(strict, skip_bad_frames)
    records = []
    images = sorted(p for p in image_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    for img in images:
        rel = img.relative_to(image_dir).with_suffix(".txt")
        label_path = label_dir / rel
        width, height = _image_size(img)
        rows, line_nos = np.zeros((0, 5)), []
        if label_path.is_file():
            rows, line_nos = _parse_label_file(label_path)
        where = [f"line {n}" for n in line_nos]
        for col, what in ((0, "class id"), (5, "track id")):
            if col >= rows.shape[1]:
                continue
            values = rows[:, col]
            bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2**62)
            if col == 0:
                bad |= (values < 0) | (values >= len(file_names))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                allowed = f"not in 0..{len(id_map) - 1}" if col == 0 else "not a whole number"
                raise DataError(label_path, f"{where[i]}: {what} {values[i]:g} is {allowed}")
        cls = rows[:, 0].astype(np.int64)
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite: named by check_boxes
            boxes = yolo_to_xyxy(rows[:, 1:5], width, height)
        if not report.check_boxes(boxes, width, height, label_path, where):
            continue
        tracks = rows[:, 5].astype(np.int64) if rows.shape[1] > 5 else None
        video_id, _, number = img.stem.rpartition("_")
        if rel.parent != Path("."):
            video_id = rel.parent.as_posix()
        index = int(number) - 1 if number.isdigit() and int(number) > 0 else len(records)
        records.append(FrameRecord(
            boxes=boxes, labels=np.array([id_map[c] for c in cls], dtype=np.int64),
            class_names=classes.names, video_id=video_id or img.stem, frame_index=index,
            width=width, height=height, source=label_path if label_path.is_file() else img,
            image_path=img, track_ids=tracks,
        ))
    report.warn(str(root))
    return records


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not a text file (UTF-8): byte {exc.start} cannot be read") from None


def _parse_label_file(path: Path) -> tuple[np.ndarray, list[int]]:
    """The label file's rows (N, 5 or 6) and the line number of each."""
    rows, line_nos = [], []
    for n, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) not in (5, 6):
            raise DataError(path, f"line {n}: expected 5 or 6 columns, got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise DataError(path, f"line {n}: not numbers: {line.strip()!r}") from None
        line_nos.append(n)
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise DataError(path, "lines mix 5 and 6 columns")
    return np.array(rows, dtype=np.float64).reshape(-1, widths.pop() if widths else 5), line_nos


def write_yolo(records: list[FrameRecord], root: str | Path, images: bool = True) -> None:
    """Write records as a YOLO dataset (``images/<video>/``, ``labels/<video>/``, classes.txt)."""
    root = Path(root)
    names = records[0].class_names if records else ()
    write_text(root / "classes.txt", "".join(f"{n}\n" for n in names))
    for rec in records:
        rel = Path(rec.video_id) / rec.name
        if images:
            write_image(root / "images" / rel.with_suffix(".png"), rec.image)
        cxcywh = xyxy_to_yolo(rec.boxes, rec.width, rec.height)
        lines = []
        for i, (label, b) in enumerate(zip(rec.labels, cxcywh, strict=True)):
            row = f"{int(label)} {b[0]:.6f} {b[1]:.6f} {b[2]:.6f} {b[3]:.6f}"
            if rec.track_ids is not None:
                row += f" {int(rec.track_ids[i])}"
            lines.append(row + "\n")
        write_text(root / "labels" / rel.with_suffix(".txt"), "".join(lines))
