"""The physical scale of microscope images: the range of µm/px a real set-up can have."""

#: µm/px outside this range is a typo or a unit mistake (nm, mm), not a microscope: 0.05 µm/px
#: is beyond a 100x oil objective on a small-pixel camera, 5 µm/px below a 4x objective.
UM_PER_PX_RANGE = (0.05, 5.0)


def training_scale(boxes, frame_hw: tuple[int, int], imgsz: tuple[int, int],
                   um_per_px: float) -> dict[str, float]:
    """The scale a model's *network input* had in training, for its checkpoint's ``meta``.

    ``boxes``: the training frames' sperm boxes (N x 4, xyxy, frame px); ``frame_hw``: their
    frame size; ``imgsz``: the (H, W) they were letterboxed to; ``um_per_px``: the frames' own
    scale. Frames were resized by ``s = min(H / h, W / w)`` on the way in, so the network saw
    ``um_per_px / s`` µm per pixel and heads ``s`` times their frame size; a model trained at
    512x384 on 698x528 frames (s = 0.727) must record 0.48 µm/px, or ``--um-per-px`` would feed
    it frames at the wrong magnification."""
    import numpy as np

    from active.data.boxes import long_side

    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) == 0:
        raise ValueError("no sperm box to measure the head size on")
    head = float(np.median(long_side(b)))
    s = min(imgsz[0] / frame_hw[0], imgsz[1] / frame_hw[1])
    return {"um_per_px": round(um_per_px / s, 6), "head_box_px": round(head * s, 3),
            "frame_um_per_px": um_per_px, "letterbox": round(s, 6)}


def records_scale(records, imgsz: tuple[int, int], um_per_px: float) -> dict[str, float]:
    """:func:`training_scale` of annotated frame records: their sperm boxes, and the frame size
    most of them have."""
    from collections import Counter

    import numpy as np

    sperm = records[0].class_names.index("sperm")
    boxes = np.concatenate([r.boxes[r.labels == sperm] for r in records])
    size = Counter((r.height, r.width) for r in records).most_common(1)[0][0]
    return training_scale(boxes, size, imgsz, um_per_px)
