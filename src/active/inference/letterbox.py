"""Frames to a network batch: letterboxed, channels first, scaled to [0, 1] (numpy only, shared
by the PyTorch and ONNX paths)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from active.data.transforms import Letterbox, letterbox


def letterbox_batch(images: Sequence[np.ndarray], imgsz: tuple[int, int]
                    ) -> tuple[np.ndarray, list[Letterbox]]:
    """RGB uint8 frames -> a (B, 3, H, W) float32 array in [0, 1] and each frame's letterbox."""
    arrays, metas = [], []
    for img in images:
        out, _, meta = letterbox(img, imgsz)
        arrays.append(out)
        metas.append(meta)
    batch = np.stack(arrays).transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return batch, metas
