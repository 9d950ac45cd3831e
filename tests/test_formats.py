"""Readers on the real sample and round trips through every writer and reader."""

import json
from collections import Counter

import numpy as np
import pytest

from active.data.convert import write_dataset
from active.data.dataset import detect_format, load_dataset
from active.data.svia import read_svia
from active.data.video import VideoReader


def _counts(records):
    c = Counter()
    for r in records:
        c.update(r.class_names[i] for i in r.labels)
    return c


def test_svia_sample_counts_match_its_readme(svia_root):
    records = read_svia(svia_root)
    assert len(records) == 182
    assert _counts(records) == {"sperm": 5780, "impurity": 111}
    per_video = Counter(r.video_id for r in records)
    assert per_video == {"S_0001": 45, "S_0002": 19, "S_0004": 82, "S_0005": 36}
    r = records[0]
    assert (r.video_id, r.frame_index, r.width, r.height) == ("S_0001", 0, 698, 528)
    assert r.image_path.name == "S_0001_0001.png"
    # the release's 1-based inclusive corners: first box is <156, 1, 175, 9> in the XML
    np.testing.assert_array_equal(r.boxes[0], [155, 0, 175, 9])
    for rec in records:
        assert (rec.boxes[:, :2] >= 0).all()
        assert (rec.boxes[:, 2] <= rec.width).all() and (rec.boxes[:, 3] <= rec.height).all()


def test_svia_frame_matches_video_frame(svia_root):
    """Frame k of the mp4 is S_VVVV_{k+1}: the PNG and the decoded frame agree (mp4 is lossy)."""
    rec = next(r for r in read_svia(svia_root) if r.video_id == "S_0002" and r.frame_index == 4)
    png = rec.image.astype(float)
    with VideoReader(svia_root / "original videos" / "S_0002.mp4") as video:
        assert (video.info.width, video.info.height) == (698, 528)
        same = np.abs(video.read(4).image.astype(float) - png).mean()
        other = np.abs(video.read(10).image.astype(float) - png).mean()
    assert same < other


def test_svia_falls_back_to_video_frames(svia_root, tmp_path):
    """With the PNGs gone, frames come from the video, by frame number."""
    (tmp_path / "Subset-A").mkdir()
    for xml in sorted((svia_root / "Subset-A").glob("S_0002_000[1-3].xml")):
        (tmp_path / "Subset-A" / xml.name).write_bytes(xml.read_bytes())
    (tmp_path / "original videos").mkdir()
    (tmp_path / "original videos" / "S_0002.mp4").symlink_to(
        svia_root / "original videos" / "S_0002.mp4")
    records = load_dataset(tmp_path)
    assert [r.frame_index for r in records] == [0, 1, 2]
    assert records[0].image_path is None and records[0].video_path is not None
    assert records[2].image.shape == (528, 698, 3)


@pytest.mark.parametrize("fmt", ["svia", "yolo", "coco"])
def test_round_trip_keeps_every_box(records, tmp_path, fmt):
    target = write_dataset(records, tmp_path / fmt, fmt)
    assert detect_format(target) == fmt
    back = load_dataset(target, strict=True)
    assert len(back) == len(records)
    for a, b in zip(records, back, strict=True):
        assert (a.video_id, a.frame_index, a.width, a.height) == (
            b.video_id, b.frame_index, b.width, b.height)
        np.testing.assert_allclose(b.boxes, a.boxes, atol=1e-3)
        np.testing.assert_array_equal(b.labels, a.labels)
        if len(a):
            np.testing.assert_array_equal(b.track_ids, a.track_ids)
        np.testing.assert_array_equal(b.image, a.image)


def test_round_trip_of_real_sample_through_coco(svia_root, tmp_path):
    records = [r for r in read_svia(svia_root) if r.video_id == "S_0002"]
    path = write_dataset(records, tmp_path, "coco", images=False)
    data = json.loads(path.read_text())
    assert {c["name"] for c in data["categories"]} == {"sperm", "impurity"}
    back = load_dataset(path)
    assert sum(len(r) for r in back) == sum(len(r) for r in records) == 522
    np.testing.assert_array_equal(back[3].boxes, records[3].boxes)


def test_plain_voc_folder(records, tmp_path):
    """A VOC folder (XML beside the images, LabelImg names) reads like SVIA's layout."""
    from active.data.images import write_image
    from active.data.voc import write_voc

    for rec in records:
        write_image(tmp_path / "JPEGImages" / f"{rec.name}.png", rec.image)
        write_voc(tmp_path / "Annotations" / f"{rec.name}.xml", rec)
    back = load_dataset(tmp_path, fmt="voc")
    assert detect_format(tmp_path) == "voc"
    assert sum(len(r) for r in back) == sum(len(r) for r in records)
    np.testing.assert_array_equal(back[1].boxes, records[1].boxes)


def test_class_map_from_file(tmp_path, records):
    from active.data.classes import ClassMap

    path = tmp_path / "classes.yaml"
    path.write_text("names: [spermatozoon, debris]\naliases: {sperm: spermatozoon, "
                    "impurity: debris}\n")
    cmap = ClassMap.from_file(path)
    target = write_dataset(records, tmp_path / "y", "yolo", images=True)
    back = load_dataset(target, classes=cmap)
    assert back[0].class_names == ("spermatozoon", "debris")
    np.testing.assert_array_equal(back[1].labels, records[1].labels)
