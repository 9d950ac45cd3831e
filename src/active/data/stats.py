"""Dataset statistics (``active data stats``) and box previews (``active data show``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from active.data.record import FrameRecord

PERCENTILES = (5, 25, 50, 75, 95)


def _percentiles(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {f"p{p}": float("nan") for p in PERCENTILES}
    return {f"p{p}": round(float(np.percentile(values, p)), 2) for p in PERCENTILES}


def dataset_stats(records: Sequence[FrameRecord]) -> dict:
    """Counts and size distributions of a dataset, as a JSON-friendly dict.

    Box sizes are in pixels of the original frames: width, height and sqrt(area) percentiles per
    class; objects per frame are counted over all classes and per class.
    """
    names = records[0].class_names if records else ()
    boxes = np.concatenate([r.boxes for r in records]) if records else np.zeros((0, 4))
    labels = np.concatenate([r.labels for r in records]) if records else np.zeros(0, int)
    per_frame = np.array([len(r) for r in records])
    videos: dict[str, int] = {}
    for r in records:
        videos[r.video_id] = videos.get(r.video_id, 0) + 1
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    classes = {}
    for c, name in enumerate(names):
        m = labels == c
        per_frame_c = np.array([int((r.labels == c).sum()) for r in records])
        classes[name] = {
            "boxes": int(m.sum()),
            "width": _percentiles(w[m]),
            "height": _percentiles(h[m]),
            "sqrt_area": _percentiles(np.sqrt(w[m] * h[m])),
            "per_frame_mean": round(float(per_frame_c.mean()), 3) if len(records) else 0.0,
        }
    sizes = sorted({(r.width, r.height) for r in records})
    return {
        "frames": len(records),
        "videos": len(videos),
        "frames_per_video": dict(sorted(videos.items())),
        "boxes": int(len(labels)),
        "image_sizes": [f"{w}x{h}" for w, h in sizes],
        "classes": classes,
        "objects_per_frame": {
            "mean": round(float(per_frame.mean()), 3) if len(per_frame) else 0.0,
            "min": int(per_frame.min()) if len(per_frame) else 0,
            "max": int(per_frame.max()) if len(per_frame) else 0,
            **_percentiles(per_frame),
        },
        "empty_frames": int((per_frame == 0).sum()),
    }


def format_stats(stats: dict) -> str:
    """A human-readable summary of :func:`dataset_stats`."""
    lines = [
        f"frames: {stats['frames']}   videos: {stats['videos']}   boxes: {stats['boxes']}   "
        f"image sizes: {', '.join(stats['image_sizes'])}",
        f"objects per frame: mean {stats['objects_per_frame']['mean']}, "
        f"median {stats['objects_per_frame']['p50']}, min {stats['objects_per_frame']['min']}, "
        f"max {stats['objects_per_frame']['max']}; empty frames: {stats['empty_frames']}",
        "",
        f"{'class':<10} {'boxes':>7} {'per frame':>9}   sqrt(area) px p5/p25/p50/p75/p95",
    ]
    for name, c in stats["classes"].items():
        pct = "/".join(f"{v:g}" for v in c["sqrt_area"].values())
        lines.append(f"{name:<10} {c['boxes']:>7} {c['per_frame_mean']:>9}   {pct}")
    lines.append("")
    lines.append("frames per video: " + ", ".join(
        f"{k} {v}" for k, v in stats["frames_per_video"].items()))
    return "\n".join(lines)


def plot_stats(records: Sequence[FrameRecord], path: str | Path) -> None:
    """Histograms of box size per class and of objects per frame, written as a PNG atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from active.utils.io import atomic_path

    names = records[0].class_names
    boxes = np.concatenate([r.boxes for r in records])
    labels = np.concatenate([r.labels for r in records])
    size = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    bins = np.linspace(0, max(float(size.max()) if len(size) else 1.0, 1.0) + 1, 40)
    for c, name in enumerate(names):
        if (labels == c).any():
            axes[0].hist(size[labels == c], bins=bins, alpha=0.6, label=name, density=True)
    axes[0].set(xlabel="sqrt(box area) [px]", ylabel="density", title="Box size per class")
    axes[0].legend()
    per_frame = [len(r) for r in records]
    axes[1].hist(per_frame, bins=30, color="grey")
    axes[1].set(xlabel="objects per frame", ylabel="frames", title="Objects per frame")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def show_records(records: Sequence[FrameRecord], out: str | Path, count: int = 6,
                 seed: int = 0) -> list[Path]:
    """Draw the boxes of ``count`` frames (spread over the videos) into PNGs under ``out``."""
    from active.data.images import write_image
    from active.utils.draw import draw_boxes, draw_counts

    out = Path(out)
    rng = np.random.default_rng(seed)
    by_video: dict[str, list[FrameRecord]] = {}
    for r in records:
        by_video.setdefault(r.video_id, []).append(r)
    chosen: list[FrameRecord] = []
    pools = [list(v) for v in by_video.values()]
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop(int(rng.integers(len(pool)))))
    written = []
    for rec in chosen:
        img = draw_boxes(rec.image, rec.boxes, rec.labels, rec.class_names, show_labels=False)
        counts = {n: int((rec.labels == c).sum()) for c, n in enumerate(rec.class_names)}
        draw_counts(img, counts)
        path = out / f"{rec.name}.png"
        write_image(path, img)
        written.append(path)
    return written
