"""Decode + DIoU-NMS post-processing, checked against a brute-force reference."""

from __future__ import annotations

import pytest
import torch
from torchvision.ops import batched_nms, distance_box_iou

from active.models import postprocess as pp
from active.models.coder import BoxCoder, decode_outputs
from active.models.postprocess import (
    PostProcess,
    PostProcessConfig,
    batched_diou_nms,
    diou_nms,
    pad_detections,
    postprocess,
    select_detections,
)

STRIDES = (8, 16, 32)
ANCHORS = torch.tensor(
    [
        [[10, 13], [16, 30], [33, 23]],
        [[30, 61], [62, 45], [59, 119]],
        [[116, 90], [156, 198], [373, 326]],
    ],
    dtype=torch.float32,
)


def ref_diou(a: list[float], b: list[float]) -> float:
    """DIoU of two xyxy boxes, written out: IoU - centre distance^2 / enclosing diagonal^2."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    d2 = ((a[0] + a[2]) / 2 - (b[0] + b[2]) / 2) ** 2 + ((a[1] + a[3]) / 2 - (b[1] + b[3]) / 2) ** 2
    c2 = (max(a[2], b[2]) - min(a[0], b[0])) ** 2 + (max(a[3], b[3]) - min(a[1], b[1])) ** 2
    return inter / union - d2 / c2


def ref_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, thr: float) -> list:
    """Textbook greedy class-aware DIoU-NMS over Python lists."""
    b, s, c = boxes.tolist(), scores.tolist(), classes.tolist()
    kept: list[int] = []
    for i in sorted(range(len(b)), key=lambda i: -s[i]):
        if all(c[k] != c[i] or ref_diou(b[k], b[i]) <= thr for k in kept):
            kept.append(i)
    return kept


def random_boxes(gen: torch.Generator, n: int, clusters: int) -> tuple[torch.Tensor, ...]:
    """Boxes jittered around a few objects, as a detector's candidates are."""
    centre = torch.rand(clusters, 2, generator=gen) * 200
    size = torch.rand(clusters, 2, generator=gen) * 30 + 4
    pick = torch.randint(0, clusters, (n,), generator=gen)
    c = centre[pick] + torch.randn(n, 2, generator=gen) * 4
    wh = size[pick] * (1 + 0.3 * torch.rand(n, 2, generator=gen))
    boxes = torch.cat([c - wh / 2, c + wh / 2], dim=1)
    return boxes, torch.rand(n, generator=gen), torch.randint(0, 2, (n,), generator=gen)


@pytest.mark.parametrize("seed", range(40))
def test_diou_nms_matches_brute_force(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 120, (1,), generator=gen))
    boxes, scores, classes = random_boxes(gen, n, clusters=max(1, n // 8))
    thr = [0.3, 0.45, 0.6, 0.0][seed % 4]
    assert diou_nms(boxes, scores, thr).tolist() == ref_nms(boxes, scores, classes * 0, thr)
    assert batched_diou_nms(boxes, scores, classes, thr).tolist() == ref_nms(
        boxes, scores, classes, thr
    )
    keep = diou_nms(boxes, scores, thr, max_keep=3)
    assert keep.tolist() == ref_nms(boxes, scores, classes * 0, thr)[:3]


def test_row_path_for_many_candidates_matches_matrix_path(monkeypatch) -> None:
    gen = torch.Generator().manual_seed(1)
    boxes, scores, _ = random_boxes(gen, 400, clusters=30)
    want = diou_nms(boxes, scores, 0.45)
    assert want.tolist() == ref_nms(boxes, scores, torch.zeros(400), 0.45)
    monkeypatch.setattr(pp, "_MATRIX_MAX", 10)  # force the row-by-row path
    assert torch.equal(diou_nms(boxes, scores, 0.45), want)


def test_diou_keeps_a_box_with_equal_iou_but_a_distant_centre() -> None:
    anchor = [0.0, 0.0, 10.0, 10.0]
    side = 50**0.5  # a concentric box of half the area: IoU 0.5, same centre
    inner = [5 - side / 2, 5 - side / 2, 5 + side / 2, 5 + side / 2]
    shifted = [10 / 3, 0.0, 10 / 3 + 10, 10.0]  # same size, shifted: IoU (10-s)/(10+s) = 0.5
    boxes = torch.tensor([anchor, inner, shifted])
    scores = torch.tensor([0.9, 0.8, 0.7])
    diou = distance_box_iou(boxes[:1], boxes[1:])[0]
    assert diou[0] == pytest.approx(0.5, abs=1e-5) and diou[1] == pytest.approx(0.46, abs=1e-5)
    labels = torch.zeros(3, dtype=torch.long)
    assert batched_nms(boxes, scores, labels, 0.48).tolist() == [0]  # plain NMS: both go
    assert diou_nms(boxes, scores, 0.48).tolist() == [0, 2]  # DIoU: the distant one stays


def test_empty_inputs() -> None:
    assert diou_nms(torch.zeros(0, 4), torch.zeros(0), 0.5).shape == (0,)
    assert batched_diou_nms(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0), 0.5).numel() == 0
    dets = postprocess(raw_outputs(2), ANCHORS, STRIDES)  # nothing above threshold
    assert len(dets) == 2
    for d in dets:
        assert d.boxes.shape == (0, 4) and d.scores.shape == (0,) and d.classes.dtype == torch.int64
    assert postprocess(raw_outputs(0), ANCHORS, STRIDES) == []
    assert pad_detections(dets, 5).shape == (2, 5, 6)


def raw_outputs(batch: int, size: int = 64, nc: int = 2) -> list[torch.Tensor]:
    """Raw outputs with every objectness logit at -20 (no detections)."""
    outs = []
    for s in STRIDES:
        t = torch.zeros(batch, 3, size // s, size // s, 5 + nc)
        t[..., 4] = -20.0
        outs.append(t)
    return outs


def plant(
    raw: list[torch.Tensor],
    coder: BoxCoder,
    b: int,
    level: int,
    a: int,
    gy: int,
    gx: int,
    box_cxcywh: list[float],
    obj: float,
    cls: list[float],
) -> None:
    """Write the raw logits that decode to ``box_cxcywh`` with the given probabilities."""
    t = coder.encode(
        torch.tensor(box_cxcywh),
        torch.tensor([gx, gy], dtype=torch.float32),
        ANCHORS[level, a],
        STRIDES[level],
    )
    raw[level][b, a, gy, gx, :4] = t
    raw[level][b, a, gy, gx, 4:] = torch.logit(torch.tensor([obj, *cls]))


@pytest.mark.parametrize("mode", ["bounded", "exp"])
def test_decode_and_one_class_per_box_by_default(mode: str) -> None:
    coder = BoxCoder(mode=mode)  # type: ignore[arg-type]
    raw = raw_outputs(2)
    plant(raw, coder, 1, 0, 1, 3, 2, [20.0, 28.0, 15.0, 30.0], 0.9, [0.8, 0.7])
    decoded = decode_outputs(raw, ANCHORS, STRIDES, coder)
    assert decoded.shape == (2, 3 * (8 * 8 + 4 * 4 + 2 * 2), 7)
    row = decoded[1, 1 * 64 + 3 * 8 + 2]  # level 0, anchor 1, row 3, column 2
    torch.testing.assert_close(row[:4], torch.tensor([12.5, 13.0, 27.5, 43.0]))
    cfg = PostProcessConfig(score_threshold=0.3)
    (d0, d1) = postprocess(raw, ANCHORS, STRIDES, coder, cfg)
    assert len(d0) == 0 and len(d1) == 1
    assert d1.classes.tolist() == [0] and d1.scores.tolist() == pytest.approx([0.72])
    torch.testing.assert_close(d1.boxes[0], row[:4])
    multi = postprocess(raw, ANCHORS, STRIDES, coder, PostProcessConfig(0.3, multi_label=True))
    assert sorted(multi[1].classes.tolist()) == [0, 1]
    assert multi[1].scores.tolist() == pytest.approx([0.72, 0.63])


def test_class_aware_and_agnostic() -> None:
    coder = BoxCoder()
    raw = raw_outputs(1)
    plant(raw, coder, 0, 0, 1, 3, 2, [20.0, 28.0, 15.0, 30.0], 0.9, [0.9, 0.1])
    plant(raw, coder, 0, 0, 2, 3, 2, [21.0, 28.0, 15.0, 30.0], 0.9, [0.1, 0.8])
    aware = PostProcess(ANCHORS, STRIDES, coder, PostProcessConfig())(raw)[0]
    assert sorted(aware.classes.tolist()) == [0, 1]
    agnostic = PostProcess(ANCHORS, STRIDES, coder, PostProcessConfig(agnostic=True))(raw)[0]
    assert agnostic.classes.tolist() == [0]


@pytest.mark.parametrize("nms", ["diou", "iou"])
def test_score_threshold_and_max_det(nms: str) -> None:
    gen = torch.Generator().manual_seed(0)
    raw = [t.normal_(generator=gen) * 3 for t in raw_outputs(3, size=128)]
    cfg = PostProcessConfig(score_threshold=0.4, max_det=7, nms=nms)  # type: ignore[arg-type]
    dets = PostProcess(ANCHORS, STRIDES, cfg=cfg)(raw)
    for d in dets:
        assert 0 < len(d) <= 7 and bool((d.scores > 0.4).all())
        assert torch.equal(d.scores, d.scores.sort(descending=True).values)
    loose = PostProcess(ANCHORS, STRIDES, cfg=PostProcessConfig(score_threshold=0.4, nms=nms))
    for d, full in zip(dets, loose(raw), strict=True):
        assert len(full) > 7 and torch.equal(full.scores[:7], d.scores)
    padded = pad_detections(dets, 10)
    assert padded.shape == (3, 10, 6) and bool((padded[:, 7:, 5] == -1).all())
    assert PostProcessConfig.for_evaluation().score_threshold == 0.001


class _Decode(torch.nn.Module):
    def __init__(self, coder: BoxCoder) -> None:
        super().__init__()
        self.coder = coder

    def forward(self, p3: torch.Tensor, p4: torch.Tensor, p5: torch.Tensor) -> torch.Tensor:
        return decode_outputs([p3, p4, p5], ANCHORS, STRIDES, self.coder)


@pytest.mark.parametrize("mode", ["bounded", "exp"])
def test_decode_exports(mode: str) -> None:
    decode = _Decode(BoxCoder(mode=mode))  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(0)
    example = tuple(t.normal_(generator=gen) for t in raw_outputs(2))
    other = tuple(t.normal_(generator=gen) for t in raw_outputs(2))
    exported = torch.export.export(decode, example)
    torch.testing.assert_close(exported.module()(*other), decode(*other))


def test_decode_runs_in_onnxruntime() -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    decode = _Decode(BoxCoder()).eval()
    gen = torch.Generator().manual_seed(0)
    example = tuple(t.normal_(generator=gen) for t in raw_outputs(2))
    program = torch.onnx.export(decode, example, dynamo=True, verbose=False)
    session = ort.InferenceSession(
        program.model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    names = [i.name for i in session.get_inputs()]
    (out,) = session.run(None, {n: t.numpy() for n, t in zip(names, example, strict=True)})
    torch.testing.assert_close(torch.from_numpy(out), decode(*example), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("seed", range(6))
def test_candidate_prefilter_equals_the_dense_path(seed: int) -> None:
    """postprocess decodes only priors whose objectness can pass the threshold; the detections
    must be exactly those of decoding every prior."""
    from active.models.coder import decode_outputs
    from active.models.postprocess import select_detections

    g = torch.Generator().manual_seed(seed)
    raw = [torch.randn(2, 3, 128 // s, 96 // s, 7, generator=g) * 2.0 for s in STRIDES]
    for r in raw:
        r[..., 4] -= 1.0
    coder = BoxCoder()
    for thr in (0.05, 0.25, 0.6):
        for multi in (False, True):
            cfg = PostProcessConfig(score_threshold=thr, multi_label=multi, max_det=50)
            fast = postprocess(raw, ANCHORS, STRIDES, coder, cfg)
            dense = select_detections(decode_outputs(raw, ANCHORS, STRIDES, coder), cfg)
            for a, b in zip(fast, dense, strict=True):
                assert len(a) > 0
                torch.testing.assert_close(a.boxes, b.boxes)
                torch.testing.assert_close(a.scores, b.scores)
                assert torch.equal(a.classes, b.classes)


def _rows(boxes, scores, cls=None):
    """Decoded rows [x0, y0, x1, y1, obj, p_sperm, p_impurity], objectness = score."""
    out = torch.zeros(len(boxes), 7)
    out[:, :4] = torch.tensor(boxes, dtype=torch.float32)
    out[:, 4] = torch.tensor(scores)
    out[torch.arange(len(boxes)), 5 + torch.tensor(cls or [0] * len(boxes))] = 1.0
    return out[None]


def test_merge_moves_a_kept_box_to_the_weighted_mean_of_what_it_suppressed() -> None:
    rows = _rows([[10, 10, 20, 20], [12, 10, 22, 20], [100, 100, 110, 110]], [0.9, 0.3, 0.5])
    plain = select_detections(rows, PostProcessConfig(score_threshold=0.1, merge=False))[0]
    merged = select_detections(rows, PostProcessConfig(score_threshold=0.1))[0]
    assert plain.scores.tolist() == merged.scores.tolist() == pytest.approx([0.9, 0.5])
    torch.testing.assert_close(plain.boxes[0], torch.tensor([10.0, 10, 20, 20]))
    x0 = (0.9 * 10 + 0.3 * 12) / 1.2
    torch.testing.assert_close(merged.boxes[0], torch.tensor([x0, 10, x0 + 10, 20]))
    torch.testing.assert_close(merged.boxes[1], torch.tensor([100.0, 100, 110, 110]))


def test_merge_gives_each_candidate_to_one_box_and_keeps_classes_apart() -> None:
    # the middle box overlaps both outer ones; the better outer box suppressed it, so only that
    # one moves. A box of the other class at the same place is neither merged nor suppressed.
    rows = _rows([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10], [3, 0, 13, 10]],
                 [0.9, 0.5, 0.8, 0.7], [0, 0, 0, 1])
    cfg = PostProcessConfig(score_threshold=0.1, iou_threshold=0.3)
    det = select_detections(rows, cfg)[0]
    assert det.classes.tolist() == [0, 0, 1]
    x0 = 0.5 * 3 / 1.4
    torch.testing.assert_close(det.boxes[0], torch.tensor([x0, 0, x0 + 10, 10]))
    torch.testing.assert_close(det.boxes[1], torch.tensor([6.0, 0, 16, 10]))
    torch.testing.assert_close(det.boxes[2], torch.tensor([3.0, 0, 13, 10]))


@pytest.mark.parametrize("nms", ["diou", "iou"])
def test_merge_changes_boxes_not_counts_or_scores(nms: str) -> None:
    gen = torch.Generator().manual_seed(1)
    xy = torch.rand(1, 400, 2, generator=gen) * 150
    wh = 8 + torch.rand(1, 400, 2, generator=gen) * 12
    rows = torch.cat([xy, xy + wh, torch.rand(1, 400, 3, generator=gen)], -1)
    a = select_detections(rows, PostProcessConfig(score_threshold=0.05, nms=nms, merge=False))[0]
    b = select_detections(rows, PostProcessConfig(score_threshold=0.05, nms=nms))[0]
    assert len(a) == len(b) > 20
    assert torch.equal(a.scores, b.scores) and torch.equal(a.classes, b.classes)
    assert not torch.allclose(a.boxes, b.boxes)
    assert (b.boxes - a.boxes).abs().max() < 20  # a merged box stays near the one kept
