import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import box_convert
from torchvision.ops import box_iou as tv_box_iou

from active.data import boxes as B

coord = st.floats(0, 2000, allow_nan=False, allow_infinity=False)


@st.composite
def xyxy(draw):
    k = draw(st.integers(0, 8))
    pts = np.array([[draw(coord) for _ in range(4)] for _ in range(k)]).reshape(-1, 4)
    lo = np.minimum(pts[:, :2], pts[:, 2:])
    hi = np.maximum(pts[:, :2], pts[:, 2:]) + 1.0
    return np.concatenate([lo, hi], 1)


@given(xyxy())
def test_xywh_round_trip(b):
    np.testing.assert_allclose(B.xywh_to_xyxy(B.xyxy_to_xywh(b)), b, atol=1e-9)


@given(xyxy())
def test_cxcywh_matches_torchvision(b):
    ours = B.xyxy_to_cxcywh(b)
    ref = box_convert(torch.from_numpy(b), "xyxy", "cxcywh").numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(B.cxcywh_to_xyxy(ours), b, atol=1e-9)


@given(xyxy(), st.integers(1, 4000), st.integers(1, 4000))
def test_yolo_round_trip(b, w, h):
    np.testing.assert_allclose(B.yolo_to_xyxy(B.xyxy_to_yolo(b, w, h), w, h), b, atol=1e-6)


@given(st.lists(st.tuples(st.integers(1, 900), st.integers(1, 900), st.integers(0, 50),
                          st.integers(0, 50)), max_size=6))
def test_voc_round_trip_and_convention(rows):
    voc = np.array([[x, y, x + dw, y + dh] for x, y, dw, dh in rows]).reshape(-1, 4)
    b = B.voc_to_xyxy(voc)
    # inclusive 1-based xmin..xmax covers xmax - xmin + 1 pixels
    np.testing.assert_allclose(b[:, 2] - b[:, 0], voc[:, 2] - voc[:, 0] + 1)
    assert (b[:, :2] >= 0).all()
    np.testing.assert_array_equal(B.xyxy_to_voc(b), voc)


def test_voc_single_pixel_box():
    np.testing.assert_array_equal(B.voc_to_xyxy([[1, 1, 1, 1]]), [[0, 0, 1, 1]])


@settings(max_examples=50)
@given(xyxy(), xyxy())
def test_box_iou_matches_torchvision(a, b):
    ref = tv_box_iou(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(B.box_iou(a, b), ref, atol=1e-7)
