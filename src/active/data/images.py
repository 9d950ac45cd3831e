"""Reading and writing single images with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from active.errors import DataError
from active.utils.io import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as H x W x 3 uint8 RGB (grey images are repeated to 3 channels)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "image file not found")
    if path.stat().st_size == 0:
        raise DataError(path, "image file is empty (0 bytes)")
    data = np.fromfile(path, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(path, "not a readable image (corrupt or unsupported format)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write an H x W x 3 uint8 RGB image atomically; the format follows the suffix."""
    path = Path(path)
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(path.suffix or ".png", bgr)
    if not ok:
        raise DataError(path, "could not encode image")
    with atomic_path(path) as tmp:
        buf.tofile(tmp)
