"""The numpy post-processing (the ONNX path without PyTorch) gives the torch path's detections."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from active.inference import postprocess_np as np_post
from active.models import postprocess as torch_post
from active.models.coder import BoxCoder


def _raw(seed: int, nc: int = 2) -> list[np.ndarray]:
    """Head outputs of a 3-level, 3-anchor model on a 128x160 input, with clusters of confident
    priors (overlapping boxes for the NMS and the merge to act on)."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in ((16, 20), (8, 10), (4, 5)):
        r = rng.normal(0, 1, (2, 3, h, w, 5 + nc)).astype(np.float32)
        r[..., 4] -= 3
        hot = rng.random((2, 3, h, w)) < 0.15
        r[..., 4][hot] += 5
        out.append(r)
    return out


ANCHORS = np.array([[[10, 13], [16, 30], [33, 23]], [[30, 61], [62, 45], [59, 119]],
                    [[116, 90], [156, 198], [373, 326]]], np.float32)


@pytest.mark.parametrize("mode", ["bounded", "exp"])
@pytest.mark.parametrize("threshold", [0.001, 0.25, 0.6])
@pytest.mark.parametrize("nms,merge,agnostic", [("diou", True, False), ("diou", False, False),
                                                ("iou", True, False), ("diou", True, True)])
def test_numpy_equals_torch(mode: str, threshold: float, nms: str, merge: bool,
                            agnostic: bool) -> None:
    coder = BoxCoder(mode=mode, scale_xy=1.1 if mode == "exp" else 1.0)
    cfg = replace(torch_post.PostProcessConfig(), score_threshold=threshold, nms=nms,
                  merge=merge, agnostic=agnostic)
    raw = _raw(int(threshold * 1000) + len(mode))
    expected = torch_post.postprocess([torch.from_numpy(r) for r in raw],
                                      torch.from_numpy(ANCHORS), (8, 16, 32), coder, cfg)
    got = np_post.postprocess(raw, ANCHORS, (8, 16, 32), coder, cfg)
    assert len(got) == len(expected) == 2
    for e, (boxes, scores, classes) in zip(expected, got, strict=True):
        assert len(boxes) == len(e) > 0
        np.testing.assert_allclose(boxes, e.boxes.numpy(), atol=1e-3)
        np.testing.assert_allclose(scores, e.scores.numpy(), atol=1e-6)
        np.testing.assert_array_equal(classes, e.classes.numpy())


def test_empty_and_large_candidate_sets() -> None:
    cfg = torch_post.PostProcessConfig(score_threshold=0.25)
    raw = [np.full((1, 3, 4, 4, 7), -20, np.float32)] * 3
    assert all(len(b) == 0 for b, _, _ in np_post.postprocess(raw, ANCHORS, (8, 16, 32),
                                                              BoxCoder(), cfg))
    # above the matrix size the NMS goes row by row: same result
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (1500, 2))
    boxes = np.hstack([xy, xy + rng.uniform(5, 30, (1500, 2))]).astype(np.float32)
    scores = rng.random(1500).astype(np.float32)
    keep = np_post.greedy_nms(boxes, scores, 0.45)
    ref = torch_post.diou_nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.45)
    np.testing.assert_array_equal(keep, ref.numpy())


def test_detect_and_analyze_with_onnx_never_import_torch(tmp_path) -> None:
    """The bundled model runs in ONNX Runtime: detecting and analysing import no PyTorch (3 s and
    ~800 MB of start-up); a subprocess so that this test's own imports do not count."""
    import subprocess
    import sys

    from active.data.video import write_video

    clip = tmp_path / "c.mp4"
    write_video(clip, [np.full((128, 160, 3), 150, np.uint8)] * 35, fps=30)
    code = (
        "import sys\n"
        "from active.cli import main\n"
        f"assert main(['detect', {str(clip)!r}, '--out', {str(tmp_path / 'd')!r}, "
        "'--quiet']) == 0\n"
        f"assert main(['analyze', {str(clip)!r}, '--um-per-px', '0.35', '--chamber-depth', '20', "
        f"'--out', {str(tmp_path / 'a')!r}, '--quiet']) == 0\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')]\n"
        "assert not bad, bad[:5]\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cuda_asked_for_without_cuda_is_a_clear_error() -> None:
    import onnxruntime as ort

    from active.errors import UsageError
    from active.inference.predictor import Predictor

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UsageError, match="--device cuda"):
        Predictor(backend="onnx", device="cuda")


def test_base_install_without_torch(tmp_path) -> None:
    """As installed without the `train` extra (PyTorch made unimportable): the demo runs, and a
    command that needs PyTorch says which extra to install (exit 2), not a traceback."""
    import subprocess
    import sys

    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from active.cli import main\n"
        f"assert main(['demo', '--frames', '35', '--out', {str(tmp_path / 'd')!r}, "
        "'--quiet']) == 0\n"
        f"rc = main(['export', {str(tmp_path / 'x.pt')!r}])\n"
        "assert rc == 2, rc\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "active-casa[train]" in proc.stderr
