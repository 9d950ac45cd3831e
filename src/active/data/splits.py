"""Splits by video: a video's frames are never in two parts (its frames are near-duplicates).

A split file is JSON that later runs reuse, so every model of an experiment sees the same parts::

    {"kind": "kfold", "seed": 0, "videos": [...],
     "folds": [{"train": [...], "val": [...], "test": [...]}, ...]}

A ratio split (the paper's 6:2:2) is a split file with one fold.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from active.data.record import FrameRecord
from active.errors import DataError
from active.utils.io import write_json

PARTS = ("train", "val", "test")


@dataclass
class Fold:
    """Video ids of each part."""

    train: list[str]
    val: list[str]
    test: list[str]

    def part_of(self, video_id: str) -> str | None:
        for part in PARTS:
            if video_id in getattr(self, part):
                return part
        return None


@dataclass
class SplitPlan:
    """One or more folds over a fixed set of videos, made from a seed."""

    kind: str
    seed: int
    videos: list[str]
    folds: list[Fold] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> SplitPlan:
        try:
            plan = cls(kind=str(data["kind"]), seed=int(data["seed"]),
                       videos=[str(v) for v in data["videos"]],
                       folds=[Fold(**{p: [str(v) for v in f[p]] for p in PARTS})
                              for f in data["folds"]])
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(path, f"not a split file: {exc!r}") from None
        plan.validate(path)
        return plan

    def validate(self, path: Path | None = None) -> None:
        """Every fold puts every video in exactly one part."""
        for i, fold in enumerate(self.folds):
            seen = [v for p in PARTS for v in getattr(fold, p)]
            if sorted(seen) != sorted(self.videos) or len(set(seen)) != len(seen):
                raise DataError(path, f"fold {i} does not put every video in exactly one part")

    def save(self, path: str | Path) -> None:
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> SplitPlan:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(path, "split file not found") from None
        except json.JSONDecodeError as exc:
            raise DataError(path, f"malformed JSON: {exc}") from None
        return cls.from_dict(data, path)


def _shuffled(videos: Iterable[str], seed: int) -> list[str]:
    ordered = sorted(set(videos))
    rng = np.random.default_rng(seed)
    return [ordered[i] for i in rng.permutation(len(ordered))]


def ratio_counts(n: int, ratios: Sequence[float]) -> list[int]:
    """Split ``n`` items by ``ratios`` (largest remainder), giving every non-zero part at least
    one item while there are enough items."""
    r = np.asarray(ratios, dtype=np.float64)
    if (r < 0).any() or r.sum() <= 0:
        raise ValueError(f"ratios must be non-negative with a positive sum, got {ratios}")
    exact = r / r.sum() * n
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    for i in np.flatnonzero((counts == 0) & (r > 0)):
        donor = int(np.argmax(counts))
        if counts[donor] > 1:
            counts[donor] -= 1
            counts[i] += 1
    return counts.tolist()


def ratio_split(videos: Iterable[str], ratios: Sequence[float] = (6, 2, 2), seed: int = 0
                ) -> SplitPlan:
    """train/val/test by video in the given ratios (the paper's 6:2:2 by default)."""
    order = _shuffled(videos, seed)
    if not order:
        raise ValueError("no videos to split")
    n_train, n_val, _ = ratio_counts(len(order), ratios)
    fold = Fold(sorted(order[:n_train]), sorted(order[n_train:n_train + n_val]),
                sorted(order[n_train + n_val:]))
    return SplitPlan("ratio", seed, sorted(order), [fold])


def kfold_split(videos: Iterable[str], k: int = 5, seed: int = 0, val: bool = True
                ) -> SplitPlan:
    """k folds by video: fold i tests group i, validates on group i+1 (when ``val``), trains on the
    rest. With k = 5 each fold is the paper's 6:2:2; with k = number of videos it is
    leave-one-video-out."""
    order = _shuffled(videos, seed)
    if not 2 <= k <= len(order):
        raise ValueError(f"k must be between 2 and the number of videos ({len(order)}), got {k}")
    if val and k < 3:
        raise ValueError("a validation part needs k >= 3")
    groups = [sorted(order[i::k]) for i in range(k)]
    folds = []
    for i in range(k):
        val_group = groups[(i + 1) % k] if val else []
        train = [v for j, g in enumerate(groups) if j != i and g is not val_group for v in g]
        folds.append(Fold(sorted(train), list(val_group), groups[i]))
    return SplitPlan("kfold", seed, sorted(order), folds)


def apply_fold(records: Sequence[FrameRecord], fold: Fold, source: Path | None = None
               ) -> dict[str, list[FrameRecord]]:
    """Partition records by the fold's video lists; every record must belong to one part."""
    parts: dict[str, list[FrameRecord]] = {p: [] for p in PARTS}
    missing = sorted({r.video_id for r in records if fold.part_of(r.video_id) is None})
    if missing:
        raise DataError(source, f"videos not in the split: {', '.join(missing[:10])}")
    for rec in records:
        parts[fold.part_of(rec.video_id)].append(rec)
    return parts
