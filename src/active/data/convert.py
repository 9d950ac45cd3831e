"""Converting a dataset between formats (``active data convert``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from active.data.record import FrameRecord

WRITE_FORMATS = ("svia", "yolo", "coco")


def write_dataset(records: Sequence[FrameRecord], out: str | Path, fmt: str,
                  images: bool = True) -> Path:
    """Write records in ``fmt`` under ``out``; returns the path a reader should be given.

    COCO writes ``out/annotations.json`` (and the frames under ``out/images`` when ``images``).
    """
    from active.data.coco import write_coco
    from active.data.images import write_image
    from active.data.svia import write_svia
    from active.data.yolo import write_yolo

    out = Path(out)
    records = list(records)
    if fmt == "svia":
        write_svia(records, out, images=images)
        return out
    if fmt == "yolo":
        write_yolo(records, out, images=images)
        return out
    if fmt == "coco":
        if images:
            copied = []
            for rec in records:
                path = out / "images" / rec.video_id / f"{rec.name}.png"
                write_image(path, rec.image)
                copied.append(_with_image(rec, path))
            records = copied
        write_coco(records, out / "annotations.json")
        return out / "annotations.json"
    raise ValueError(f"cannot write format {fmt!r} (one of {', '.join(WRITE_FORMATS)})")


def _with_image(rec: FrameRecord, path: Path) -> FrameRecord:
    from dataclasses import replace

    return replace(rec, image_path=path, video_path=None, image_array=None)
