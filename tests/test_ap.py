"""AP50 on hand-made cases, and agreement with pycocotools on random detections."""

import numpy as np
import pytest

from active.data.ap import ImageResult, class_ap, evaluate_ap, voc_ap
from active.evaluation.coco_eval import coco_evaluate

NAMES = ("sperm", "impurity")


def _img(gt, gl, det=(), scores=(), dl=()):
    return ImageResult(np.array(gt, float).reshape(-1, 4), np.array(gl, int),
                       np.array(det, float).reshape(-1, 4), np.array(scores, float),
                       np.array(dl, int))


GT = [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]


def test_perfect_detections_give_one():
    r = _img(GT, [0, 0, 1], GT, [0.9, 0.8, 0.7], [0, 0, 1])
    ap = evaluate_ap([r], NAMES)
    assert ap["sperm"].ap == pytest.approx(1.0) and ap["impurity"].ap == pytest.approx(1.0)


def test_no_detections_give_zero_and_no_gt_gives_nan():
    assert evaluate_ap([_img(GT, [0, 0, 0])], NAMES)["sperm"].ap == 0.0
    assert np.isnan(evaluate_ap([_img(GT, [0, 0, 0])], NAMES)["impurity"].ap)


def test_hand_computed_ranking():
    # ranking: TP (0.9), FP (0.8), TP (0.7), FP (0.6); 3 ground-truth boxes
    # precision 1, 1/2, 2/3, 2/4 at recall 1/3, 1/3, 2/3, 2/3 -> AP = 1/3*1 + 1/3*2/3 = 5/9
    det = [[0, 0, 10, 10], [100, 100, 110, 110], [20, 20, 30, 30], [60, 60, 70, 70]]
    r = _img(GT, [0, 0, 0], det, [0.9, 0.8, 0.7, 0.6], [0, 0, 0, 0])
    assert class_ap([r], 0).ap == pytest.approx(5 / 9)


def test_duplicate_detection_is_a_false_positive_and_wrong_class_does_not_match():
    r = _img(GT[:1], [0], [GT[0], GT[0], GT[0]], [0.9, 0.8, 0.95], [0, 0, 1])
    res = class_ap([r], 0)
    assert res.num_det == 2
    np.testing.assert_allclose(res.precision, [1.0, 0.5])


def test_iou_threshold_and_lenient_rule():
    # a box shifted by 3 px: IoU = 49/151 < 0.5 -> FP; with the lenient rule (IoU >= 0.4?) no
    shifted = [[2, 2, 12, 12]]  # IoU 64/136 = 0.47, centre distance 2.8 px
    r = _img(GT[:1], [0], shifted, [0.9], [0])
    assert class_ap([r], 0).ap == 0.0
    assert class_ap([r], 0, lenient_px=3.0).ap == pytest.approx(1.0)
    assert class_ap([r], 0, lenient_px=2.0).ap == 0.0


def test_voc_ap_envelope():
    assert voc_ap(np.array([0.5, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(8))
def test_agrees_with_pycocotools_on_random_detections(seed):
    """Same matching; the residual gap is COCO's 101-point vs VOC's all-point interpolation."""
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(30):
        n = int(rng.integers(10, 40))
        xy = rng.uniform(0, 600, (n, 2))
        wh = rng.uniform(8, 40, (n, 2))
        gt = np.concatenate([xy, xy + wh], 1)
        gl = (rng.random(n) < 0.25).astype(int)
        keep = rng.random(n) < 0.8
        det = gt[keep] + rng.normal(0, 2, (keep.sum(), 4))
        # well-formed boxes (x1 > x0), as post-processing produces; degenerate boxes are scored
        # differently by pycocotools (negative width times negative height is a positive area)
        det = np.concatenate([np.minimum(det[:, :2], det[:, 2:]),
                              np.maximum(det[:, :2], det[:, 2:]) + 0.5], 1)
        dl = np.where(rng.random(keep.sum()) < 0.9, gl[keep], 1 - gl[keep])
        m = int(rng.integers(0, 8))
        fxy = rng.uniform(0, 600, (m, 2))
        det = np.concatenate([det, np.concatenate([fxy, fxy + 15], 1)])
        dl = np.concatenate([dl, rng.integers(0, 2, m)])
        scores = rng.random(len(det))
        results.append(ImageResult(gt, gl, det, scores, dl))
    ours = evaluate_ap(results, NAMES)
    coco = coco_evaluate(results, NAMES)["per_class_ap50"]
    for name in NAMES:
        assert ours[name].ap == pytest.approx(coco[name], abs=0.005)
