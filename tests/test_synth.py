"""The synthetic video generator: determinism, boxes, tracks, speeds and the files it writes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from active.data.svia import read_svia
from active.data.synth import SynthConfig, SynthVideo, generate_dataset, render_video
from active.data.synth import dataset as synth_dataset

SMALL = SynthConfig(
    width=160,
    height=128,
    frames=12,
    sperm_in_view=(6.0, 9.0),
    impurities_in_view=(1.0, 2.0),
    dots_in_view=(4.0, 8.0),
)


@pytest.fixture(scope="module")
def video() -> SynthVideo:
    return render_video(replace(SMALL, frames=30), seed=7, video_id="SYN_0001")


def test_same_seed_same_video() -> None:
    a = render_video(SMALL, seed=3, video_id="SYN_0001")
    b = render_video(SMALL, seed=3, video_id="SYN_0001")
    assert len(a.frames) == SMALL.frames
    for fa, fb, ra, rb in zip(a.frames, b.frames, a.records, b.records, strict=True):
        assert fa.shape == (128, 160, 3) and fa.dtype == np.uint8
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(ra.boxes, rb.boxes)
        np.testing.assert_array_equal(ra.labels, rb.labels)
        np.testing.assert_array_equal(ra.track_ids, rb.track_ids)
    assert a.tracks_json() == b.tracks_json()


def test_different_seeds_differ() -> None:
    a = render_video(SMALL, seed=1, video_id="SYN_0001")
    b = render_video(SMALL, seed=2, video_id="SYN_0001")
    assert not np.array_equal(a.frames[0], b.frames[0])
    assert a.tracks_json()["tracks"] != b.tracks_json()["tracks"]


def test_boxes_inside_image_and_not_degenerate(video: SynthVideo) -> None:
    n = 0
    for rec in video.records:
        b = rec.boxes
        assert rec.width == 160 and rec.height == 128
        assert np.all(b[:, :2] >= 0) and np.all(b[:, 2] <= 160) and np.all(b[:, 3] <= 128)
        assert np.all(b[:, 2] - b[:, 0] >= SMALL.min_visible)
        assert np.all(b[:, 3] - b[:, 1] >= SMALL.min_visible)
        assert len(np.unique(rec.track_ids)) == len(rec)  # one box per object per frame
        n += len(rec)
    assert n > 0


def test_both_classes_and_all_motility_types_present() -> None:
    labels, motility = set(), set()
    for seed in range(3):
        v = render_video(SMALL, seed=seed, video_id="SYN_0001")
        for rec in v.records:
            labels.update(rec.labels.tolist())
        motility.update(t.motility for t in v.tracks)
    assert labels == {0, 1}
    assert {"progressive", "non_progressive", "immotile", None} <= motility


def test_sperm_boxes_hold_a_dark_head(video: SynthVideo) -> None:
    inside, elsewhere = [], []
    rng = np.random.default_rng(0)
    for rec, img in zip(video.records, video.frames, strict=True):
        g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        med = float(np.median(g))
        for box in rec.boxes[rec.labels == 0]:
            x0, y0, x1, y1 = np.rint(box).astype(int)
            if x1 - x0 < 8 or y1 - y0 < 8:
                continue
            inside.append(float(g[y0:y1, x0:x1].min()) - med)
            # The same box somewhere random: mostly background.
            dx, dy = rng.integers(0, 160 - (x1 - x0)), rng.integers(0, 128 - (y1 - y0))
            elsewhere.append(float(g[dy : dy + y1 - y0, dx : dx + x1 - x0].min()) - med)
    assert len(inside) > 50
    assert np.median(inside) < -40
    assert np.median(inside) < np.median(elsewhere) - 25


def test_tracks_agree_with_boxes(video: SynthVideo) -> None:
    per_frame = {
        (rec.frame_index, int(tid)): box
        for rec in video.records
        for tid, box in zip(rec.track_ids, rec.boxes, strict=True)
    }
    from_tracks = set()
    for track in video.tracks:
        assert track.class_name in ("sperm", "impurity")
        assert (track.motility is None) == (track.class_name == "impurity")
        for f, (cx, cy) in zip(track.frames, track.centres, strict=True):
            from_tracks.add((int(f), track.id))
            x0, y0, x1, y1 = per_frame[(int(f), track.id)]
            if 0 <= cx < 160 and 0 <= cy < 128:
                assert x0 <= cx <= x1 and y0 <= cy <= y1
    assert from_tracks == set(per_frame)
    # Sperm enter and leave the field during a video.
    assert any(t.frames[0] > 0 for t in video.tracks)
    assert any(t.frames[-1] < 29 for t in video.tracks)


def test_speeds_match_the_configuration() -> None:
    straight = replace(
        SMALL,
        frames=30,
        motility_mix=(1.0, 0.0, 0.0),
        progressive_curvature=(0.0, 0.0),
        wobble=(0.5, 0.5),
        progressive_speed=(2.0, 6.0),
    )
    v = render_video(straight, seed=5, video_id="SYN_0001")
    checked = 0
    for t in v.tracks:
        if t.motility != "progressive" or len(t.frames) < 4:
            continue
        assert 2.0 <= t.speed_px_per_frame <= 6.0
        assert t.speed_px_per_s == pytest.approx(30 * t.speed_px_per_frame)
        span = t.frames[-1] - t.frames[0]
        travelled = np.linalg.norm(t.centres[-1] - t.centres[0])
        assert abs(travelled - t.speed_px_per_frame * span) <= 2 * 0.5 + 1e-6  # lateral wobble
        checked += 1
    assert checked >= 3
    still = render_video(replace(SMALL, motility_mix=(0.0, 0.0, 1.0)), seed=5, video_id="SYN_0001")
    sperm = [t for t in still.tracks if t.class_name == "sperm"]
    assert sperm and all(t.motility == "immotile" and t.speed_px_per_frame == 0 for t in sperm)
    assert max(t.vcl_px_per_frame for t in sperm) < 0.5
    circling = replace(SMALL, frames=30, motility_mix=(0.0, 1.0, 0.0))
    lo, hi = circling.non_progressive_speed
    tracks = render_video(circling, seed=5, video_id="SYN_0001").tracks
    long = [t for t in tracks if t.motility == "non_progressive" and len(t.frames) > 10]
    assert long
    for t in long:
        assert lo <= t.speed_px_per_frame <= hi
        assert t.vsl_px_per_frame < 1.0  # circles go nowhere fast


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_generate_dataset_writes_svia_coco_and_tracks(tmp_path: Path) -> None:
    cfg = replace(SMALL, impurities_in_view=(2.0, 3.0))
    summary = generate_dataset(tmp_path / "a", videos=2, frames=3, seed=11, cfg=cfg)
    root = tmp_path / "a"
    assert summary.videos == 2 and summary.frames == 3 and summary.sperm_boxes > 0
    for vid in ("SYN_0001", "SYN_0002"):
        for k in (1, 2, 3):
            assert (root / "Subset-A" / f"{vid}_{k:04d}.xml").is_file()
            assert (root / "Frames from original videos" / vid / f"{vid}_{k:04d}.png").is_file()
        cap = cv2.VideoCapture(str(root / "original videos" / f"{vid}.mp4"))
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
        cap.release()
        truth = json.loads((root / "tracks" / f"{vid}.json").read_text())
        assert truth["video_id"] == vid and truth["fps"] == 30.0
        assert {"id", "class", "motility", "speed_px_per_frame", "speed_px_per_s", "points"} <= set(
            truth["tracks"][0]
        )
    xml = ET.parse(root / "Subset-A" / "SYN_0001_0001.xml").getroot()
    assert xml.findtext("path") == "SYN_0001_0001.png"
    names = set()
    for obj in xml.iter("object"):
        names.add(obj.findtext("name"))
        assert obj.findtext("track_id").isdigit()
        corners = [int(obj.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]
        assert 1 <= corners[0] <= corners[2] <= 160 and 1 <= corners[1] <= corners[3] <= 128
    assert names <= {"S", "Impurity"} and "S" in names
    coco = json.loads((root / "coco.json").read_text())
    assert len(coco["images"]) == 6
    assert len(coco["annotations"]) == summary.sperm_boxes + summary.impurity_boxes
    assert all("track_id" in a for a in coco["annotations"])
    records = read_svia(root)
    assert sum(len(r) for r in records) == len(coco["annotations"])
    assert all(r.track_ids is not None for r in records if len(r))
    assert not [p for p in root.rglob("*") if ".part" in p.name]  # atomic writes leave nothing
    # The same seed writes the same bytes, the video files included.
    generate_dataset(tmp_path / "b", videos=2, frames=3, seed=11, cfg=cfg)
    assert _files(root) == _files(tmp_path / "b")


def test_failed_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(records: list, path: Path) -> None:
        from active.utils.io import atomic_open

        with atomic_open(path, "w") as fh:
            fh.write("{")
            raise OSError("disk full")

    monkeypatch.setattr(synth_dataset, "write_coco", broken)
    with pytest.raises(OSError):
        generate_dataset(tmp_path, videos=1, frames=2, seed=0, cfg=SMALL)
    assert not (tmp_path / "coco.json").exists()
    assert not [p for p in tmp_path.rglob("*") if ".part" in p.name]


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="lo > hi"):
        SynthConfig(progressive_speed=(5.0, 1.0))
    with pytest.raises(ValueError, match="motility_mix"):
        SynthConfig(motility_mix=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError):
        generate_dataset(Path("unused"), videos=0, frames=1, seed=0)
