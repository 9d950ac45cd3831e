"""COCO JSON detection annotations (``bbox`` = ``[x, y, w, h]`` in pixels, 0-based).

ACTIVE adds optional keys that other COCO tools ignore: ``track_id`` on annotations, and
``video_id``/``frame_index`` (plus ``video_path`` for frames that live only in a video) on images.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from active.data.boxes import xywh_to_xyxy, xyxy_to_xywh
from active.data.classes import ClassMap
from active.data.record import FrameRecord, LoadReport
from active.errors import DataError
from active.utils.io import write_json


def _require(obj: dict, key: str, path: Path, what: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise DataError(path, f"{what} has no {key!r} field")
    return obj[key]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _whole(value: Any, path: Path, what: str, low: int | None = None) -> int:
    """A JSON whole number (``3`` or ``3.0``), at least ``low``, else a DataError naming it."""
    ok = _number(value) and (isinstance(value, int) or (
        math.isfinite(value) and value == int(value)))
    if not ok or abs(value) >= 2**62 or (low is not None and value < low):
        need = "a whole number" if low is None else f"a whole number >= {low}"
        raise DataError(path, f"{what} must be {need}, got {json.dumps(value)[:60]}")
    return int(value)


def _key(value: Any, path: Path, what: str) -> Any:
    """An id used to join images, annotations and categories: a number or a string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DataError(path, f"{what} must be a number or a string, got "
                              f"{json.dumps(value)[:60]}")
    return value


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system cannot be there
        return False


def read_coco(
    path: str | Path,
    image_root: str | Path | None = None,
    classes: ClassMap | None = None,
    strict: bool = False,
    skip_bad_frames: bool = False,
) -> list[FrameRecord]:
    """Read a COCO detection JSON into records (one per image, in ``images`` order).

    ``image_root`` (default: the JSON's folder) is where ``file_name`` is looked up. Categories
    are mapped through ``classes`` when given (unknown names raise), else taken as they are.
    Anything malformed is a DataError naming the file (and the image or annotation id); bad
    boxes are handled as :class:`LoadReport` describes.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "annotation file not found") from None
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, a 5000-digit number, ...
        raise DataError(path, f"malformed JSON: {exc}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DataError(path, f"not a COCO detection file: no {key!r} list")
    cats = data["categories"]
    cat_ids = [_key(_require(c, "id", path, "a category"), path, "a category id") for c in cats]
    if len(set(cat_ids)) != len(cat_ids):
        raise DataError(path, "two categories share an id")
    cats = [c for _, c in sorted(zip(cat_ids, cats, strict=True),
                                 key=lambda p: (isinstance(p[0], str), p[0]))]
    cat_names = [str(_require(c, "name", path, "a category")) for c in cats]
    if classes is None:
        if not cat_names or len(set(cat_names)) != len(cat_names):
            raise DataError(path, "categories must name each class once (and at least one)")
        classes = ClassMap(tuple(cat_names))
    cat_to_label = {c["id"]: classes.index(n, path) for c, n in zip(cats, cat_names, strict=True)}
    per_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        image_id = _key(_require(ann, "image_id", path, "an annotation"), path,
                        "an annotation's image_id")
        per_image.setdefault(image_id, []).append(ann)
    report = LoadReport(strict, skip_bad_frames)
    records = []
    for img in data["images"]:
        image_id = _key(_require(img, "id", path, "an image"), path, "an image id")
        what = f"image {image_id}"
        width = _whole(img.get("width"), path, f"{what}: width", 1)
        height = _whole(img.get("height"), path, f"{what}: height", 1)
        anns = per_image.pop(image_id, [])
        boxes, labels, tracks, where = [], [], [], []
        for ann in anns:
            name = f"annotation {json.dumps(ann.get('id'))}"
            bbox = _require(ann, "bbox", path, name)
            if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_number, bbox)) \
                    or any(abs(v) > 1e300 for v in bbox if isinstance(v, int)):
                raise DataError(path, f"{name}: bbox must be [x, y, w, h], four numbers")
            cat = _require(ann, "category_id", path, name)
            if not isinstance(cat, int | float | str) or cat not in cat_to_label:
                raise DataError(path, f"{name}: unknown category_id {json.dumps(cat)[:60]}")
            boxes.append(bbox)
            labels.append(cat_to_label[cat])
            tracks.append(_whole(ann.get("track_id", -1), path, f"{name}: track_id"))
            where.append(f"{what}, {name}")
        with np.errstate(over="ignore", invalid="ignore"):  # non-finite: named by check_boxes
            xyxy = xywh_to_xyxy(np.array(boxes, dtype=np.float64))
        if not report.check_boxes(xyxy, width, height, path, where):
            continue
        file_name = img.get("file_name")
        video_path = img.get("video_path")
        for key, value in (("file_name", file_name), ("video_path", video_path)):
            if value is not None and (not isinstance(value, str) or not value.strip()
                                      or "\x00" in value):
                raise DataError(path, f"{what}: {key} must be a file name")
        image_path = root / file_name if file_name else None
        if video_path is not None:
            video_path = root / video_path
            if image_path is not None and not _exists(image_path):
                image_path = None
        if image_path is not None and not _exists(image_path):
            report.problem("skip an image whose file is missing", path,
                           f"{what}: {image_path} not found")
            continue
        stem = Path(file_name).stem if file_name else str(image_id)
        video_id = img.get("video_id", Path(file_name).parent.name if file_name else "")
        if not isinstance(video_id, str | int) or isinstance(video_id, bool):
            raise DataError(path, f"{what}: video_id must be a string or a number")
        frame = img.get("frame_index", img.get("frame_id", len(records)))
        track_arr = np.array(tracks, dtype=np.int64)
        records.append(FrameRecord(
            boxes=xyxy, labels=np.array(labels, dtype=np.int64),
            class_names=classes.names, video_id=str(video_id) or stem,
            frame_index=_whole(frame, path, f"{what}: frame_index", 0),
            width=width, height=height, source=path, image_path=image_path,
            video_path=video_path,
            track_ids=track_arr if any(t >= 0 for t in tracks) else None,
        ))
    if per_image:
        report.problem("ignore annotations of unknown images", path,
                       "annotations refer to missing image ids "
                       f"{sorted(map(str, per_image))[:5]}")
    report.warn(str(path))
    return records


def records_to_coco(records: list[FrameRecord], relative_to: Path | None = None) -> dict:
    """Records -> a COCO detection dict (categories numbered from 1 in class order)."""
    names = records[0].class_names if records else ()
    images, annotations = [], []
    for image_id, rec in enumerate(records, start=1):
        entry: dict[str, Any] = {"id": image_id, "width": rec.width, "height": rec.height,
                                 "video_id": rec.video_id, "frame_index": rec.frame_index}
        if rec.image_path is not None:
            entry["file_name"] = _rel(rec.image_path, relative_to)
        elif rec.video_path is not None:
            entry["video_path"] = _rel(rec.video_path, relative_to)
        else:
            entry["file_name"] = f"{rec.video_id}/{rec.name}.png"
        images.append(entry)
        for i, (box, label) in enumerate(zip(xyxy_to_xywh(rec.boxes), rec.labels, strict=True)):
            ann = {"id": len(annotations) + 1, "image_id": image_id,
                   "category_id": int(label) + 1, "bbox": [round(float(v), 3) for v in box],
                   "area": round(float(box[2] * box[3]), 3), "iscrowd": 0}
            if rec.track_ids is not None:
                ann["track_id"] = int(rec.track_ids[i])
            annotations.append(ann)
    categories = [{"id": i + 1, "name": n, "supercategory": "cell"} for i, n in enumerate(names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _rel(p: Path, base: Path | None) -> str:
    if base is None:
        return str(p)
    try:
        return os.path.relpath(p, base)
    except ValueError:
        return str(Path(p).resolve())


def write_coco(records: list[FrameRecord], path: str | Path) -> None:
    """Write records as a COCO JSON file atomically; file names are relative to its folder."""
    path = Path(path)
    write_json(path, records_to_coco(records, relative_to=path.parent), indent=None)
