"""Synthetic videos with their ground truth: in memory (:func:`render_video`) or on disk in the
SVIA layout plus COCO JSON and per-track truth (:func:`generate_dataset`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from active.data.classes import DEFAULT_CLASSES
from active.data.coco import write_coco
from active.data.record import FrameRecord
from active.data.svia import ANNOTATION_DIR, FRAME_DIR, VIDEO_DIR, write_svia
from active.data.synth.config import SynthConfig
from active.data.synth.motion import SPERM
from active.data.synth.render import background, render_frame
from active.data.synth.scene import simulate
from active.data.synth.truth import (
    NL_PER_UM3,
    TrackTruth,
    concentration_m_per_ml,
    sperm_per_frame_mean,
    video_truth,
)
from active.data.video import write_video
from active.utils.io import write_json

TRACK_DIR = "tracks"
COCO_FILE = "coco.json"
MANIFEST_FILE = "synth.json"


@dataclass
class SynthVideo:
    """One rendered video: ``frames`` (H x W x 3 uint8 RGB), one record per frame (boxes are
    float pixel xyxy, 0-based, exclusive right/bottom, with ``track_ids`` and ``image_array``),
    the true tracks of every object that is annotated at least once, and the fluid's drift.

    The per-video truth is available in memory as properties (unrounded) and as :attr:`truth`
    (the JSON-ready dict written at the top of ``tracks/<video>.json``).
    """

    video_id: str
    seed: int
    config: SynthConfig
    frames: list[np.ndarray]
    records: list[FrameRecord]
    tracks: list[TrackTruth]
    fluid_drift_px_per_frame: np.ndarray = field(default_factory=lambda: np.zeros(2))

    @property
    def fluid_drift_um_per_s(self) -> np.ndarray:
        """(2,) the fluid's drift (vx, vy) in µm/s."""
        return self.fluid_drift_px_per_frame * self.config.um_per_px * self.config.fps

    @property
    def sperm_per_frame_mean(self) -> float:
        return sperm_per_frame_mean(self.records)

    @property
    def field_volume_nl(self) -> float:
        return self.config.field_volume_um3 * NL_PER_UM3

    @property
    def concentration_m_per_ml(self) -> float:
        """Realised concentration: sperm boxes per frame over the field volume, million/mL."""
        return concentration_m_per_ml(self.config, self.sperm_per_frame_mean)

    @property
    def truth(self) -> dict[str, Any]:
        """Per-video truth, rounded for JSON: ``um_per_px``, ``fps``, ``chamber_depth_um``,
        ``fluid_drift_px_per_frame``, ``fluid_drift_um_per_s``, ``sperm_per_frame_mean``,
        ``field_volume_nl``, ``concentration_m_per_ml``."""
        return video_truth(self.config, self.records, self.fluid_drift_px_per_frame)

    def tracks_json(self) -> dict[str, Any]:
        """The ground-truth file ``tracks/<video>.json``."""
        cfg = self.config
        return {
            "video_id": self.video_id,
            "seed": self.seed,
            "width": cfg.width,
            "height": cfg.height,
            "frames": len(self.frames),
            **self.truth,
            "centre": "true object centre in the image, pixels (x, y), 0-based, drift included",
            "tracks": [t.to_json() for t in self.tracks],
        }


@dataclass
class SynthSummary:
    """What :func:`generate_dataset` wrote."""

    out: Path
    videos: int
    frames: int
    sperm_boxes: int
    impurity_boxes: int
    tracks: int
    seconds: float
    video_ids: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"wrote {self.videos} videos x {self.frames} frames to {self.out}: "
            f"{self.sperm_boxes} sperm and {self.impurity_boxes} impurity boxes, "
            f"{self.tracks} tracks ({self.seconds:.1f} s)"
        )


def render_video(cfg: SynthConfig, seed: int, video_id: str) -> SynthVideo:
    """Render ``cfg.frames`` frames of one synthetic video; the same seed gives the same video."""
    rng = np.random.default_rng(seed)
    scene = simulate(cfg, rng, cfg.frames)
    base = background(cfg, rng)
    objects = {o.uid: o for o in (*scene.sperm, *scene.impurities)}
    frames, per_frame = [], []
    for t in range(cfg.frames):
        image, visible = render_frame(cfg, scene, t, base, rng)
        frames.append(image)
        per_frame.append(visible)
    # Track ids count 1, 2, ... in order of first appearance.
    order: dict[int, int] = {}
    for visible in per_frame:
        for v in sorted(visible, key=lambda v: v.uid):
            order.setdefault(v.uid, len(order) + 1)
    records, points = [], {uid: ([], []) for uid in order}
    for t, (image, visible) in enumerate(zip(frames, per_frame, strict=True)):
        visible = sorted(visible, key=lambda v: order[v.uid])
        for v in visible:
            points[v.uid][0].append(t)
            points[v.uid][1].append(v.centre)
        records.append(
            FrameRecord(
                boxes=np.array([v.box for v in visible], np.float32).reshape(-1, 4),
                labels=np.array([v.label for v in visible], np.int64),
                class_names=DEFAULT_CLASSES.names,
                video_id=video_id,
                frame_index=t,
                width=cfg.width,
                height=cfg.height,
                track_ids=np.array([order[v.uid] for v in visible], np.int64),
                image_array=image,
            )
        )
    tracks = []
    for uid, tid in order.items():
        obj = objects[uid]
        fr, xy = points[uid]
        # The generated speed relative to the fluid (the fluid's drift is the video's).
        speed = 0.0 if obj.motility == "immotile" else obj.motion.speed
        if obj.label != SPERM:
            speed = float(np.linalg.norm(obj.motion.drift))
        tracks.append(
            TrackTruth(
                id=tid,
                class_name=DEFAULT_CLASSES.names[obj.label],
                motility=obj.motility,
                speed_px_per_frame=float(speed),
                fps=cfg.fps,
                frames=np.array(fr, np.int64),
                centres=np.array(xy, np.float64).reshape(-1, 2),
                um_per_px=cfg.um_per_px,
                fluid_px_per_frame=scene.fluid.copy(),
            )
        )
    return SynthVideo(video_id, seed, cfg, frames, records, tracks, scene.fluid.copy())


def video_seed(seed: int, index: int) -> int:
    """The seed of video ``index`` (0-based) of a dataset generated with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def generate_dataset(
    out: Path,
    videos: int,
    frames: int,
    seed: int,
    cfg: SynthConfig | None = None,
    progress: bool = False,
) -> SynthSummary:
    """Render ``videos`` videos of ``frames`` frames and write them under ``out``.

    Layout (every file written atomically)::

        out/Subset-A/SYN_0001_0001.xml                 VOC, 1-based corners, <track_id> per object
        out/Frames from original videos/SYN_0001/SYN_0001_0001.png
        out/original videos/SYN_0001.mp4                mp4v at cfg.fps
        out/tracks/SYN_0001.json                        true tracks, grades, kinematics, drift,
                                                        concentration
        out/coco.json                                   all frames, ``track_id`` per annotation
        out/synth.json                                  seed, video seeds, the full config and
                                                        each video's concentration and drift
    """
    if videos < 1 or frames < 1:
        raise ValueError(f"need at least one video and one frame, got {videos} x {frames}")
    start = time.perf_counter()
    out = Path(out)
    cfg = replace(cfg or SynthConfig(), frames=frames)
    ids = [f"SYN_{i + 1:04d}" for i in range(videos)]
    loop: Any = range(videos)
    if progress:
        from tqdm import tqdm

        loop = tqdm(loop, desc="synth", unit="video")
    all_records: list[FrameRecord] = []
    per_video: list[dict[str, Any]] = []
    n_tracks = 0
    for i in loop:
        video = render_video(cfg, video_seed(seed, i), ids[i])
        write_svia(video.records, out)
        write_video(out / VIDEO_DIR / f"{ids[i]}.mp4", video.frames, fps=cfg.fps)
        write_json(out / TRACK_DIR / f"{ids[i]}.json", video.tracks_json(), indent=None)
        n_tracks += len(video.tracks)
        truth = video.truth
        per_video.append(
            {
                "video": ids[i],
                "concentration_m_per_ml": truth["concentration_m_per_ml"],
                "fluid_drift_um_per_s": truth["fluid_drift_um_per_s"],
            }
        )
        for rec in video.records:  # keep the boxes, let the pixels go
            rec.image_path = out / FRAME_DIR / rec.video_id / f"{rec.name}.png"
            rec.source = out / ANNOTATION_DIR / f"{rec.name}.xml"
            rec.image_array = None
        all_records.extend(video.records)
    write_coco(all_records, out / COCO_FILE)
    manifest = {
        "seed": seed,
        "videos": ids,
        "video_seeds": [video_seed(seed, i) for i in range(videos)],
        "frames": frames,
        "um_per_px": cfg.um_per_px,
        "chamber_depth_um": cfg.chamber_depth_um,
        "per_video": per_video,
        "config": cfg.to_dict(),
    }
    write_json(out / MANIFEST_FILE, manifest)
    labels = np.concatenate([r.labels for r in all_records])
    return SynthSummary(
        out=out,
        videos=videos,
        frames=frames,
        sperm_boxes=int((labels == 0).sum()),
        impurity_boxes=int((labels == 1).sum()),
        tracks=n_tracks,
        seconds=time.perf_counter() - start,
        video_ids=ids,
    )
