"""Flip test-time augmentation (active.models.tta): fusion rules, mirror consistency, and the
Predictor / evaluation / CLI paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from active.errors import UsageError
from active.inference.predictor import Predictor
from active.models.build import build_model
from active.models.checkpoint import save_checkpoint
from active.models.coder import BoxCoder, decode_outputs
from active.models.postprocess import PostProcessConfig, select_detections
from active.models.tta import FLIPS, flip_batch, fuse_views, tta_detect, unflip_rows
from active.models.variants import ModelConfig

CFG = PostProcessConfig(score_threshold=0.05, iou_threshold=0.45)


def rows(boxes: list[list[float]], scores: list[float], cls: list[int], nc: int = 2
         ) -> torch.Tensor:
    """Decoded rows ``[x0, y0, x1, y1, obj, p_0 .. p_nc-1]`` with objectness = score."""
    out = torch.zeros(len(boxes), 5 + nc)
    out[:, :4] = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    out[:, 4] = torch.tensor(scores)
    out[torch.arange(len(cls)), 5 + torch.tensor(cls, dtype=torch.long)] = 1.0
    return out


def test_unflip_is_the_inverse_of_the_image_flip() -> None:
    """A box drawn on an image and flipped with it comes back to where it was."""
    img = torch.zeros(1, 3, 40, 60)
    img[..., 5:15, 10:22] = 1.0  # box x0=10, y0=5, x1=22, y1=15
    box = rows([[10, 5, 22, 15]], [0.9], [0])
    for dims in FLIPS:
        flipped = flip_batch(img, dims)[0, 0]
        ys, xs = flipped.nonzero(as_tuple=True)
        seen = torch.tensor([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.9, 1, 0]],
                            dtype=torch.float32)
        torch.testing.assert_close(unflip_rows(seen, dims, 40, 60), box)
    arr = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    np.testing.assert_array_equal(flip_batch(arr, (-2, -1)), arr[:, :, ::-1, ::-1])


def test_identical_views_fuse_to_the_plain_detections() -> None:
    rng = torch.Generator().manual_seed(0)
    xy = torch.rand(40, 2, generator=rng) * 200
    wh = 5 + torch.rand(40, 2, generator=rng) * 20
    view = torch.cat([xy, xy + wh, torch.rand(40, 1, generator=rng),
                      torch.rand(40, 2, generator=rng)], 1)
    plain = select_detections(view[None], CFG)[0]
    fused = fuse_views([view] * 4, CFG)
    torch.testing.assert_close(fused.boxes, plain.boxes)
    torch.testing.assert_close(fused.scores, plain.scores)
    assert torch.equal(fused.classes, plain.classes)


def test_fusion_averages_boxes_and_scores_over_the_views() -> None:
    a = rows([[10, 10, 20, 20], [100, 100, 110, 110]], [0.8, 0.6], [0, 1])
    b = rows([[12, 10, 22, 20]], [0.8], [0])  # the same object, 2 px to the right
    empty = rows([], [], [])
    det = fuse_views([a, b, empty, empty], CFG)
    assert len(det) == 2
    # object 1: two of four views at 0.8 -> 0.4; equal weights -> the mean box
    torch.testing.assert_close(det.boxes[0], torch.tensor([11.0, 10, 21, 20]))
    assert det.scores.tolist() == pytest.approx([0.4, 0.15])  # one view of four at 0.6
    assert det.classes.tolist() == [0, 1]
    # another class at the same place is not fused into the first (class-aware by default)
    c = rows([[10, 10, 20, 20]], [0.7], [1])
    det = fuse_views([a, c], CFG)
    assert sorted(det.scores.tolist()) == pytest.approx([0.3, 0.35, 0.4])


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    model = build_model(ModelConfig(variant="active-i", scale="tiny", imgsz=(96, 128)))
    with torch.no_grad():
        for conv in model.head.modules():
            if isinstance(conv, torch.nn.Conv2d) and conv.out_channels == 3 * 7:
                conv.bias.view(3, 7)[:, 4:] += 8.0  # objectness and classes: sigmoid ~ 1
    path = tmp_path_factory.mktemp("tta") / "tiny.pt"
    save_checkpoint(path, model.eval())
    return path


def test_tta_is_mirror_consistent() -> None:
    """The four views of a mirrored frame are the four views of the frame, so TTA on the mirror,
    mirrored back, gives the same detections, even from a network that is not mirror-symmetric
    (here one strided convolution with a random kernel; strided layers are what make a real
    network slightly asymmetric)."""
    gen = torch.Generator().manual_seed(0)
    kernel = torch.randn(7, 3, 8, 8, generator=gen) * 0.2

    def run(batch):  # (B, 3, 64, 96) -> one level (B, 1, 8, 12, 7), stride 8
        x = torch.nn.functional.conv2d(torch.as_tensor(batch), kernel, stride=8)
        return [x.permute(0, 2, 3, 1)[:, None]]

    anchors, coder = torch.tensor([[[12.0, 12.0]]]), BoxCoder()
    img = torch.rand(1, 3, 64, 96, generator=gen)
    cfg = PostProcessConfig(score_threshold=0.2, iou_threshold=0.45)
    a = tta_detect(run, img, anchors, (8,), coder, cfg)[0]
    b = tta_detect(run, img.flip(-1), anchors, (8,), coder, cfg)[0]
    assert len(a) > 3 and len(a) == len(b)
    back = unflip_rows(b.boxes, (-1,), 64, 96)
    dist = (a.boxes[:, None] - back[None]).abs().amax(-1)  # (Ka, Kb) largest coordinate gap
    gap, match = dist.min(1)
    assert gap.max() < 1e-3 and len(set(match.tolist())) == len(a)
    torch.testing.assert_close(a.scores, b.scores[match])
    plain = [select_detections(decode_outputs(run(x), anchors, (8,), coder), cfg)[0]
             for x in (img, img.flip(-1))]  # without TTA the mirror gives other boxes
    assert len(plain[0]) != len(plain[1]) or not torch.allclose(
        plain[0].boxes, unflip_rows(plain[1].boxes, (-1,), 64, 96))


def test_tta_backends_and_evaluation_agree(tiny_ckpt: Path) -> None:
    """ONNX Runtime and PyTorch give the same fused boxes; predict_batch (the evaluation path)
    gives what the Predictor gives."""
    from active.models.checkpoint import load_model
    from active.models.predict import predict_batch

    img = (np.random.default_rng(4).random((90, 120, 3)) * 255).astype(np.uint8)
    t = Predictor(tiny_ckpt, backend="torch", conf=0.3, tta=True)(img)
    o = Predictor(tiny_ckpt, backend="onnx", conf=0.3, tta=True)(img)
    assert "tta=True" in repr(Predictor(tiny_ckpt, backend="torch", tta=True))
    model, _ = load_model(tiny_ckpt)
    d = predict_batch(model, [img], (96, 128), BoxCoder(), PostProcessConfig(0.3), tta=True)[0]
    assert len(t) > 3
    for other, atol in ((o.xyxy, 0.05), (d.boxes.numpy(), 1e-3)):
        assert len(other) == len(t)
        gap = np.abs(t.xyxy[:, None] - other[None]).max(-1).min(1)
        assert gap.max() < atol


def test_tta_needs_candidates_before_nms(tmp_path: Path) -> None:
    """SSD gives its candidates (``candidate_rows``), so TTA runs on it; EfficientDet does its
    NMS inside ``effdet`` and is refused up front."""
    pytest.importorskip("torchvision")
    model = build_model(ModelConfig(variant="ssd", scale="n", imgsz=(96, 128)))
    path = tmp_path / "ssd.pt"
    save_checkpoint(path, model.eval())
    frame = (np.random.default_rng(0).random((90, 120, 3)) * 255).astype(np.uint8)
    result = Predictor(path, backend="torch", tta=True, conf=0.01)(frame)
    assert result.xyxy.shape[1] == 4
    pytest.importorskip("effdet")
    path = tmp_path / "effdet.pt"
    save_checkpoint(path, build_model(ModelConfig(variant="efficientdet-d2",
                                                  imgsz=(128, 128))).eval())
    with pytest.raises(UsageError, match="TTA"):
        Predictor(path, backend="torch", tta=True)


def test_tta_detect_calls_the_network_once_per_view() -> None:
    calls = []

    def run(batch):
        calls.append(batch.copy())
        return [torch.full((1, 1, 2, 2, 7), -10.0)]  # nothing above threshold

    batch = np.random.default_rng(0).random((1, 3, 16, 16)).astype(np.float32)
    dets = tta_detect(run, batch, torch.tensor([[[8.0, 8.0]]]), (8,), BoxCoder(), CFG)
    assert len(calls) == 4 and len(dets) == 1 and len(dets[0]) == 0
    np.testing.assert_array_equal(calls[3], batch[:, :, ::-1, ::-1])


def test_cli_detect_takes_tta_and_no_merge(tiny_ckpt: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from active.cli import main
    from active.data.video import write_video

    rng = np.random.default_rng(2)
    clip = tmp_path / "clip.mp4"
    write_video(clip, [(rng.random((96, 128, 3)) * 255).astype(np.uint8) for _ in range(3)],
                fps=10.0)
    for flags, tta, merge in (([], False, True), (["--tta", "--no-merge"], True, False)):
        out = tmp_path / f"run{len(flags)}"
        assert main(["detect", str(clip), "--weights", str(tiny_ckpt), "--backend", "torch",
                     "--out", str(out), "--quiet", *flags]) == 0
        saved = json.loads((out / "summary.json").read_text())
        assert (saved["tta"], saved["merge"]) == (tta, merge)
    capsys.readouterr()
