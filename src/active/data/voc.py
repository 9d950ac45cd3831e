"""Pascal VOC XML (LabelImg) annotations: one file per image.

Corners in the file are 1-based inclusive integers (VOC's and SVIA's convention); in memory they
are 0-based exclusive float xyxy (see ``active.data.boxes``). Extra per-object elements ACTIVE
writes: ``<track_id>`` (object identity across frames); readers of other tools ignore it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from active.data.boxes import voc_to_xyxy, xyxy_to_voc
from active.data.images import IMAGE_SUFFIXES
from active.data.record import FrameRecord
from active.errors import DataError
from active.utils.io import atomic_open


@dataclass
class VocFile:
    """The parsed content of one VOC XML file; ``boxes`` are 0-based exclusive xyxy."""

    path: Path
    filename: str
    image_field: str
    folder: str
    width: int
    height: int
    names: list[str]
    boxes: np.ndarray
    track_ids: np.ndarray | None


def _text(node: ET.Element, tag: str, path: Path, required: bool = True) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        if required:
            raise DataError(path, f"missing <{tag}> in <{node.tag}>")
        return ""
    return child.text.strip()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    raw = _text(node, tag, path)
    try:
        return float(raw)
    except ValueError:
        raise DataError(path, f"<{tag}> is not a number: {raw!r}") from None


def _size(node: ET.Element, tag: str, path: Path) -> int:
    value = _number(node, tag, path)
    if not np.isfinite(value) or value != int(value) or not 0 < value < 2**31:
        raise DataError(path, f"<{tag}> is not a positive whole number of pixels: "
                              f"{_text(node, tag, path)!r}")
    return int(value)


def parse_voc(path: str | Path) -> VocFile:
    """Parse one VOC XML file. Malformed XML, missing fields or non-numbers raise DataError."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise DataError(path, "annotation file not found") from None
    except (ET.ParseError, ValueError, LookupError) as exc:  # LookupError: unknown encoding
        raise DataError(path, f"malformed XML: {exc}") from None
    if root.tag != "annotation":
        raise DataError(path, f"not a VOC annotation (root element <{root.tag}>)")
    size = root.find("size")
    if size is None:
        raise DataError(path, "missing <size>")
    width, height = _size(size, "width", path), _size(size, "height", path)
    names, corners, tracks = [], [], []
    for i, obj in enumerate(root.findall("object"), start=1):
        names.append(_text(obj, "name", path))
        bnd = obj.find("bndbox")
        if bnd is None:
            raise DataError(path, f"object {i} ({names[-1]}) has no <bndbox>")
        corners.append([_number(bnd, t, path) for t in ("xmin", "ymin", "xmax", "ymax")])
        tid = obj.find("track_id")
        raw = tid.text.strip() if tid is not None and tid.text else ""
        if raw and not (re.fullmatch(r"-?[0-9]{1,18}", raw)):
            raise DataError(path, f"object {i} ({names[-1]}): <track_id> is not a whole "
                                  f"number: {raw!r}")
        tracks.append(int(raw) if raw else -1)
    boxes = voc_to_xyxy(np.array(corners)) if corners else np.zeros((0, 4))
    return VocFile(
        path=path,
        filename=_text(root, "filename", path, required=False),
        image_field=_text(root, "path", path, required=False),
        folder=_text(root, "folder", path, required=False),
        width=width,
        height=height,
        names=names,
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        track_ids=np.array(tracks, dtype=np.int64) if any(t >= 0 for t in tracks) else None,
    )


def object_names(voc: VocFile) -> list[str]:
    """How errors name each object of ``voc``: ``object 3 (S)``, counted from 1 in file order."""
    return [f"object {i} ({n})" for i, n in enumerate(voc.names, start=1)]


def image_name_candidates(voc: VocFile) -> list[str]:
    """Names the image of a VOC file may have, most likely first (SVIA's ``.xml`` filename quirk
    and LabelImg's absolute ``<path>`` are both handled by taking base names only)."""
    out = []
    for raw in (voc.filename, Path(voc.image_field.replace("\\", "/")).name):
        if raw and Path(raw).suffix.lower() in IMAGE_SUFFIXES:
            out.append(Path(raw).name)
    out.extend(voc.path.stem + s for s in IMAGE_SUFFIXES)
    return list(dict.fromkeys(out))


def write_voc(
    path: str | Path,
    record: FrameRecord,
    image_name: str | None = None,
    names: tuple[str, ...] | None = None,
    folder: str | None = None,
) -> None:
    """Write ``record`` as a VOC XML file (1-based inclusive integer corners), atomically.

    ``names`` replaces ``record.class_names`` in the file (SVIA writes ``S``/``Impurity``).
    """
    path = Path(path)
    names = names or record.class_names
    image_name = image_name or f"{record.name}.png"
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = folder or record.video_id
    ET.SubElement(root, "filename").text = image_name
    ET.SubElement(root, "path").text = image_name
    size = ET.SubElement(root, "size")
    for tag, val in (("width", record.width), ("height", record.height), ("depth", 3)):
        ET.SubElement(size, tag).text = str(val)
    ET.SubElement(root, "segmented").text = "0"
    corners = xyxy_to_voc(record.boxes)
    for i, (label, c) in enumerate(zip(record.labels, corners, strict=True)):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = names[int(label)]
        ET.SubElement(obj, "pose").text = "Unspecified"
        b = record.boxes[i]
        edge = b[0] <= 0 or b[1] <= 0 or b[2] >= record.width or b[3] >= record.height
        ET.SubElement(obj, "truncated").text = str(int(edge))
        ET.SubElement(obj, "difficult").text = "0"
        if record.track_ids is not None:
            ET.SubElement(obj, "track_id").text = str(int(record.track_ids[i]))
        bnd = ET.SubElement(obj, "bndbox")
        for tag, val in zip(("xmin", "ymin", "xmax", "ymax"), c, strict=True):
            ET.SubElement(bnd, tag).text = str(int(val))
    ET.indent(root, space="\t")
    with atomic_open(path, "wb") as fh:
        ET.ElementTree(root).write(fh, encoding="utf-8")
