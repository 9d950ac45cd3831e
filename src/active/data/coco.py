"""COCO JSON detection annotations (``bbox`` = ``[x, y, w, h]`` in pixels, 0-based).

ACTIVE adds optional keys that other COCO tools ignore: ``track_id`` on annotations, and
``video_id``/``frame_index`` (plus ``video_path`` for frames that live only in a video) on images.
"""

from __future__ import annotations

import json
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


def read_coco(
    path: str | Path,
    image_root: str | Path | None = None,
    classes: ClassMap | None = None,
    strict: bool = False,
) -> list[FrameRecord]:
    """Read a COCO detection JSON into records (one per image, in ``images`` order).

    ``image_root`` (default: the JSON's folder) is where ``file_name`` is looked up. Categories
    are mapped through ``classes`` when given (unknown names raise), else taken as they are.
    """
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "annotation file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"malformed JSON: {exc}") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not isinstance(data.get(key), list):
            raise DataError(path, f"not a COCO detection file: no {key!r} list")
    cats = sorted(data["categories"], key=lambda c: _require(c, "id", path, "a category"))
    cat_names = [str(_require(c, "name", path, "a category")) for c in cats]
    if classes is None:
        classes = ClassMap(tuple(cat_names))
    cat_to_label = {c["id"]: classes.index(n, path) for c, n in zip(cats, cat_names, strict=True)}
    per_image: dict[Any, list[dict]] = {}
    for ann in data["annotations"]:
        per_image.setdefault(_require(ann, "image_id", path, "an annotation"), []).append(ann)
    report = LoadReport(strict)
    records = []
    for img in data["images"]:
        image_id = _require(img, "id", path, "an image")
        width, height = int(img.get("width", 0)), int(img.get("height", 0))
        if width <= 0 or height <= 0:
            raise DataError(path, f"image {image_id} has no valid width/height")
        anns = per_image.pop(image_id, [])
        boxes, labels, tracks = [], [], []
        for ann in anns:
            bbox = _require(ann, "bbox", path, f"annotation {ann.get('id')}")
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise DataError(path, f"annotation {ann.get('id')}: bbox must be [x, y, w, h]")
            cat = _require(ann, "category_id", path, f"annotation {ann.get('id')}")
            if cat not in cat_to_label:
                raise DataError(path, f"annotation {ann.get('id')}: unknown category_id {cat}")
            boxes.append(bbox)
            labels.append(cat_to_label[cat])
            tracks.append(int(ann.get("track_id", -1)))
        xyxy = xywh_to_xyxy(np.array(boxes, dtype=np.float64)).astype(np.float32)
        keep = report.check_boxes(xyxy, width, height, f"{path} (image {image_id})")
        file_name = img.get("file_name")
        image_path = root / file_name if file_name else None
        video_path = img.get("video_path")
        if video_path is not None:
            video_path = root / video_path
            if image_path is not None and not image_path.exists():
                image_path = None
        if image_path is not None and not image_path.exists():
            report.problem("skip an image whose file is missing", path,
                           f"image {image_id}: {image_path} not found")
            continue
        stem = Path(file_name).stem if file_name else str(image_id)
        video_id = str(img.get("video_id", Path(file_name).parent.name if file_name else "")
                       or stem)
        track_arr = np.array(tracks, dtype=np.int64)[keep]
        records.append(FrameRecord(
            boxes=xyxy[keep], labels=np.array(labels, dtype=np.int64)[keep],
            class_names=classes.names, video_id=video_id,
            frame_index=int(img.get("frame_index", img.get("frame_id", len(records)))),
            width=width, height=height, source=path, image_path=image_path,
            video_path=video_path,
            track_ids=track_arr if any(t >= 0 for t in tracks) else None,
        ))
    if per_image:
        report.problem("ignore annotations of unknown images", path,
                       f"annotations refer to missing image ids {sorted(per_image)[:5]}")
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
