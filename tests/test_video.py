import numpy as np
import pytest

from active.data.video import VideoReader, read_frame, write_video


@pytest.fixture
def clip(tmp_path):
    frames = [np.full((48, 64, 3), 10 + 20 * i, np.uint8) for i in range(8)]
    path = tmp_path / "clip.mp4"
    assert write_video(path, frames, fps=25) == 8
    return path, frames


def test_reader_reports_index_time_fps_and_size(clip):
    path, frames = clip
    with VideoReader(path) as video:
        assert (video.info.width, video.info.height, video.fps) == (64, 48, 25)
        assert len(video) == 8
        got = list(video)
    assert [f.index for f in got] == list(range(8))
    assert got[3].time == pytest.approx(3 / 25)
    for f, ref in zip(got, frames, strict=True):
        assert abs(float(f.image.mean()) - float(ref.mean())) < 4


def test_random_access_matches_sequential(clip):
    path, _ = clip
    with VideoReader(path) as video:
        seq = [f.image for f in video]
        assert np.array_equal(video.read(5).image, seq[5])
        assert np.array_equal(video.read(2).image, seq[2])
    assert np.array_equal(read_frame(path, 6), seq[6])


def test_write_is_atomic_on_failure(tmp_path):
    path = tmp_path / "bad.mp4"

    def frames():
        yield np.zeros((16, 16, 3), np.uint8)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_video(path, frames())
    assert list(tmp_path.iterdir()) == []
