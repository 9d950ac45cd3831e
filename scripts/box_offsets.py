"""Where do the annotated boxes sit relative to the objects, and where does a model put its boxes?

Prints three tables (results/logs/2026-11-30-training-log.md, "Box centres: the annotation sits
~0.7 px left of the objects"):

1. the darkness-weighted centroid of each annotated sperm head minus its box centre, per video
   (the image says where the object is, independent of any model);
2. a model's box centres minus the annotated ones, on the frames as they are and mirrored
   left-right / up-down (boxes mapped back): an offset that stays the same in every view comes
   from the data, one that flips sign with the view from the network;
3. AP50 and COCO mAP50:95 of the model on each video with its boxes as they are and moved by the
   mean offset measured on a calibration video (a training video of the model, never the one it
   is scored on).

    python scripts/box_offsets.py --weights src/active/weights/active-i-n-svia.pt \\
        --data ../shared/data/svia-sample --calib S_0005 --videos S_0004 S_0001
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import cv2
import numpy as np
import torch
from torchvision.ops import box_iou

from active.data.ap import ImageResult, evaluate_ap
from active.data.classes import DEFAULT_CLASSES
from active.data.dataset import load_dataset
from active.data.record import FrameRecord
from active.data.transforms import flip
from active.evaluation.coco_eval import coco_evaluate
from active.models.checkpoint import load_model
from active.models.postprocess import PostProcessConfig
from active.models.predict import predict_batch
from active.training.loss import LossConfig

SPERM = 0
NO_BOXES = np.zeros((0, 4), dtype=np.float32)


def centroid_offsets(records: list[FrameRecord], margin: int = 4) -> np.ndarray:
    """(N, 2): darkness-weighted centroid minus box centre for every sperm box whose box plus
    ``margin`` px lies inside the frame (darkness = how far a pixel is below the patch median)."""
    out = []
    for rec in records:
        grey = cv2.cvtColor(rec.image, cv2.COLOR_RGB2GRAY).astype(np.float64)
        h, w = grey.shape
        for (x0, y0, x1, y1), label in zip(rec.boxes, rec.labels, strict=True):
            if label != SPERM:
                continue
            c0, r0 = int(np.floor(x0)) - margin, int(np.floor(y0)) - margin
            c1, r1 = int(np.ceil(x1)) + margin, int(np.ceil(y1)) + margin
            if c0 < 0 or r0 < 0 or c1 > w or r1 > h:
                continue
            patch = grey[r0:r1, c0:c1]
            weight = np.clip(np.median(patch) - patch, 0, None)
            if weight.sum() <= 0:
                continue
            ys, xs = np.mgrid[r0:r1, c0:c1] + 0.5  # pixel centres, 0-based exclusive convention
            out.append(((weight * xs).sum() / weight.sum() - (x0 + x1) / 2,
                        (weight * ys).sum() / weight.sum() - (y0 + y1) / 2))
    return np.asarray(out).reshape(-1, 2)


def predict(model, ckpt, records: list[FrameRecord], cfg: PostProcessConfig, view: str = "none"
            ) -> list[ImageResult]:
    """Detections on ``records`` (mirrored as ``view`` says, boxes mapped back)."""
    coder = LossConfig.from_dict(ckpt.get("loss_config") or {}).coder()
    size = tuple(model.config.imgsz)
    results = []
    for start in range(0, len(records), 8):
        chunk = records[start:start + 8]
        images = [r.image for r in chunk]
        if view != "none":  # mirror the frames (transforms.flip), and the boxes back below
            images = [np.ascontiguousarray(flip(im, NO_BOXES, view == "lr")[0]) for im in images]
        for rec, im, det in zip(chunk, images,
                                predict_batch(model, images, size, coder, cfg), strict=True):
            boxes = det.boxes.numpy()
            if view != "none":
                boxes = flip(im, boxes, view == "lr")[1]
            results.append(ImageResult(rec.boxes, rec.labels, boxes, det.scores.numpy(),
                                       det.classes.numpy()))
    return results


def model_offsets(results: list[ImageResult], min_iou: float = 0.3) -> tuple[np.ndarray, float]:
    """(N, 2) predicted minus annotated centre of each sperm box matched at IoU >= ``min_iou``
    (its best detection), and the median IoU of those matches."""
    deltas, ious = [], []
    for r in results:
        gt = torch.as_tensor(r.gt_boxes[r.gt_labels == SPERM], dtype=torch.float32)
        det = torch.as_tensor(r.boxes[r.labels == SPERM], dtype=torch.float32)
        if len(gt) == 0 or len(det) == 0:
            continue
        best, idx = box_iou(gt, det).max(1)
        ok = best >= min_iou
        g, d = gt[ok], det[idx[ok]]
        deltas.append(((d[:, :2] + d[:, 2:]) / 2 - (g[:, :2] + g[:, 2:]) / 2).numpy())
        ious.append(best[ok].numpy())
    return np.concatenate(deltas), float(np.median(np.concatenate(ious)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", default="../shared/data/svia-sample")
    ap.add_argument("--calib", required=True, help="video the shift is measured on")
    ap.add_argument("--videos", nargs="+", required=True, help="videos to score")
    args = ap.parse_args()
    records = load_dataset(args.data, "auto", DEFAULT_CLASSES)
    by_video: dict[str, list[FrameRecord]] = {}
    for rec in records:
        by_video.setdefault(rec.video_id, []).append(rec)
    model, ckpt = load_model(args.weights, "cpu")
    model.eval()
    names = model.class_names

    print("1. annotated sperm boxes: darkness-weighted centroid minus box centre (px)\n")
    print("| video | boxes | dx mean | dy mean |\n|---|---|---|---|")
    for video in sorted(by_video):
        off = centroid_offsets(by_video[video])
        print(f"| {video} | {len(off)} | {off[:, 0].mean():+.2f} | {off[:, 1].mean():+.2f} |")

    plain = PostProcessConfig(score_threshold=0.25, merge=False)
    print(f"\n2. {args.weights}: predicted minus annotated centre (px), plain NMS, score >= 0.25\n")
    print("| video | view | matched | median IoU | dx mean | dy mean |\n|---|---|---|---|---|---|")
    shift = None
    for video in [args.calib, *args.videos]:
        for view in ("none", "lr", "ud"):
            off, iou = model_offsets(predict(model, ckpt, by_video[video], plain, view))
            if video == args.calib and view == "none":
                shift = off.mean(0)
            print(f"| {video} | {view} | {len(off)} | {iou:.3f} | {off[:, 0].mean():+.2f} | "
                  f"{off[:, 1].mean():+.2f} |")

    assert shift is not None
    print(f"\n3. sperm AP50 / COCO mAP50:95 with the boxes moved by the {args.calib} offset "
          f"({-shift[0]:+.2f}, {-shift[1]:+.2f}) px\n")
    print("| video | post-processing | as predicted | moved |\n|---|---|---|---|")
    move = np.array([*shift, *shift], dtype=np.float32)
    for video in args.videos:
        for merge in (False, True):
            res = predict(model, ckpt, by_video[video],
                          PostProcessConfig.for_evaluation(merge=merge))
            cells = []
            for r in (res, [replace(x, boxes=x.boxes - move) for x in res]):
                cells.append(f"{evaluate_ap(r, names)['sperm'].ap:.4f} / "
                             f"{coco_evaluate(r, names)['map50_95']:.4f}")
            print(f"| {video} | {'merged' if merge else 'plain'} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
