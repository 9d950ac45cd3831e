"""COCO mAP through pycocotools: mAP50:95, and AP50 per class as a cross-check of ``ap.py``."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np

from active.data.ap import ImageResult
from active.data.boxes import xyxy_to_xywh


def coco_evaluate(results: Sequence[ImageResult], class_names: Sequence[str],
                  max_dets: int = 1000) -> dict:
    """Run pycocotools' COCOeval on pixel-xyxy results.

    Returns ``{"map50_95", "map50", "per_class_ap50": {name: ap}}``; ``max_dets`` is raised
    from COCO's 100 because SVIA frames hold up to ~70 objects and evaluation keeps every
    detection above a 0.001 score.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, gts, dets = [], [], []
    for i, r in enumerate(results, start=1):
        images.append({"id": i, "width": 1, "height": 1})
        for b, c in zip(xyxy_to_xywh(r.gt_boxes), r.gt_labels, strict=True):
            gts.append({"id": len(gts) + 1, "image_id": i, "category_id": int(c) + 1,
                        "bbox": b.tolist(), "area": float(b[2] * b[3]), "iscrowd": 0})
        for b, s, c in zip(xyxy_to_xywh(r.boxes), r.scores, r.labels, strict=True):
            dets.append({"image_id": i, "category_id": int(c) + 1, "bbox": b.tolist(),
                         "score": float(s)})
    if not dets:
        return {"map50_95": 0.0, "map50": 0.0,
                "per_class_ap50": {n: 0.0 for n in class_names}}
    categories = [{"id": k + 1, "name": n} for k, n in enumerate(class_names)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": gts, "categories": categories}
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [max_dets // 10, max_dets // 2, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"]  # [iou, recall, class, area, maxdet]
    per_class = {}
    for k, name in enumerate(class_names):
        p = precision[0, :, k, 0, -1]
        per_class[name] = float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")
    return {"map50_95": float(ev.stats[0]), "map50": float(ev.stats[1]),
            "per_class_ap50": per_class}
