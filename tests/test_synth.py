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
from active.data.synth import (
    MOTILITY_TYPES,
    SynthConfig,
    SynthVideo,
    generate_dataset,
    kinematics,
    render_video,
)
from active.data.synth import dataset as synth_dataset
from active.data.synth.scene import _field_box, simulate

SMALL = SynthConfig(
    width=160,
    height=128,
    frames=12,
    sperm_in_view=(6.0, 9.0),
    impurities_in_view=(1.0, 2.0),
    dots_in_view=(4.0, 8.0),
)
#: Big enough, and long enough (1.5 s), for tracks that stay in view for a whole second.
MEDIUM = replace(
    SMALL, width=320, height=256, frames=45, sperm_in_view=(25.0, 30.0), dots_in_view=(15.0, 25.0)
)
#: WHO bands of net progression (µm/s) each grade must stay inside.
BANDS = {
    "rapid_progressive": (25.0, np.inf),
    "slow_progressive": (5.0, 25.0),
    "non_progressive": (0.0, 5.0),
    "immotile": (0.0, 1.0),
}


@pytest.fixture(scope="module")
def video() -> SynthVideo:
    return render_video(replace(SMALL, frames=30), seed=7, video_id="SYN_0001")


@pytest.fixture(scope="module")
def medium() -> list[SynthVideo]:
    return [render_video(MEDIUM, seed=seed, video_id="SYN_0001") for seed in (1, 2)]


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
    assert {*MOTILITY_TYPES, None} <= motility


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
        motility_mix=(1.0, 0.0, 0.0, 0.0),
        progressive_curvature=(0.0, 0.0),
        wobble=(0.5, 0.5),
        fluid_drift_um_per_s=(0.0, 0.0),
        rapid_speed_um_per_s=(21.0, 63.0),  # 2-6 px/frame at 0.35 µm/px and 30 fps
    )
    v = render_video(straight, seed=5, video_id="SYN_0001")
    checked = 0
    for t in v.tracks:
        if t.motility != "rapid_progressive" or len(t.frames) < 4:
            continue
        assert 2.0 - 1e-9 <= t.speed_px_per_frame <= 6.0 + 1e-9
        assert t.speed_px_per_s == pytest.approx(30 * t.speed_px_per_frame)
        span = t.frames[-1] - t.frames[0]
        travelled = np.linalg.norm(t.centres[-1] - t.centres[0])
        assert abs(travelled - t.speed_px_per_frame * span) <= 2 * 0.5 + 1e-6  # lateral wobble
        assert t.vsl_um_per_s == pytest.approx(t.speed_px_per_s * 0.35, abs=2 * 0.5 * 0.35 * 30)
        checked += 1
    assert checked >= 3
    still = replace(SMALL, motility_mix=(0.0, 0.0, 0.0, 1.0), fluid_drift_um_per_s=(0.0, 0.0))
    sperm = [t for t in render_video(still, seed=5, video_id="S").tracks if t.class_name == "sperm"]
    assert sperm and all(t.motility == "immotile" and t.speed_px_per_frame == 0 for t in sperm)
    assert max(t.vcl_px_per_frame for t in sperm) < 0.5
    circling = replace(SMALL, frames=30, motility_mix=(0.0, 0.0, 1.0, 0.0))
    tracks = render_video(circling, seed=5, video_id="SYN_0001").tracks
    long = [t for t in tracks if t.motility == "non_progressive" and len(t.frames) > 10]
    assert long
    for t in long:
        # Path speed 2 pi r / period: 2 pi 1 µm / 0.8 s to 2 pi 2 µm / 0.3 s.
        assert 7.8 <= t.speed_px_per_s * 0.35 <= 42.0
        assert np.ptp(t.relative_centres, axis=0).max() * 0.35 < 2 * 2.0 + 0.5  # one small circle


def test_every_path_stays_inside_its_who_grade() -> None:
    """Every 1-s window of every simulated sperm path, relative to the fluid, at the defaults."""
    cfg = SynthConfig(frames=60, fluid_drift_um_per_s=(6.0, 6.0))
    n = int(round(cfg.fps))
    seen = set()
    for seed in range(8):
        scene = simulate(cfg, np.random.default_rng(seed), cfg.frames)
        for obj in scene.sperm:
            t = np.arange(obj.birth, obj.death)
            if len(t) <= n:
                continue
            seen.add(obj.motility)
            image, _ = obj.state(t)
            np.testing.assert_allclose(image - scene.fluid * t[:, None], obj.relative_state(t)[0])
            xy = obj.relative_state(t)[0] * cfg.um_per_px
            net = np.linalg.norm(xy[n:] - xy[:-n], axis=1) * cfg.fps / n
            lo, hi = BANDS[obj.motility]
            assert lo <= net.min() and net.max() < hi, obj.motility
            if obj.motility == "non_progressive":  # circling, not still
                assert kinematics(t, xy, cfg.fps)["vap_um_per_s"] > 7.0
    assert seen == set(MOTILITY_TYPES)


def test_track_truth_kinematics_are_inside_the_grade_bands(medium: list[SynthVideo]) -> None:
    grades = set()
    for v in medium:
        for t in v.tracks:
            assert t.grade == t.motility and t.um_per_px == 0.35
            if t.net_1s_um_per_s is None:
                assert t.frames[-1] - t.frames[0] < 30
                continue
            if t.class_name == "impurity":
                assert t.net_1s_um_per_s < 1.0  # carried by the fluid, barely moving in it
                continue
            grades.add(t.grade)
            lo, hi = BANDS[t.grade]
            assert lo <= t.net_1s_um_per_s < hi, (t.grade, t.net_1s_um_per_s)
            assert t.vcl_um_per_s >= t.vap_um_per_s - 1e-6 and t.vcl_um_per_s >= t.vsl_um_per_s
            if t.grade == "non_progressive":
                assert t.vap_um_per_s > 5.0
    assert grades == set(MOTILITY_TYPES)


def test_kinematics_helper() -> None:
    frames = np.arange(61)
    line = np.stack([frames * 0.5, np.zeros(61)], axis=1)  # 0.5 µm/frame = 15 µm/s
    k = kinematics(frames, line, 30.0)
    for key in ("vcl_um_per_s", "vsl_um_per_s", "vap_um_per_s", "net_1s_um_per_s"):
        assert k[key] == pytest.approx(15.0)
    a = frames * 2 * np.pi / 15  # a 2 µm circle every half second: busy, going nowhere
    circle = 2.0 * np.stack([np.cos(a), np.sin(a)], axis=1)
    k = kinematics(frames, circle, 30.0)
    assert k["net_1s_um_per_s"] < 1e-6 and k["vsl_um_per_s"] < 1e-6
    assert k["vcl_um_per_s"] == pytest.approx(2 * 2.0 * np.sin(np.pi / 15) * 30)
    assert 0 < k["vap_um_per_s"] < k["vcl_um_per_s"]
    short = kinematics(frames[:5], line[:5], 30.0)
    assert short["vap_um_per_s"] is None and short["net_1s_um_per_s"] is None
    assert short["vcl_um_per_s"] == pytest.approx(15.0)
    alone = kinematics(frames[:1], line[:1], 30.0)
    assert all(v is None for v in alone.values())


def test_fluid_drift_is_carried_by_everything_and_recovered_from_impurities() -> None:
    cfg = replace(SMALL, frames=30, fluid_drift_um_per_s=(5.0, 6.0), impurities_in_view=(3.0, 4.0))
    for seed in (1, 2):
        v = render_video(cfg, seed=seed, video_id="SYN_0001")
        drift = v.fluid_drift_px_per_frame
        assert 5.0 - 1e-6 <= np.linalg.norm(v.fluid_drift_um_per_s) <= 6.0 + 1e-6
        np.testing.assert_allclose(v.fluid_drift_um_per_s, drift * 0.35 * 30)
        markers = [t for t in v.tracks if t.motility in (None, "immotile") and len(t.frames) >= 15]
        assert sum(t.class_name == "impurity" for t in markers) >= 1
        for t in markers:
            velocity = np.polyfit(t.frames, t.centres, 1)[0]  # px/frame, x and y
            # Relative motion of debris <= 0.04 px/frame plus a small jitter.
            assert np.linalg.norm(velocity - drift) < 0.08, (t.class_name, velocity, drift)
        # Sperm born later (entering from the border) are carried by the same drift.
        newcomers = [t for t in v.tracks if t.frames[0] > 0 and t.class_name == "sperm"]
        for t in newcomers:
            np.testing.assert_allclose(t.relative_centres + drift * t.frames[:, None], t.centres)


def test_newcomers_enter_at_the_border_at_their_birth() -> None:
    cfg = replace(SMALL, frames=60, wobble=(0.0, 0.0), fluid_drift_um_per_s=(6.0, 6.0))
    x0, y0, x1, y1 = _field_box(cfg)
    born = 0
    for seed in range(4):
        scene = simulate(cfg, np.random.default_rng(seed), cfg.frames)
        assert np.linalg.norm(scene.fluid) > 0.5
        for obj in scene.sperm:
            if obj.birth == 0:
                continue
            born += 1
            x, y = obj.state(obj.birth)[0][0]
            assert min(abs(x - x0), abs(x - x1), abs(y - y0), abs(y - y1)) < 1e-6
            assert obj.motility in MOTILITY_TYPES[:2]
    assert born > 0


def test_concentration_truth(video: SynthVideo) -> None:
    boxes = np.mean([int((rec.labels == 0).sum()) for rec in video.records])
    volume_um3 = 160 * 128 * 0.35**2 * 20.0
    expected = boxes / (volume_um3 * 1e-12) / 1e6
    assert video.sperm_per_frame_mean == pytest.approx(boxes)
    assert video.concentration_m_per_ml == pytest.approx(expected)
    assert video.field_volume_nl == pytest.approx(volume_um3 * 1e-6)
    truth = video.truth
    assert truth["concentration_m_per_ml"] == pytest.approx(expected, rel=1e-4)
    assert truth["field_volume_nl"] == pytest.approx(volume_um3 * 1e-6, rel=1e-4)
    assert truth["um_per_px"] == 0.35 and truth["chamber_depth_um"] == 20.0
    # Deeper chamber, same sperm in view: the same count in more liquid.
    assert replace(SMALL, chamber_depth_um=40.0).field_volume_um3 == pytest.approx(2 * volume_um3)


def test_tracks_json_has_every_field_and_no_nan(medium: list[SynthVideo]) -> None:
    doc = medium[0].tracks_json()
    text = json.dumps(doc, allow_nan=False)  # raises on NaN or infinity
    assert "NaN" not in text
    for key in (
        "um_per_px",
        "fps",
        "chamber_depth_um",
        "fluid_drift_px_per_frame",
        "fluid_drift_um_per_s",
        "concentration_m_per_ml",
        "sperm_per_frame_mean",
        "field_volume_nl",
    ):
        assert key in doc, key
    assert len(doc["fluid_drift_px_per_frame"]) == 2 and len(doc["fluid_drift_um_per_s"]) == 2
    new = ("grade", "vcl_um_per_s", "vsl_um_per_s", "vap_um_per_s", "net_1s_um_per_s")
    undefined = 0
    for track in doc["tracks"]:
        assert set(new) <= set(track)
        assert track["grade"] in (*MOTILITY_TYPES, None)
        assert (track["grade"] is None) == (track["class"] == "impurity")
        undefined += track["net_1s_um_per_s"] is None
    assert 0 < undefined < len(doc["tracks"])  # short tracks have none, long ones one


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
        assert {"grade", "vcl_um_per_s", "net_1s_um_per_s"} <= set(truth["tracks"][0])
        assert truth["um_per_px"] == 0.35 and truth["concentration_m_per_ml"] > 0
    manifest = json.loads((root / "synth.json").read_text())
    assert manifest["um_per_px"] == 0.35 and manifest["chamber_depth_um"] == 20.0
    assert [v["video"] for v in manifest["per_video"]] == ["SYN_0001", "SYN_0002"]
    for entry in manifest["per_video"]:
        truth = json.loads((root / "tracks" / f"{entry['video']}.json").read_text())
        assert entry["concentration_m_per_ml"] == truth["concentration_m_per_ml"]
        assert entry["fluid_drift_um_per_s"] == truth["fluid_drift_um_per_s"]
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
    with pytest.raises(ValueError, match="rapid_speed_um_per_s.*lo > hi"):
        SynthConfig(rapid_speed_um_per_s=(50.0, 30.0))
    with pytest.raises(ValueError, match="fluid_drift_um_per_s.*lo > hi"):
        SynthConfig(fluid_drift_um_per_s=(6.0, 1.0))
    with pytest.raises(ValueError, match="motility_mix"):
        SynthConfig(motility_mix=(0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="motility_mix"):
        SynthConfig(motility_mix=(0.45, 0.2, 0.35))  # type: ignore[arg-type]
    for bad in (0.0, -0.35):
        with pytest.raises(ValueError, match="um_per_px"):
            SynthConfig(um_per_px=bad)
        with pytest.raises(ValueError, match="chamber_depth_um"):
            SynthConfig(chamber_depth_um=bad)
    with pytest.raises(ValueError, match="non_progressive_period_s"):
        SynthConfig(non_progressive_period_s=(0.0, 0.5))
    with pytest.raises(ValueError):
        generate_dataset(Path("unused"), videos=0, frames=1, seed=0)
