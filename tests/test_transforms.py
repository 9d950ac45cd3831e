import numpy as np
import pytest

from active.data.transforms import (
    AugmentConfig,
    clip_boxes,
    dark_border,
    flip,
    hard_negatives,
    letterbox,
    mosaic,
    photometric,
    random_affine,
    stride_size,
)
from active.training.data import DetectionDataset, collate


def _image_with_boxes(rng, h=120, w=160, n=5):
    img = np.full((h, w, 3), 200, np.uint8)
    xy = rng.integers(0, [w - 20, h - 20], (n, 2))
    boxes = np.concatenate([xy, xy + rng.integers(6, 20, (n, 2))], 1).astype(np.float32)
    for b in boxes.astype(int):
        img[b[1]:b[3], b[0]:b[2]] = 20
    return img, boxes, rng.integers(0, 2, n)


def _dark_fraction(img, boxes):
    """Fraction of each box's pixels that are dark (the drawn object)."""
    out = []
    for b in np.round(boxes).astype(int):
        patch = img[b[1]:b[3], b[0]:b[2]]
        out.append(float((patch.mean(axis=2) < 110).mean()) if patch.size else 0.0)
    return np.array(out)


def test_letterbox_round_trip_and_object_alignment():
    rng = np.random.default_rng(0)
    img, boxes, _ = _image_with_boxes(rng)
    out, moved, meta = letterbox(img, (96, 96), boxes)
    assert out.shape == (96, 96, 3)
    assert (_dark_fraction(out, moved) > 0.6).all()
    np.testing.assert_allclose(meta.undo(moved), boxes, atol=1e-4)


def test_stride_size():
    assert stride_size(528, 698) == (544, 704)


@pytest.mark.parametrize("horizontal", [True, False])
def test_flip_moves_boxes_with_pixels(horizontal):
    img, boxes, _ = _image_with_boxes(np.random.default_rng(1))
    out, moved = flip(img, boxes, horizontal)
    assert (_dark_fraction(out, moved) > 0.95).all()


def test_affine_and_mosaic_keep_boxes_on_objects():
    rng = np.random.default_rng(2)
    cfg = AugmentConfig()
    for _ in range(10):
        img, boxes, labels = _image_with_boxes(rng)
        out, b, lab = random_affine(img, boxes, labels, (128, 128), cfg, rng)
        assert len(b) == len(lab) and out.shape == (128, 128, 3)
        assert (_dark_fraction(out, b) > 0.6).all()
        parts = [_image_with_boxes(rng) for _ in range(4)]
        out, b, lab = mosaic(*[list(x) for x in zip(*parts, strict=True)], (128, 128), cfg, rng)
        assert (b[:, 2] <= 128).all() and (b[:, :2] >= 0).all() and len(b) == len(lab)
        assert (_dark_fraction(out, b) > 0.6).all()


def test_clip_drops_mostly_hidden_boxes():
    boxes = np.array([[-8, 0, 2, 10], [-2, 0, 8, 10]], np.float32)
    kept, lab = clip_boxes(boxes, np.array([0, 1]), 50, 50, 0.4)
    np.testing.assert_array_equal(lab, [1])
    np.testing.assert_array_equal(kept, [[0, 0, 8, 10]])


def test_dataset_is_deterministic_and_collates(records):
    ds = DetectionDataset(records, (64, 64), AugmentConfig(), seed=3)
    a, b = ds[1], ds[1]
    assert a[0].shape == (3, 64, 64) and a[0].dtype.is_floating_point
    assert np.array_equal(a[0].numpy(), b[0].numpy()) and np.array_equal(a[1], b[1])
    ds.set_epoch(1)
    assert not np.array_equal(ds[1][0].numpy(), a[0].numpy())
    images, targets = collate([ds[0], ds[1], ds[2]])
    assert images.shape == (3, 3, 64, 64) and targets.shape[1] == 6
    assert set(targets[:, 0].tolist()) <= {0.0, 1.0, 2.0}
    plain = DetectionDataset(records, (64, 96))
    img, t = plain[0]
    assert img.shape == (3, 64, 96) and len(t) == len(records[0])


ROBUST = AugmentConfig(zoom=1.0, zoom_min=0.4, zoom_max=2.5, gamma=1.0, defocus=1.0, halo=1.0,
                       background=1.0, negatives=1.0, border=1.0)


def test_zoom_spans_the_range_and_boxes_follow():
    """Zoomed frames put heads anywhere from ~0.4x to ~2.5x their size, boxes still on them."""
    rng = np.random.default_rng(5)
    ratios = []
    for _ in range(60):
        img, boxes, labels = _image_with_boxes(rng, n=3)
        out, b, lab = random_affine(img, boxes, labels, (120, 160), ROBUST, rng)
        assert out.shape == (120, 160, 3) and len(b) == len(lab)
        if len(b):  # shrunk boxes are a few px: rounding costs a pixel row
            assert (_dark_fraction(out, b) >= 0.5).all()
        ratios.append(ROBUST.draw_zoom(rng))
    assert min(ratios) < 0.6 and max(ratios) > 1.7
    assert all(0.4 <= r <= 2.5 for r in ratios)
    assert AugmentConfig().draw_zoom(rng) is None  # off by default: old recipes unchanged


def test_mosaic_tiles_keep_the_drawn_zoom():
    rng = np.random.default_rng(6)
    big = AugmentConfig(zoom=1.0, zoom_min=2.0, zoom_max=2.0)
    parts = [_image_with_boxes(rng, n=4) for _ in range(4)]
    out, b, lab = mosaic(*[list(x) for x in zip(*parts, strict=True)], (120, 160), big, rng)
    if len(b):  # tiles are crops at 2x: every kept box is at least ~2x the smallest drawn one
        assert (_dark_fraction(out, b) > 0.6).all()
        assert ((b[:, 2:] - b[:, :2]).max(1) >= 2 * 6 - 1).all() or (b[:, :2] == 0).any()


def _boxes_untouched(out, img, boxes):
    return all(np.array_equal(out[b[1]:b[3], b[0]:b[2]], img[b[1]:b[3], b[0]:b[2]])
               for b in np.round(boxes).astype(int))


def test_hard_negatives_never_cover_a_box_and_add_artefacts():
    rng = np.random.default_rng(7)
    for _ in range(20):
        img, boxes, _ = _image_with_boxes(rng, h=200, w=260)
        out = hard_negatives(img, boxes, rng)
        assert _boxes_untouched(out, img, boxes)
        assert out.shape == img.shape and out.dtype == img.dtype
    changed = [not np.array_equal(hard_negatives(img, boxes, np.random.default_rng(i)), img)
               for i in range(10)]
    assert sum(changed) >= 8


def test_dark_border_stays_off_the_boxes():
    rng = np.random.default_rng(8)
    for _ in range(20):
        img, boxes, _ = _image_with_boxes(rng, h=200, w=260)
        out = dark_border(img, boxes, rng)
        assert _boxes_untouched(out, img, boxes)


def test_photometric_robust_range_keeps_shape_and_changes_the_image():
    rng = np.random.default_rng(9)
    img, _, _ = _image_with_boxes(rng)
    outs = [photometric(img, ROBUST, rng) for _ in range(5)]
    for o in outs:
        assert o.shape == img.shape and o.dtype == np.uint8
        assert not np.array_equal(o, img)


@pytest.mark.parametrize("bad", [{"zoom_min": 0.0}, {"zoom_min": 3.0, "zoom_max": 2.0},
                                 {"halo": 1.5}, {"negatives": -0.1}])
def test_augment_config_rejects_impossible_values(bad):
    with pytest.raises(ValueError, match="augment"):
        AugmentConfig(**bad)


def test_without_robustness_keeps_the_basic_augmentation():
    plain = ROBUST.without_robustness()
    assert plain.draw_zoom(np.random.default_rng(0)) is None
    assert (plain.gamma, plain.halo, plain.negatives, plain.border) == (0, 0, 0, 0)
    assert (plain.fliplr, plain.mosaic, plain.contrast) == (ROBUST.fliplr, ROBUST.mosaic,
                                                            ROBUST.contrast)
