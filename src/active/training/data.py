"""Records -> network inputs: a torch Dataset with letterbox/augmentation and its collate."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from active.data.record import FrameRecord
from active.data.transforms import (
    AugmentConfig,
    dark_border,
    flip,
    hard_negatives,
    letterbox,
    mosaic,
    photometric,
    random_affine,
)


class DetectionDataset(Dataset):
    """Frames as ``(image, targets)`` pairs at the network's input size.

    ``image`` is a float32 tensor (3, H, W) in [0, 1]; ``targets`` is (n, 5) float32
    ``[class, x0, y0, x1, y1]`` in input pixels. With ``augment`` None the frame is only
    letterboxed (evaluation). Random draws come from ``(seed, epoch, index)``, so a run is the same
    whatever the number of workers; call :meth:`set_epoch` each epoch.
    """

    def __init__(self, records: Sequence[FrameRecord], imgsz: tuple[int, int] = (416, 416),
                 augment: AugmentConfig | None = None, seed: int = 0, cache: bool = True) -> None:
        self.records = list(records)
        self.imgsz = tuple(imgsz)
        self.augment = augment
        self.seed = seed
        self.epoch = 0
        self._cache: dict[int, np.ndarray] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def image(self, i: int) -> np.ndarray:
        if self._cache is None:
            return self.records[i].image
        if i not in self._cache:
            self._cache[i] = self.records[i].image
        return self._cache[i]

    def preload(self) -> None:
        """Decode every frame into the cache now: DataLoader workers are forked each epoch and
        inherit it, where frames they cached themselves would die with them."""
        if self._cache is not None:
            for i in range(len(self)):
                self.image(i)

    def raw(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rec = self.records[i]
        return self.image(i), rec.boxes.copy(), rec.labels.copy()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.augment
        if cfg is None:
            img, boxes, labels = self.raw(i)
            img, boxes, _ = letterbox(img, self.imgsz, boxes)
        else:
            rng = np.random.default_rng((self.seed, self.epoch, i))
            if cfg.mosaic and rng.random() < cfg.mosaic and len(self) > 1:
                picks = [i, *rng.integers(0, len(self), 3).tolist()]
                parts = [self.raw(int(k)) for k in picks]
                img, boxes, labels = mosaic([p[0] for p in parts], [p[1] for p in parts],
                                            [p[2] for p in parts], self.imgsz, cfg, rng)
            else:
                img, boxes, labels = random_affine(*self.raw(i), self.imgsz, cfg, rng)
            if rng.random() < cfg.fliplr:
                img, boxes = flip(img, boxes, horizontal=True)
            if rng.random() < cfg.flipud:
                img, boxes = flip(img, boxes, horizontal=False)
            if cfg.negatives and rng.random() < cfg.negatives:
                img = hard_negatives(img, boxes, rng)
            if cfg.border and rng.random() < cfg.border:
                img = dark_border(img, boxes, rng)
            img = photometric(img, cfg, rng)
        tensor = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float() / 255.0
        targets = np.concatenate([labels[:, None].astype(np.float32), boxes], 1)
        return tensor, torch.from_numpy(targets.reshape(-1, 5))


def collate(batch: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
    """Stack images to (B, 3, H, W); targets to (M, 6) ``[batch index, class, x0, y0, x1, y1]``."""
    images = torch.stack([b[0] for b in batch])
    targets = [torch.cat([torch.full((len(t), 1), float(k)), t], 1) for k, (_, t) in
               enumerate(batch)]
    return images, torch.cat(targets) if targets else torch.zeros((0, 6))
