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


def test_annotated_video_is_h264_a_browser_plays(tmp_path):
    """VideoWriter (annotated videos of detect and analyze) writes H.264 in MP4 with the index
    first; decoded back it has every frame, the frame rate and the content (odd sides padded)."""
    import av

    from active.data.video import VideoWriter

    yy, xx = np.mgrid[:45, :61]
    frames = []
    for i in range(12):  # a grey gradient with a dark square moving across, like a head
        img = np.repeat((60 + 2 * xx + yy)[..., None], 3, axis=2).astype(np.uint8)
        img[10:20, 3 + 4 * i:13 + 4 * i] = 20
        frames.append(img)
    path = tmp_path / "annotated.mp4"
    with VideoWriter(path, fps=12.5) as writer:
        for f in frames:
            writer.write(f)
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # faststart: playable while it downloads
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert float(stream.average_rate) == pytest.approx(12.5)
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(decoded) == len(frames)
    assert decoded[0].shape == (46, 62, 3)
    for got, ref in zip(decoded, frames, strict=True):
        assert np.abs(got[:45, :61].astype(int) - ref).mean() < 12


def test_annotated_video_left_unfinished_leaves_nothing(tmp_path):
    from active.data.video import VideoWriter

    path = tmp_path / "annotated.mp4"
    with pytest.raises(RuntimeError), VideoWriter(path, fps=25) as writer:
        writer.write(np.zeros((32, 32, 3), np.uint8))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
