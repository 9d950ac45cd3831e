"""Clips for the analysis benchmark and the tracker comparison (imported by
``scripts/bench_analysis.py``): synthetic clips rendered and detected once (cached), real videos
with track ids, and our tracker, trackpy's linker and ByteTrack (the ``trackers`` package) on the
same detections, scored by TrackEval's HOTA, CLEAR and Identity classes.

Needs ``pip install -e '.[bench]'`` (trackpy, trackers, TrackEval; not project dependencies).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from active.analysis.tracking import TrackerConfig, link, small_tracks
from active.data.synth import SynthConfig, TrackTruth, render_video, video_seed

Frames = list[tuple[np.ndarray, np.ndarray]]  # per frame: (N, 4) xyxy boxes, (N,) ids


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        sys.exit(f"this benchmark needs {module}: pip install trackpy trackers trackeval")


@dataclass
class Clip:
    """One synthetic clip: the detector's boxes and the truth (no pixels)."""

    name: str
    cfg: SynthConfig
    det: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per frame: boxes, classes, scores
    gt: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per frame: boxes, labels, track ids
    tracks: list[TrackTruth]
    fluid_um_per_s: np.ndarray
    concentration: float
    detect_s: float

    @property
    def size(self) -> tuple[int, int]:
        return self.cfg.width, self.cfg.height

    def gt_sperm(self) -> Frames:
        return [(b[lab == 0], i[lab == 0]) for b, lab, i in self.gt]

    def split(self, source: str) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        rows = self.det if source == "detector" else [
            (b, lab, np.ones(len(b), np.float32)) for b, lab, _ in self.gt]
        return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def synthetic_profile(seed: int, clips: int, frames: int, cache: Path,
                      weights: str = "default") -> Any:
    """The synthetic 'microscope' calibrated as a lab would (``active calibrate``): the model's
    (the bundled one by default) unbiased counting threshold on ``clips`` annotated synthetic
    clips of seeds other than the benchmark's (``video_seed(seed, i)``)."""
    from active.data.ap import ImageResult
    from active.evaluation.counting import count_bias, count_threshold
    from active.inference.predictor import Predictor, resolve_weights
    from active.inference.profile import Profile, load_profile, now
    from active.utils.io import file_sha256

    path = cache / f"profile_{seed}_{clips}x{frames}.json"
    model = resolve_weights(weights)  # the checkpoint `active analyze --profile` checks
    if path.is_file():
        prof = load_profile(path)
        if prof.model_sha256 == file_sha256(model):
            return prof
    pred = Predictor(weights, backend=_backend(weights), conf=0.001)
    results = []
    for i in range(clips):
        video = render_video(replace(SynthConfig(), frames=frames), video_seed(seed, i), "CAL")
        for k in range(0, frames, 8):
            dets = pred.predict_frames(video.frames[k:k + 8])
            for r, d in zip(video.records[k:k + 8], dets, strict=True):
                results.append(ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls))
    t = round(count_threshold(results, 0), 4)
    prof = Profile(model.name, file_sha256(model), t, 0.35,
                   {"data": f"synthetic, seeds video_seed({seed}, i < {clips})",
                    "frames": len(results)},
                   {"at_fitted": count_bias(results, 0, t), "at_model_default":
                    count_bias(results, 0, Predictor(weights, backend=_backend(weights)).conf)},
                   now())
    prof.save(path)
    return prof


def _model_file(weights: str) -> Path:
    """The file a detector runs from: the bundled model's ONNX twin, or the path given."""
    from active.inference.predictor import BUNDLED, bundled_weights, resolve_weights

    return (bundled_weights(BUNDLED[weights], suffix=".onnx") if weights in BUNDLED
            else resolve_weights(weights))


def _backend(weights: str) -> str:
    """ONNX Runtime for the bundled models (what ships), else whatever the file needs."""
    from active.inference.predictor import BUNDLED

    return "onnx" if weights in BUNDLED else "auto"


def load_clip(seed: int, index: int, frames: int, cache: Path, predictor: list[Any],
              conf: float | None = None, weights: str = "default") -> Clip:
    """Render clip ``index`` and detect on it with ``weights`` (the bundled model by default),
    or read both from the cache."""
    from active.utils.io import file_sha256

    cfg = replace(SynthConfig(), frames=frames)
    model = file_sha256(_model_file(weights))  # another model detects afresh
    key = hashlib.sha256(json.dumps([cfg.to_dict(), conf, model], sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]
    name = f"BENCH_{seed}_{index:02d}"
    path = cache / f"{name}_{frames}f.npz"
    if path.is_file():
        try:
            z = np.load(path, allow_pickle=False)
            truth = pickle.loads(z["truth"].tobytes())
            if str(z["key"]) == key:
                cuts = np.cumsum(z["counts"])[:-1]
                det = list(zip(np.split(z["boxes"], cuts), np.split(z["classes"], cuts),
                               np.split(z["scores"], cuts), strict=True))
                return Clip(name, cfg, det, truth["gt"], truth["tracks"], truth["fluid"],
                            truth["conc"], float(z["detect_s"]))
        except Exception as exc:  # a stale cache (the generator changed): render again
            print(f"  cache {path.name} unusable ({exc}); rendering again")
    video = render_video(cfg, video_seed(seed, index), name)
    if not predictor:
        from active.inference.predictor import Predictor

        predictor.append(Predictor(weights, backend=_backend(weights), conf=conf))
    t0 = time.perf_counter()
    res = []
    for k in range(0, len(video.frames), 8):
        res += predictor[0].predict_frames(video.frames[k:k + 8])
    detect_s = time.perf_counter() - t0
    det = [(r.xyxy.astype(np.float64), r.cls.astype(np.int64), r.conf.astype(np.float64))
           for r in res]
    gt = [(r.boxes.astype(np.float64), np.asarray(r.labels), np.asarray(r.track_ids))
          for r in video.records]
    truth = {"gt": gt, "tracks": video.tracks, "fluid": video.fluid_drift_um_per_s,
             "conc": video.concentration_m_per_ml}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, key=key, detect_s=detect_s,
                        counts=np.array([len(d[0]) for d in det]),
                        boxes=np.concatenate([d[0] for d in det]).reshape(-1, 4),
                        classes=np.concatenate([d[1] for d in det]),
                        scores=np.concatenate([d[2] for d in det]),
                        truth=np.frombuffer(pickle.dumps(truth), np.uint8))
    return Clip(name, cfg, det, gt, video.tracks, truth["fluid"], truth["conc"], detect_s)


def tracked_clips(path: Path, um_per_px: float, fps: float, conf: float | None,
                  weights: str) -> list[Clip]:
    """Real videos with track ids (YOLO ``class cx cy w h track_id`` or COCO ``track_id``, e.g.
    VISEM-Tracking), one clip per video, frames in order, detected by ``weights``."""
    from active.data.dataset import load_dataset
    from active.inference.predictor import Predictor

    records = load_dataset(path)
    videos: dict[str, list[Any]] = {}
    for r in records:
        if r.track_ids is None:
            sys.exit(f"{r.source or path}: frame {r.name} has no track ids; tracking needs "
                     "annotations with a track id per box")
        videos.setdefault(r.video_id, []).append(r)
    predictor = Predictor(weights, conf=conf)
    clips = []
    for vid, recs in sorted(videos.items()):
        recs.sort(key=lambda r: r.frame_index)
        idx = np.array([r.frame_index for r in recs])
        if len(idx) > 1 and (np.diff(idx) != 1).any():
            print(f"  {vid}: annotated frames are not consecutive ({len(idx)} of "
                  f"{idx[-1] - idx[0] + 1}); tracks are linked across the gaps", flush=True)
        t0 = time.perf_counter()
        res = [predictor(r.image) for r in recs]
        det = [(d.xyxy.astype(np.float64), d.cls.astype(np.int64), d.conf.astype(np.float64))
               for d in res]
        gt = [(r.boxes.astype(np.float64), np.asarray(r.labels), np.asarray(r.track_ids))
              for r in recs]
        cfg = replace(SynthConfig(), width=recs[0].width, height=recs[0].height, fps=fps,
                      um_per_px=um_per_px, frames=len(recs))
        clips.append(Clip(vid, cfg, det, gt, [], np.zeros(2), float("nan"),
                          time.perf_counter() - t0))
        print(f"  {vid}: {len(recs)} frames", flush=True)
    return clips


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a, b = a.reshape(-1, 4)[:, None], b.reshape(-1, 4)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


# ---------------------------------------------------------------- 1. tracking
def sperm_dets(clip: Clip) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return ([b[c == 0] for b, c, _ in clip.det], [s[c == 0] for _, c, s in clip.det])


def track_ours(clip: Clip, detected_only: bool = False, gate: bool = True) -> Frames:
    """Our tracks; with ``gate``, without the tracks the head-size gate calls debris (what
    ``analyze`` reports as sperm)."""
    boxes, scores = sperm_dets(clip)
    tracks = link(boxes, [np.zeros(len(b), np.int64) for b in boxes], scores, clip.size,
                  clip.cfg.fps, 1 / clip.cfg.um_per_px)
    debris = small_tracks(tracks, 0, TrackerConfig().debris_ratio)[0] if gate else set()
    out: list[tuple[list[np.ndarray], list[int]]] = [([], []) for _ in boxes]
    for tr in (t for t in tracks if t.id not in debris):
        for f, box, det in zip(tr.frames, tr.boxes, tr.detected, strict=True):
            if det or not detected_only:
                out[f][0].append(box)
                out[f][1].append(tr.id)
    return [(np.array(b).reshape(-1, 4), np.array(i, np.int64)) for b, i in out]


def track_trackpy(clip: Clip, min_frames: int) -> Frames:
    tp, pd = _need("trackpy"), _need("pandas")
    tp.quiet()
    boxes, _ = sperm_dets(clip)
    cfg = TrackerConfig()
    rows = [(f, *((b[:2] + b[2:]) / 2), *b) for f, bt in enumerate(boxes) for b in bt]
    df = pd.DataFrame(rows, columns=["frame", "x", "y", "x0", "y0", "x1", "y1"])
    search = cfg.max_speed_um_per_s / clip.cfg.fps / clip.cfg.um_per_px
    try:
        linked = tp.link_df(df, search, memory=cfg.max_gap_frames(clip.cfg.fps))
    except tp.linking.SubnetOversizeException:  # crowded: let trackpy shrink the range locally
        linked = tp.link_df(df, search, memory=cfg.max_gap_frames(clip.cfg.fps),
                            adaptive_stop=search / 4, adaptive_step=0.9)
    sizes = linked.groupby("particle")["frame"].transform("size")
    linked = linked[sizes >= min_frames]
    out = []
    for f in range(len(boxes)):
        g = linked[linked["frame"] == f]
        out.append((g[["x0", "y0", "x1", "y1"]].to_numpy(np.float64),
                    g["particle"].to_numpy(np.int64)))
    return out


def track_bytetrack(clip: Clip) -> Frames:
    trackers, sv = _need("trackers"), _need("supervision")
    bt = trackers.ByteTrackTracker(frame_rate=clip.cfg.fps, track_activation_threshold=0.25,
                                   high_conf_det_threshold=0.5)
    boxes, scores = sperm_dets(clip)
    out = []
    for b, s in zip(boxes, scores, strict=True):
        d = bt.update(sv.Detections(xyxy=b.reshape(-1, 4).astype(np.float32),
                                    confidence=s.astype(np.float32),
                                    class_id=np.zeros(len(b), int)))
        keep = np.asarray(d.tracker_id) >= 0
        out.append((np.asarray(d.xyxy, np.float64)[keep], np.asarray(d.tracker_id)[keep]))
    return out


TRACKERS = {
    "ours (Kalman + Hungarian, gaps interpolated, head-size gate)": lambda c: track_ours(c),
    "ours, linking only (no head-size gate)": lambda c: track_ours(c, gate=False),
    "ours, detected frames only": lambda c: track_ours(c, True),
    f"trackpy link_df (tracks >= {TrackerConfig().min_frames} detections)":
        lambda c: track_trackpy(c, TrackerConfig().min_frames),
    "trackpy link_df (unfiltered)": lambda c: track_trackpy(c, 1),
    "ByteTrack (trackers)": track_bytetrack,
}


def trackeval_data(gt: Frames, pred: Frames) -> dict[str, Any]:
    """TrackEval's per-sequence dict (0-based contiguous ids, IoU similarity)."""
    def remap(frames: Frames) -> tuple[list[np.ndarray], int]:
        ids = np.unique(np.concatenate([i for _, i in frames])) if frames else np.zeros(0)
        lut = {int(v): k for k, v in enumerate(ids)}
        return [np.array([lut[int(v)] for v in i], int) for _, i in frames], len(ids)

    g_ids, n_g = remap(gt)
    p_ids, n_p = remap(pred)
    return {"gt_ids": g_ids, "tracker_ids": p_ids, "num_timesteps": len(gt),
            "similarity_scores": [iou(g[0], p[0]) for g, p in zip(gt, pred, strict=True)],
            "num_gt_dets": sum(len(i) for i in g_ids), "num_tracker_dets": sum(len(i)
                                                                            for i in p_ids),
            "num_gt_ids": n_g, "num_tracker_ids": n_p}


def score_tracks(seqs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """HOTA, IDF1, MOTA, IDSW... combined over sequences."""
    te = _need("trackeval")
    quiet = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    metrics = [te.metrics.HOTA(), te.metrics.CLEAR(quiet), te.metrics.Identity(quiet)]
    out: dict[str, float] = {}
    for m in metrics:
        res = m.combine_sequences({k: m.eval_sequence(d) for k, d in seqs.items()})
        out.update({k: float(np.mean(v)) for k, v in res.items()})
    return out


def with_true_boxes(clip: Clip, noise_px: float = 0.5) -> Clip:
    """The clip with its true boxes (plus a little localisation noise) as the detections: what
    each tracker does when detection is perfect."""
    rng = np.random.default_rng(0)
    det = []
    for b, labels, _ in clip.gt:
        det.append((b + rng.normal(0, noise_px, b.shape), labels.astype(np.int64),
                    np.ones(len(b))))
    return replace(clip, det=det)


def bench_tracking(clips: list[Clip], trackers: dict[str, Any] | None = None,
                   suffix: str = "") -> tuple[list[list[Any]], list[dict[str, Any]]]:
    rows, raw = [], []
    for name, run in (trackers or TRACKERS).items():
        name = name + suffix
        seqs, secs, frames = {}, 0.0, 0
        for clip in clips:
            t0 = time.perf_counter()
            pred = run(clip)
            secs += time.perf_counter() - t0
            frames += len(clip.det)
            seqs[clip.name] = data = trackeval_data(clip.gt_sperm(), pred)
            raw.append({"tracker": name, "clip": clip.name,
                        **{k: round(v, 4) for k, v in score_tracks({clip.name: data}).items()
                           if k in ("HOTA", "IDF1", "MOTA", "IDSW", "Frag")},
                        "tracks": data["num_tracker_ids"], "gt_tracks": data["num_gt_ids"]})
        s = score_tracks(seqs)
        ntr = sum(d["num_tracker_ids"] for d in seqs.values())
        rows.append([name, f"{100 * s['HOTA']:.1f}", f"{100 * s['DetA']:.1f}",
                     f"{100 * s['AssA']:.1f}", f"{100 * s['IDF1']:.1f}",
                     f"{100 * s['MOTA']:.1f}", int(s["IDSW"]), int(s["Frag"]), ntr,
                     f"{1000 * secs / frames:.2f}"])
    return rows, raw


def detection_quality(clips: list[Clip]) -> tuple[float, float]:
    """Sperm detections vs true sperm boxes, one-to-one at IoU >= 0.5: recall, precision."""
    from scipy.optimize import linear_sum_assignment

    tp = n_gt = n_det = 0
    for clip in clips:
        for (g, _), (d, _) in zip(clip.gt_sperm(), zip(*sperm_dets(clip), strict=True),
                                  strict=True):
            n_gt, n_det = n_gt + len(g), n_det + len(d)
            if len(g) and len(d):
                m = iou(g, d)
                r, c = linear_sum_assignment(-m)
                tp += int((m[r, c] >= 0.5).sum())
    return tp / max(n_gt, 1), tp / max(n_det, 1)
