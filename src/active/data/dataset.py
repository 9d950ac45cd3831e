"""One entry point for every annotation format: ``load_dataset(path)``."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from active.data.classes import DEFAULT_CLASSES, ClassMap
from active.data.images import IMAGE_SUFFIXES
from active.data.record import FrameRecord, LoadReport
from active.data.voc import image_name_candidates, object_names, parse_voc
from active.errors import DataError

Format = Literal["auto", "svia", "voc", "yolo", "coco"]
FORMATS: tuple[str, ...] = ("auto", "svia", "voc", "yolo", "coco")


def detect_format(path: str | Path) -> str:
    """Guess a dataset's format from its layout; raises DataError when nothing fits."""
    from active.data.svia import find_svia_root

    path = Path(path)
    if not path.exists():
        raise DataError(path, "dataset path does not exist")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return "coco"
        raise DataError(path, "a dataset file must be a COCO .json")
    if find_svia_root(path) is not None:
        return "svia"
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return "yolo"
    if any(path.rglob("*.xml")):
        return "voc"
    if (path / "annotations.json").is_file():
        return "coco"
    raise DataError(path, "cannot tell the dataset format (SVIA, VOC, YOLO or COCO); pass fmt")


def load_dataset(
    path: str | Path,
    fmt: Format = "auto",
    classes: ClassMap | None = DEFAULT_CLASSES,
    strict: bool = False,
    skip_bad_frames: bool = False,
) -> list[FrameRecord]:
    """Read an annotated dataset as FrameRecords sorted by (video, frame).

    Args:
        path: an SVIA root, a VOC folder, a YOLO root, or a COCO ``.json`` (or a folder with
            ``annotations.json``).
        fmt: the format, or ``"auto"`` to detect it from the layout.
        classes: the class map names are resolved through (unknown names are an error);
            ``None`` keeps the dataset's own names (YOLO and COCO only).
        strict: make repairable problems (boxes partly outside the image, clipped; missing
            frames, skipped) errors.
        skip_bad_frames: drop a frame with an unusable box (not finite, inverted, zero-size,
            mostly outside the image) whole, with a warning, instead of raising a DataError;
            a frame is never kept with fewer boxes (see :class:`LoadReport`).
    """
    from active.data.coco import read_coco
    from active.data.svia import read_svia
    from active.data.yolo import read_yolo

    path = Path(path)
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "svia":
        records = read_svia(path, classes or DEFAULT_CLASSES, strict, skip_bad_frames)
    elif fmt == "voc":
        records = read_voc_dir(path, classes or DEFAULT_CLASSES, strict, skip_bad_frames)
    elif fmt == "yolo":
        records = read_yolo(path, classes, strict, skip_bad_frames)
    elif fmt == "coco":
        json_path = path / "annotations.json" if path.is_dir() else path
        records = read_coco(json_path, classes=classes, strict=strict,
                            skip_bad_frames=skip_bad_frames)
    else:
        raise DataError(path, f"unknown dataset format {fmt!r} (one of {', '.join(FORMATS)})")
    if not records:
        raise DataError(path, "dataset holds no annotated frames")
    records.sort(key=lambda r: (r.video_id, r.frame_index))
    return records


def read_voc_dir(
    root: str | Path, classes: ClassMap = DEFAULT_CLASSES, strict: bool = False,
    skip_bad_frames: bool = False,
) -> list[FrameRecord]:
    """Read every VOC XML under ``root``; images are found by name anywhere under ``root``.

    The video id is the XML's name up to its last ``_`` (SVIA-style) or, failing that, its
    ``<folder>``; the frame index is the number after the last ``_`` (1-based in the name).
    """
    root = Path(root)
    images: dict[str, Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES:
            images.setdefault(p.name, p)
    report = LoadReport(strict, skip_bad_frames)
    records = []
    for xml in sorted(root.rglob("*.xml")):
        voc = parse_voc(xml)
        image = next((images[n] for n in image_name_candidates(voc) if n in images), None)
        if image is None:
            report.problem("skip an annotation whose image is missing", xml,
                           f"no image named {image_name_candidates(voc)[0]} under {root}")
            continue
        video, _, number = xml.stem.rpartition("_")
        if not (video and number.isdigit() and int(number) > 0):
            video, number = voc.folder or xml.parent.name, str(len(records) + 1)
        labels = np.array([classes.index(n, xml) for n in voc.names], dtype=np.int64)
        boxes = voc.boxes.copy()
        if not report.check_boxes(boxes, voc.width, voc.height, xml, object_names(voc)):
            continue
        records.append(FrameRecord(
            boxes=boxes, labels=labels, class_names=classes.names, video_id=video,
            frame_index=int(number) - 1, width=voc.width, height=voc.height, source=xml,
            image_path=image, track_ids=voc.track_ids,
        ))
    report.warn(str(root))
    return records
