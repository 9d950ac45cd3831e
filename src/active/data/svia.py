"""SVIA subset-A, in the layout of its release and of ``../shared/data/svia-sample``::

    ROOT/Subset-A/S_0001_0001.xml                          one VOC file per frame
    ROOT/Frames from original videos/S_0001/S_0001_0001.png
    ROOT/original videos/S_0001.mp4                        frame k is S_0001_{k+1:04d}

Quirks handled: ``<filename>`` ends in ``.xml``; corners are 1-based inclusive integers; class
names are ``S`` and ``Impurity``; ``<path>`` is not trusted: frames are found by name, and a frame
missing from the image folder is decoded from the video when the video is there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from active.data.classes import DEFAULT_CLASSES, ClassMap
from active.data.images import write_image
from active.data.record import FrameRecord, LoadReport
from active.data.voc import object_names, parse_voc, write_voc
from active.errors import DataError

ANNOTATION_DIR = "Subset-A"
FRAME_DIR = "Frames from original videos"
VIDEO_DIR = "original videos"
#: The names SVIA writes for ACTIVE's classes, in DEFAULT_CLASSES order.
SVIA_NAMES = ("S", "Impurity")


def find_svia_root(path: str | Path) -> Path | None:
    """The folder holding ``Subset-A`` at or up to two levels below ``path``, or None."""
    path = Path(path)
    if (path / ANNOTATION_DIR).is_dir():
        return path
    if path.is_dir():
        for pattern in ("*/" + ANNOTATION_DIR, "*/*/" + ANNOTATION_DIR):
            hits = sorted(p for p in path.glob(pattern) if p.is_dir())
            if hits:
                return hits[0].parent
    return None


def split_frame_name(stem: str, path: Path) -> tuple[str, int]:
    """``S_0001_0012`` -> (``S_0001``, 11): the video id and the 0-based frame index."""
    video, _, number = stem.rpartition("_")
    if not video or not number.isdigit() or int(number) < 1:
        raise DataError(path, f"file name {stem!r} is not <video>_<frame number from 1>")
    return video, int(number) - 1


def read_svia(
    root: str | Path, classes: ClassMap = DEFAULT_CLASSES, strict: bool = False,
    skip_bad_frames: bool = False,
) -> list[FrameRecord]:
    """Read every annotated frame of an SVIA subset-A folder, sorted by video and frame.

    A frame whose PNG is missing is read from ``original videos/<video>.mp4`` when present; with
    neither, the annotation is skipped with a warning (``strict=True``: an error). Bad boxes are
    handled as :class:`LoadReport` describes (``skip_bad_frames``: such frames dropped whole).
    """
    given = Path(root)
    found = find_svia_root(given)
    if found is None:
        raise DataError(given, f"no {ANNOTATION_DIR!r} folder here: not an SVIA subset-A root")
    root = found
    xmls = sorted((root / ANNOTATION_DIR).rglob("*.xml"))
    if not xmls:
        raise DataError(root / ANNOTATION_DIR, "no .xml annotation files")
    frames = {p.stem: p for p in (root / FRAME_DIR).rglob("*") if p.suffix.lower() in
              {".png", ".jpg", ".jpeg", ".bmp"}} if (root / FRAME_DIR).is_dir() else {}
    videos = {p.stem: p for p in (root / VIDEO_DIR).glob("*") if p.is_file()} if (
        root / VIDEO_DIR).is_dir() else {}
    report = LoadReport(strict, skip_bad_frames)
    records = []
    for xml in xmls:
        voc = parse_voc(xml)
        video_id, index = split_frame_name(xml.stem, xml)
        image_path = frames.get(xml.stem)
        video_path = videos.get(video_id) if image_path is None else None
        if image_path is None and video_path is None:
            report.problem("skip an annotation whose frame is missing", xml,
                           f"no frame {xml.stem}.png under {FRAME_DIR!r} and no video {video_id}")
            continue
        labels = np.array([classes.index(n, xml) for n in voc.names], dtype=np.int64)
        boxes = voc.boxes.copy()
        if not report.check_boxes(boxes, voc.width, voc.height, xml, object_names(voc)):
            continue
        records.append(FrameRecord(
            boxes=boxes, labels=labels, class_names=classes.names,
            video_id=video_id, frame_index=index, width=voc.width, height=voc.height,
            source=xml, image_path=image_path, video_path=video_path, track_ids=voc.track_ids,
        ))
    report.warn(str(root))
    records.sort(key=lambda r: (r.video_id, r.frame_index))
    return records


def write_svia(records: list[FrameRecord], root: str | Path, images: bool = True) -> None:
    """Write records in the SVIA layout (XML per frame; PNG per frame when ``images``).

    Labels are written with SVIA's names (``S``, ``Impurity``) when the records use ACTIVE's
    default classes, otherwise with the records' own class names.
    """
    root = Path(root)
    for rec in records:
        names = SVIA_NAMES if rec.class_names == DEFAULT_CLASSES.names else rec.class_names
        image_name = f"{rec.name}.png"
        if images:
            write_image(root / FRAME_DIR / rec.video_id / image_name, rec.image)
        write_voc(root / ANNOTATION_DIR / f"{rec.name}.xml", rec, image_name, names)
