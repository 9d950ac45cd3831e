"""The annotated video: a second pass over the video that draws, on every frame, each track
alive there (thin box, id, and a tail of its last positions coloured by grade).

Which track is alive in which frame is worked out once before the pass (one sorted index of
(frame, track, row)), so a frame costs only its own drawing: a few ms at 698x528.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from active.analysis.plots import IMPURITY_COLOUR, grade_colour
from active.analysis.sample import VideoAnalysis
from active.data.video import VideoReader, VideoWriter

#: Sub-pixel precision of the drawn tails (cv2's ``shift``: coordinates in 1/2**SHIFT px).
SHIFT = 2
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _per_frame(analysis: VideoAnalysis, n_frames: int) -> list[np.ndarray]:
    """For frame t, a (M, 2) int array of (track index, row in that track) of the tracks alive."""
    parts = []
    for i, r in enumerate(analysis.tracks):
        frames = np.asarray(r.track.frames, np.int64)
        rows = np.arange(len(frames), dtype=np.int64)
        parts.append(np.stack([frames, np.full_like(frames, i), rows], axis=1))
    if not parts:
        return [np.zeros((0, 2), np.int64)] * n_frames
    allrows = np.concatenate(parts)
    allrows = allrows[(allrows[:, 0] >= 0) & (allrows[:, 0] < n_frames)]
    allrows = allrows[np.argsort(allrows[:, 0], kind="stable")]
    bounds = np.searchsorted(allrows[:, 0], np.arange(n_frames + 1))
    return [allrows[bounds[t]:bounds[t + 1], 1:] for t in range(n_frames)]


def _overlay(image: np.ndarray, lines: list[str]) -> None:
    """White text on a darkened band in the top-left corner (in place)."""
    scale, thick, step = 0.4, 1, 14
    width = max(cv2.getTextSize(s, _FONT, scale, thick)[0][0] for s in lines) + 10
    h, w = image.shape[:2]
    band = image[: min(h, step * len(lines) + 6), : min(w, width)]
    band[:] = (band.astype(np.uint16) * 2 // 5).astype(image.dtype)
    for k, s in enumerate(lines):
        cv2.putText(image, s, (5, step * (k + 1)), _FONT, scale, (255, 255, 255), thick,
                    cv2.LINE_AA)


def write_annotated_video(video_path: Path, analysis: VideoAnalysis, out_path: Path,
                          fps: float, tail: int = 15) -> Path:
    """Write ``out_path``: every frame of ``video_path`` with the tracks of ``analysis`` drawn
    (thin box and id where detected, a tail of up to ``tail`` positions coloured by grade, grey
    when not graded; impurities in a neutral colour) and the frame's time and track counts in a
    corner. Written atomically: an error leaves no file. Returns ``out_path``."""
    tail = max(int(tail), 1)
    tracks = [r.track for r in analysis.tracks]
    sperm = [r.class_name == "sperm" for r in analysis.tracks]
    colours = [grade_colour(r.grade) if s else IMPURITY_COLOUR
               for r, s in zip(analysis.tracks, sperm, strict=True)]
    fixed = [np.round(np.asarray(t.xy_px, np.float64) * (1 << SHIFT)).astype(np.int32)
             for t in tracks]
    boxes = [np.round(np.asarray(t.boxes, np.float64)).astype(np.int32) for t in tracks]
    alive = _per_frame(analysis, max(analysis.frames, 0))
    empty = np.zeros((0, 2), np.int64)
    with VideoReader(video_path) as reader, VideoWriter(out_path, fps=fps) as writer:
        for frame in reader:
            image = np.ascontiguousarray(frame.image)
            now = alive[frame.index] if frame.index < len(alive) else empty
            n_sperm = 0
            for i, row in now.tolist():
                colour = colours[i]
                start = max(0, row - tail + 1)
                if row > start:
                    cv2.polylines(image, [fixed[i][start:row + 1]], False, colour, 1,
                                  cv2.LINE_AA, SHIFT)
                if tracks[i].detected[row]:
                    x0, y0, x1, y1 = boxes[i][row].tolist()
                    cv2.rectangle(image, (x0, y0), (max(x0, x1 - 1), max(y0, y1 - 1)), colour, 1)
                    if sperm[i]:
                        cv2.putText(image, str(tracks[i].id), (x1 + 1, max(8, y0 + 6)), _FONT,
                                    0.3, colour, 1, cv2.LINE_AA)
                else:  # coasting (interpolated): a dot where the track is assumed to be
                    cv2.circle(image, tuple(fixed[i][row].tolist()), 2 << SHIFT, colour, 1,
                               cv2.LINE_AA, SHIFT)
                n_sperm += sperm[i]
            _overlay(image, [f"t = {frame.index / fps:.2f} s, frame {frame.index}",
                             f"sperm tracks: {n_sperm}  impurities: {len(now) - n_sperm}"])
            writer.write(image)
    return out_path
