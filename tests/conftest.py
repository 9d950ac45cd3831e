"""Shared fixtures: the real SVIA sample (skipped when absent) and small generated datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from active.data.classes import DEFAULT_CLASSES
from active.data.record import FrameRecord

REPO = Path(__file__).resolve().parents[1]
SVIA_SAMPLE = REPO.parent / "shared" / "data" / "svia-sample"


@pytest.fixture(scope="session")
def svia_root() -> Path:
    """The shared SVIA sample, or a skip that says why."""
    if not (SVIA_SAMPLE / "Subset-A").is_dir():
        pytest.skip(f"SVIA sample not found at {SVIA_SAMPLE} (it lives in ../shared beside the "
                    "checkout, not in the repository)")
    return SVIA_SAMPLE


def make_records(n_videos: int = 2, n_frames: int = 3, size: tuple[int, int] = (96, 64),
                 seed: int = 0, tracks: bool = True) -> list[FrameRecord]:
    """Small in-memory records with random integer-cornered boxes drawn as dark rectangles."""
    rng = np.random.default_rng(seed)
    w, h = size
    records = []
    for v in range(n_videos):
        for f in range(n_frames):
            n = int(rng.integers(0, 6))
            x0 = rng.integers(0, w - 12, n)
            y0 = rng.integers(0, h - 12, n)
            bw, bh = rng.integers(3, 12, n), rng.integers(3, 12, n)
            boxes = np.stack([x0, y0, x0 + bw, y0 + bh], 1).astype(np.float32)
            img = np.full((h, w, 3), 180, np.uint8)
            for b in boxes.astype(int):
                img[b[1]:b[3], b[0]:b[2]] = 60
            records.append(FrameRecord(
                boxes=boxes, labels=rng.integers(0, 2, n), class_names=DEFAULT_CLASSES.names,
                video_id=f"V_{v + 1:04d}", frame_index=f, width=w, height=h,
                track_ids=np.arange(n) + 100 * v if tracks else None, image_array=img,
            ))
    return records


@pytest.fixture
def records() -> list[FrameRecord]:
    return make_records()


def tiny_synth(root: Path, videos: int, frames: int, seed: int = 0) -> Path:
    """A small synthetic SVIA-layout dataset (160x128 frames, a few objects each) for tiny runs."""
    from active.data.synth import SynthConfig, generate_dataset

    cfg = SynthConfig(width=160, height=128, sperm_in_view=(6, 10), impurities_in_view=(1, 2),
                      dots_in_view=(5, 10))
    generate_dataset(root, videos=videos, frames=frames, seed=seed, cfg=cfg)
    return root
