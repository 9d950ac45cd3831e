"""Box coding, target assignment and the YOLO criterion, on hand-made tensors (no network)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from active.models.coder import BoxCoder, make_grid
from active.training.assign import assign_targets
from active.training.loss import LossConfig, YoloCriterion

STRIDES = (8, 16, 32)
IMG = 128  # grids 16, 8, 4
NC = 2
# Square anchors make the shape IoUs easy to check by hand: IoU(square a, square b) = (a/b)^2.
ANCHORS = (
    torch.tensor([[8, 12, 16], [24, 32, 48], [64, 96, 128]], dtype=torch.float32)[..., None]
    .expand(3, 3, 2)
    .contiguous()
)
GRIDS = [(IMG // s, IMG // s) for s in STRIDES]
# One 32x32 box in image 1, centre (51, 45).
BOX = torch.tensor([[1.0, 1.0, 35.0, 29.0, 67.0, 61.0]])


def positives(levels) -> set[tuple[int, int, int, int, int]]:
    """{(level, image, anchor, gy, gx)} of an assignment."""
    return {
        (lvl, int(b), int(a), int(y), int(x))
        for lvl, t in enumerate(levels)
        for b, a, y, x in zip(t.image, t.anchor, t.gy, t.gx, strict=True)
    }


# Centre cells of (51, 45): stride 8 -> (gy 5, gx 6); 16 -> (2, 3); 32 -> (1, 1).
CENTRE = {0: (5, 6), 1: (2, 3), 2: (1, 1)}


def test_iou_rule_threshold_and_best_anchor() -> None:
    # Shape IoUs of a 32 box: 8:.06 12:.14 16:.25 | 24:.56 32:1 48:.44 | 64:.25 96:.11 128:.06
    got = positives(assign_targets(BOX, ANCHORS, STRIDES, GRIDS, rule="iou", iou_threshold=0.213))
    want = (
        {(0, 1, 2, *CENTRE[0])}
        | {(1, 1, a, *CENTRE[1]) for a in range(3)}
        | {(2, 1, 0, *CENTRE[2])}
    )
    assert got == want
    got = positives(assign_targets(BOX, ANCHORS, STRIDES, GRIDS, rule="iou", iou_threshold=0.3))
    assert got == {(1, 1, a, *CENTRE[1]) for a in range(3)}
    # Nothing passes 0.999 except the box's exact match: the best anchor is always kept.
    got = positives(assign_targets(BOX, ANCHORS, STRIDES, GRIDS, rule="iou", iou_threshold=0.999))
    assert got == {(1, 1, 1, *CENTRE[1])}
    odd = torch.tensor([[0.0, 0.0, 0.0, 0.0, 300.0, 2.0]])  # fits no anchor: still one positive
    assert len(positives(assign_targets(odd, ANCHORS, STRIDES, [(40, 40)] * 3))) == 1


def test_ratio_rule_with_neighbour_cells() -> None:
    # Side ratios of a 32 box: 8:4 12:2.7 16:2 | 24 32 48: <2 | 64:2 96:3 128:4  (< 4 passes)
    levels = assign_targets(BOX, ANCHORS, STRIDES, GRIDS, rule="ratio", anchor_t=4.0)
    anchors = {0: (1, 2), 1: (0, 1, 2), 2: (0, 1)}
    assert positives(levels) == {(lvl, 1, a, *CENTRE[lvl]) for lvl in anchors for a in anchors[lvl]}
    # Grid coordinates of the centre: (6.375, 5.625), (3.19, 2.81), (1.59, 1.41): the neighbours
    # nearer the centre are left+down, left+down, right+up.
    cells = {0: [(5, 6), (5, 5), (6, 6)], 1: [(2, 3), (2, 2), (3, 3)], 2: [(1, 1), (1, 2), (0, 1)]}
    levels = assign_targets(BOX, ANCHORS, STRIDES, GRIDS, rule="ratio", neighbour_cells=True)
    want = {(lvl, 1, a, *c) for lvl in anchors for a in anchors[lvl] for c in cells[lvl]}
    assert positives(levels) == want
    assert all(torch.equal(t.boxes, BOX[:, 2:].expand(len(t), 4)) for t in levels)
    assert all(bool((t.classes == 1).all()) for t in levels)


def test_neighbours_stay_inside_the_grid() -> None:
    corner = torch.tensor([[0, 0, 0, 0, 10, 10], [0, 1, 118, 118, 128, 128]], dtype=torch.float32)
    for t, (h, w) in zip(
        assign_targets(corner, ANCHORS, STRIDES, GRIDS, rule="ratio", neighbour_cells=True),
        GRIDS,
        strict=True,
    ):
        assert bool((t.gx >= 0).all() and (t.gx < w).all() and (t.gy >= 0).all())
        assert bool((t.gy < h).all())


@pytest.mark.parametrize("mode", ["exp", "bounded"])
def test_encode_decode_round_trip(mode: str) -> None:
    coder = BoxCoder(mode=mode, scale_xy=1.1)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(0)
    grid = torch.randint(0, 10, (500, 2), generator=gen).float()
    anchor = torch.rand(500, 2, generator=gen) * 40 + 5
    stride = 16
    frac = torch.rand(500, 2, generator=gen) * 0.9 + 0.05  # centre inside its cell
    ratio = torch.rand(500, 2, generator=gen) * 3.5 + 0.2  # reachable by both decodes
    boxes = torch.cat([(grid + frac) * stride, anchor * ratio], dim=1)
    back = coder.decode(coder.encode(boxes, grid, anchor, stride), grid, anchor, stride)
    torch.testing.assert_close(back, boxes, rtol=1e-4, atol=1e-3)
    raw = (torch.randn(500, 4, generator=gen) * 2).clamp(-4, 4)  # exp decode clamps tw > 4.1
    again = coder.encode(coder.decode(raw, grid, anchor, stride), grid, anchor, stride)
    torch.testing.assert_close(again, raw, rtol=1e-3, atol=1e-3)


def test_make_grid_is_x_then_y() -> None:
    g = make_grid(2, 3)
    assert g.shape == (2, 3, 2) and g[1, 2].tolist() == [2.0, 1.0]


def raw_zeros(batch: int = 2, fill: float = -20.0) -> list[torch.Tensor]:
    """Raw outputs with every objectness logit at ``fill`` and every other logit at 0."""
    outs = []
    for h, w in GRIDS:
        t = torch.zeros(batch, 3, h, w, 5 + NC)
        t[..., 4] = fill
        outs.append(t)
    return outs


CONFIGS = {
    "iou-bounded": LossConfig(),
    "iou-exp": LossConfig(decode="exp", scale_xy=1.05),
    "ratio-neighbours": LossConfig(assign="ratio", neighbour_cells=True),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_no_boxes_gives_objectness_loss_only(name: str) -> None:
    crit = YoloCriterion(ANCHORS, STRIDES, NC, CONFIGS[name])
    raw = [t.clone().normal_().requires_grad_() for t in raw_zeros()]
    total, parts = crit(raw, torch.zeros(0, 6))
    assert torch.isfinite(total) and float(total.detach()) > 0
    assert float(parts["box"]) == 0.0 and float(parts["cls"]) == 0.0 and float(parts["obj"]) > 0
    total.backward()
    assert all(torch.isfinite(t.grad).all() for t in raw)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_perfect_prediction_has_near_zero_loss(name: str) -> None:
    cfg = CONFIGS[name]
    crit = YoloCriterion(ANCHORS, STRIDES, NC, cfg)
    targets = torch.cat([BOX, torch.tensor([[0.0, 0.0, 90.0, 20.0, 110.0, 44.0]])])
    raw = raw_zeros()
    coder = cfg.coder()
    grids = [t.shape[2:4] for t in raw]
    for lvl, pos in enumerate(
        assign_targets(
            targets,
            ANCHORS,
            STRIDES,
            grids,
            rule=cfg.assign,
            iou_threshold=cfg.iou_threshold,
            neighbour_cells=cfg.neighbour_cells,
        )
    ):
        cxcywh = torch.cat(
            [(pos.boxes[:, :2] + pos.boxes[:, 2:]) / 2, pos.boxes[:, 2:] - pos.boxes[:, :2]], dim=1
        )
        grid = torch.stack([pos.gx, pos.gy], dim=1).float()
        t = coder.encode(cxcywh, grid, ANCHORS[lvl][pos.anchor], STRIDES[lvl])
        cls = torch.full((len(pos), NC), -20.0)
        cls[torch.arange(len(pos)), pos.classes] = 20.0
        raw[lvl][pos.image, pos.anchor, pos.gy, pos.gx] = torch.cat(
            [t, torch.full((len(pos), 1), 20.0), cls], dim=1
        )
    total, parts = crit(raw, targets)
    assert float(parts["box"]) < 1e-4
    assert float(total) < 1e-3
    # The same prediction against an empty image is heavily penalised.
    bad, _ = crit(raw, torch.zeros(0, 6))
    assert float(bad) > 100 * float(total)


def sgd_losses(cfg: LossConfig, lr: float, steps: int, part: str | None = None) -> list[float]:
    """Train raw outputs directly (a parameter tensor per level) and record the loss."""
    torch.manual_seed(0)
    crit = YoloCriterion(ANCHORS, STRIDES, NC, cfg)
    targets = torch.cat([BOX, torch.tensor([[0.0, 0.0, 90.0, 20.0, 110.0, 44.0]])])
    params = [torch.nn.Parameter(torch.randn(2, 3, h, w, 5 + NC) * 0.5) for h, w in GRIDS]
    opt = torch.optim.SGD(params, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        total, parts = crit(params, targets)
        total.backward()
        opt.step()
        losses.append(float(total.detach() if part is None else parts[part]))
    assert all(math.isfinite(x) for x in losses)
    return losses


@pytest.mark.parametrize("name", list(CONFIGS))
def test_loss_decreases_with_sgd(name: str) -> None:
    # The objectness BCE is a mean over every prior, so plain SGD needs a large step.
    losses = sgd_losses(CONFIGS[name], lr=50.0, steps=20)
    assert losses[-1] < 0.5 * losses[0]
    box_only = dataclasses.replace(CONFIGS[name], obj_gain=0.0, cls_gain=0.0)
    losses = sgd_losses(box_only, lr=10.0, steps=30, part="box")
    assert losses[-1] < 0.8 * losses[0]


def test_scale_by_batch_and_gains() -> None:
    raw = [t.normal_() for t in raw_zeros(batch=2)]
    base, parts = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig())(raw, BOX)
    mean, _ = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig(scale_by_batch=False))(raw, BOX)
    torch.testing.assert_close(base, 2 * mean)
    torch.testing.assert_close(base, 2 * sum(parts.values()))
    no_cls, p2 = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig(cls_gain=0.0))(raw, BOX)
    assert float(p2["cls"]) == 0.0 and float(no_cls) < float(base)


def test_label_smoothing_and_obj_target_options_change_the_loss() -> None:
    raw = [t.normal_() for t in raw_zeros()]
    base, p0 = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig())(raw, BOX)
    _, p1 = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig(label_smoothing=0.1))(raw, BOX)
    _, p2 = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig(obj_iou_target=False))(raw, BOX)
    assert float(p1["cls"]) != float(p0["cls"]) and float(p2["obj"]) != float(p0["obj"])


def test_config_round_trip_and_validation() -> None:
    cfg = LossConfig(assign="ratio", neighbour_cells=True, balance=(4.0, 1.0, 0.25, 0.06))
    assert LossConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        LossConfig.from_dict({"box_weight": 1.0})
    with pytest.raises(ValueError, match="neighbour"):
        LossConfig(decode="exp", neighbour_cells=True)
    with pytest.raises(ValueError):
        LossConfig(assign="atss")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="balance"):
        YoloCriterion(ANCHORS, STRIDES, NC, cfg)
    crit = YoloCriterion(ANCHORS, STRIDES, NC, LossConfig())
    with pytest.raises(ValueError, match="B, 3, H, W, 7"):
        crit([torch.zeros(1, 3, 16, 16, 6)] * 3, BOX)


def test_vanishing_predicted_side_keeps_gradients_finite():
    """A near-zero predicted height at a large coordinate (seen on real data at init) must not
    turn the CIoU gradient into NaN."""
    anchors = torch.tensor([[[8.0, 8.0]] * 3, [[16.0, 16.0]] * 3, [[32.0, 32.0]] * 3])
    raw = [torch.zeros(1, 3, 52, 52, 7), torch.zeros(1, 3, 26, 26, 7), torch.zeros(1, 3, 13, 13, 7)]
    raw[0][..., 3] = -12.0  # (2 * sigmoid(-12))^2 * 8 px ~ 2e-9 px
    raw = [r.requires_grad_(True) for r in raw]
    targets = torch.tensor([[0.0, 0.0, 396.0, 396.0, 405.0, 405.0]])
    loss, _ = YoloCriterion(anchors, (8, 16, 32), 2, LossConfig())(raw, targets)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(r.grad).all() for r in raw)
