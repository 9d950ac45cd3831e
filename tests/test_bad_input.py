"""Every kind of bad input gets a clear error (or a counted warning) that names the file."""

import json
import shutil

import numpy as np
import pytest

from active.data.convert import write_dataset
from active.data.dataset import load_dataset
from active.data.images import read_image
from active.data.video import VideoReader, write_video
from active.errors import DataError, VideoError


@pytest.fixture
def svia_copy(records, tmp_path):
    root = tmp_path / "svia"
    write_dataset(records, root, "svia")
    return root


def _xml(root, name="V_0001_0002"):
    return root / "Subset-A" / f"{name}.xml"


def _edit_first_box(path, **corners):
    text = path.read_text()
    for tag, value in corners.items():
        start = text.index(f"<{tag}>") + len(tag) + 2
        end = text.index(f"</{tag}>", start)
        text = text[:start] + str(value) + text[end:]
    path.write_text(text)


def test_malformed_xml_names_the_file(svia_copy):
    bad = _xml(svia_copy)
    bad.write_text("<annotation><size><width>96</width>")
    with pytest.raises(DataError, match="malformed XML") as err:
        load_dataset(svia_copy)
    assert err.value.path == bad


def test_missing_field_and_non_number(svia_copy):
    bad = _xml(svia_copy)
    text = bad.read_text()
    bad.write_text(text.replace("<width>96</width>", "<width>wide</width>"))
    with pytest.raises(DataError, match=r"V_0001_0002\.xml.*<width> is not a number"):
        load_dataset(svia_copy)
    bad.write_text(text.replace("<size>", "<nosize>").replace("</size>", "</nosize>"))
    with pytest.raises(DataError, match="missing <size>"):
        load_dataset(svia_copy)


def test_unknown_class_is_an_error(svia_copy, records):
    bad = next(p for p in sorted((svia_copy / "Subset-A").glob("*.xml")) if "<object>" in
               p.read_text())
    bad.write_text(bad.read_text().replace("<name>S</name>", "<name>Bacterium</name>", 1)
                   .replace("<name>Impurity</name>", "<name>Bacterium</name>", 1))
    with pytest.raises(DataError, match="unknown class name 'Bacterium'") as err:
        load_dataset(svia_copy)
    assert err.value.path == bad


def _first_box_file(root):
    return next(p for p in sorted((root / "Subset-A").glob("*.xml")) if "<object>" in p.read_text())


def test_box_partly_outside_image_is_clipped_with_warning_or_strict_error(svia_copy):
    bad = _first_box_file(svia_copy)
    _edit_first_box(bad, xmin=93, xmax=98)  # 1-based: x 92..98 on a 96-px-wide image
    with pytest.warns(UserWarning, match=r"1 x clip a box.*\n.*" + bad.name):
        records = load_dataset(svia_copy)
    rec = next(r for r in records if r.source == bad)
    assert rec.boxes[:, 2].max() <= rec.width
    with pytest.raises(DataError, match="extends outside") as err:
        load_dataset(svia_copy, strict=True)
    assert err.value.path == bad


@pytest.mark.parametrize(("corners", "reason"), [
    ({"xmin": 50, "xmax": 40}, r"inverted \(x2 < x1\)"),
    ({"xmin": 50, "xmax": 49}, "zero size"),
    ({"xmin": "nan"}, "not a finite number"),
    ({"ymax": "inf"}, "not a finite number"),
    ({"xmin": 400, "xmax": 420}, "entirely outside"),
    ({"xmax": 500}, "mostly outside"),
])
def test_unusable_box_is_an_error_or_drops_its_whole_frame(svia_copy, corners, reason):
    bad = _first_box_file(svia_copy)
    _edit_first_box(bad, **corners)
    with pytest.raises(DataError, match=f"object 1 .*{reason}.*--skip-bad-frames") as err:
        load_dataset(svia_copy)
    assert err.value.path == bad
    n_frames = len(list((svia_copy / "Subset-A").glob("*.xml")))
    with pytest.warns(UserWarning, match="1 x drop a frame with an unusable box"):
        records = load_dataset(svia_copy, skip_bad_frames=True)
    assert len(records) == n_frames - 1 and all(r.source != bad for r in records)
    with pytest.raises(DataError, match=bad.name):  # strict: every problem is an error
        load_dataset(svia_copy, strict=True, skip_bad_frames=True)


def test_missing_frame_is_skipped_with_count_or_strict_error(svia_copy):
    png = svia_copy / "Frames from original videos" / "V_0001" / "V_0001_0002.png"
    png.unlink()
    with pytest.warns(UserWarning, match="1 x skip an annotation whose frame is missing"):
        records = load_dataset(svia_copy)
    assert all(r.name != "V_0001_0002" for r in records)
    with pytest.raises(DataError, match="no frame V_0001_0002.png") as err:
        load_dataset(svia_copy, strict=True)
    assert err.value.path == _xml(svia_copy)


@pytest.mark.parametrize("content", [b"", b"this is not a png"])
def test_empty_or_corrupt_image(tmp_path, content):
    path = tmp_path / "frame.png"
    path.write_bytes(content)
    with pytest.raises(DataError, match="frame.png: .*(empty|not a readable image)"):
        read_image(path)


def test_image_of_wrong_size_for_its_annotation(svia_copy):
    png = svia_copy / "Frames from original videos" / "V_0001" / "V_0001_0001.png"
    from active.data.images import write_image

    write_image(png, np.zeros((10, 10, 3), np.uint8))
    rec = load_dataset(svia_copy)[0]
    with pytest.raises(DataError, match="image is 10x10 but its annotation"):
        _ = rec.image


def test_unreadable_and_empty_videos(tmp_path):
    with pytest.raises(VideoError, match="not found"):
        VideoReader(tmp_path / "missing.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4: video file is empty"):
        VideoReader(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(VideoError, match="junk.mp4"), VideoReader(junk) as video:
        list(video)


def test_truncated_video(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, [np.full((48, 64, 3), i * 20, np.uint8) for i in range(10)], fps=30)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(VideoError, match="cut.mp4"):
        with VideoReader(cut) as video:
            frames = list(video)
            video.read(9)
        assert len(frames) < 10


def test_malformed_coco(tmp_path, records):
    path = write_dataset(records, tmp_path, "coco", images=True)
    data = json.loads(path.read_text())
    path.write_text("{not json")
    with pytest.raises(DataError, match="annotations.json: malformed JSON"):
        load_dataset(path)
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="no 'annotations' list"):
        load_dataset(path)
    bad = dict(data, categories=[{"id": 1, "name": "sperm"}, {"id": 2, "name": "bacterium"}])
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="unknown class name 'bacterium'"):
        load_dataset(path)
    bad = dict(data, annotations=[dict(data["annotations"][0], category_id=9)])
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match="unknown category_id 9"):
        load_dataset(path)
    bad = dict(data, annotations=[dict(data["annotations"][0], bbox=[1, 2, 3])])
    path.write_text(json.dumps(bad))
    with pytest.raises(DataError, match=r"bbox must be \[x, y, w, h\]"):
        load_dataset(path)


def test_malformed_yolo(tmp_path, records):
    root = write_dataset(records, tmp_path, "yolo")
    label = sorted((root / "labels").rglob("*.txt"))[1]
    label.write_text("0 0.5 0.5 0.1\n")
    with pytest.raises(DataError, match=f"{label.name}: line 1: expected 5 or 6 columns"):
        load_dataset(root)
    label.write_text("0 0.5 half 0.1 0.1\n")
    with pytest.raises(DataError, match="not numbers"):
        load_dataset(root)
    label.write_text("7 0.5 0.5 0.1 0.1\n")
    with pytest.raises(DataError, match="class id 7 is not in 0..1"):
        load_dataset(root)
    (root / "classes.txt").unlink()
    with pytest.raises(DataError, match="neither classes.txt nor data.yaml"):
        load_dataset(root)


def test_not_a_dataset(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="cannot tell the dataset format"):
        load_dataset(tmp_path / "empty")
    shutil.rmtree(tmp_path / "empty")
