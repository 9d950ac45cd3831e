"""Does a second look at each detection lift AP50? A crop classifier that rescores a detector.

Faster R-CNN beats the one-stage models on S_0002 (docs/training.md) by classifying each candidate
box a second time, with a background class. This experiment tests the cheapest form of that second
look on top of a trained one-stage detector, without touching it:

1. run the detector (score >= ``--min-score``) on the fold's training frames; each candidate is a
   positive (its ground-truth class) when it overlaps a box with IoU >= 0.5, background when its
   best IoU is < 0.3, and left out in between; the ground-truth boxes, jittered, add positives;
2. cut a square crop around each candidate (``--context`` times its longer side, resampled to
   ``--crop`` px with torchvision's ``roi_align``) and train a small CNN on
   background / class 1 / class 2 with cross-entropy (flips and 90-degree turns as augmentation);
3. rescore the detections of the validation and test frames: ``score^(1-w) * (1 - p_bg)^w``; pick
   ``w`` on the validation video and report AP50 on the test video for every ``w``.

    python scripts/rescore_experiment.py --weights runs/exp-f2/active-i/fold2/best.pt \\
        --data ../shared/data/svia-sample --split runs/exp-f2/split.json --fold 2

Prints a table (and writes ``--out`` JSON): AP50 per class at each ``w`` on validation and test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torchvision.ops import box_iou, roi_align

from active.data.classes import DEFAULT_CLASSES
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan, apply_fold
from active.evaluation.ap import ImageResult, evaluate_ap
from active.inference.postprocess import PostProcessConfig
from active.training.checkpoint import load_model
from active.training.engine import predict_records
from active.training.loss import LossConfig
from active.training.trainer import fitness

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


class CropNet(nn.Module):
    """A small CNN over a crop: background + one logit per class."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.SiLU())

        self.features = nn.Sequential(block(3, width, 1), block(width, width, 2),
                                      block(width, 2 * width, 1), block(2 * width, 2 * width, 2),
                                      block(2 * width, 4 * width, 2),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def crops(image: np.ndarray, boxes: np.ndarray, size: int, context: float) -> torch.Tensor:
    """(N, 3, size, size) crops, square, ``context`` x the box's longer side, centred on it."""
    img = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0
    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    centre = (b[:, :2] + b[:, 2:]) / 2
    half = context * (b[:, 2:] - b[:, :2]).amax(1, keepdim=True) / 2
    rois = torch.cat([torch.zeros(len(b), 1), centre - half, centre + half], 1)
    return roi_align(img, rois, (size, size), 1.0, 2, aligned=True)


def candidate_set(results: list[ImageResult], images: list[np.ndarray], args, rng
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops and labels (0 background, c + 1 class c) from detections and jittered truth."""
    xs, ys = [], []
    for res, image in zip(results, images, strict=True):
        keep = res.scores >= args.min_score
        det = res.boxes[keep]
        gt = res.gt_boxes.astype(np.float32)
        labels = np.full(len(det), -1)
        if len(gt) and len(det):
            iou = box_iou(torch.from_numpy(det), torch.from_numpy(gt)).numpy()
            best, arg = iou.max(1), iou.argmax(1)
            labels[best >= 0.5] = res.gt_labels[arg[best >= 0.5]] + 1
            labels[best < 0.3] = 0
        elif len(det):
            labels[:] = 0
        wh = gt[:, 2:] - gt[:, :2]
        jit = [gt + rng.normal(0, 0.1, gt.shape) * np.concatenate([wh, wh], 1)
               for _ in range(args.jitter)]
        boxes = np.concatenate([det[labels >= 0], *jit]) if len(gt) else det[labels >= 0]
        lab = np.concatenate([labels[labels >= 0],
                              *[res.gt_labels + 1] * (args.jitter if len(gt) else 0)])
        if len(boxes):
            xs.append(crops(image, boxes, args.crop, args.context))
            ys.append(torch.as_tensor(lab, dtype=torch.long))
    return torch.cat(xs), torch.cat(ys)


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(3)
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(2)
    k = int(torch.randint(0, 4, (1,), generator=gen))
    gain = 1 + 0.2 * (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5)
    return torch.rot90(x, k, (2, 3)) * gain


def train_crop_net(x: torch.Tensor, y: torch.Tensor, num_classes: int, args) -> CropNet:
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    net = CropNet(num_classes)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    steps = args.epochs * ((len(x) + args.batch - 1) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    counts = torch.bincount(y, minlength=num_classes + 1).float()
    weight = (counts.sum() / counts.clamp(min=1)).sqrt()  # soften the class imbalance
    loss_fn = nn.CrossEntropyLoss(weight=weight / weight.mean())
    net.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), args.batch):
            idx = order[i:i + args.batch]
            loss = loss_fn(net(augment(x[idx], gen)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"  crop net epoch {epoch + 1}/{args.epochs}: loss {total / len(x):.4f}",
              flush=True)
    return net.eval()


@torch.no_grad()
def background_prob(net: CropNet, results: list[ImageResult], images: list[np.ndarray],
                    args) -> list[np.ndarray]:
    out = []
    for res, image in zip(results, images, strict=True):
        if len(res.boxes) == 0:
            out.append(np.zeros(0))
            continue
        x = crops(image, res.boxes, args.crop, args.context)
        p = torch.cat([net(x[i:i + 1024]).softmax(1) for i in range(0, len(x), 1024)])
        out.append(p[:, 0].numpy())
    return out


def rescored(results: list[ImageResult], p_bg: list[np.ndarray], w: float) -> list[ImageResult]:
    return [ImageResult(r.gt_boxes, r.gt_labels, r.boxes,
                        r.scores ** (1 - w) * np.clip(1 - p, 1e-6, 1) ** w, r.labels)
            for r, p in zip(results, p_bg, strict=True)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--fold", type=int, default=0)
    ap.add_argument("--tta", action="store_true", help="flip TTA for the detections")
    ap.add_argument("--no-merge", action="store_true", help="plain DIoU-NMS (no box merging)")
    ap.add_argument("--min-score", type=float, default=0.01,
                    help="detections used as training candidates")
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--context", type=float, default=2.0)
    ap.add_argument("--jitter", type=int, default=2, help="jittered copies of each true box")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="JSON of the numbers")
    args = ap.parse_args(argv)

    t0 = time.time()
    dev = torch.device("cpu")
    model, ckpt = load_model(args.weights, dev)
    records = load_dataset(args.data, "auto", DEFAULT_CLASSES)
    parts = apply_fold(records, SplitPlan.load(args.split).folds[args.fold], Path(args.split))
    coder = LossConfig.from_dict(ckpt.get("loss_config") or {}).coder()
    cfg = PostProcessConfig.for_evaluation(merge=not args.no_merge)
    size = tuple(model.config.imgsz)
    names = model.class_names
    dets = {p: predict_records(model, parts[p], size, coder, cfg, dev, tta=args.tta)
            for p in ("train", "val", "test") if parts[p]}
    images = {p: [r.image for r in parts[p]] for p in dets}
    print(f"detections in {time.time() - t0:.0f} s", flush=True)
    rng = np.random.default_rng(args.seed)
    x, y = candidate_set(dets["train"], images["train"], args, rng)
    print(f"{len(y)} training crops; per label (0 = background): "
          f"{torch.bincount(y).tolist()}", flush=True)
    net = train_crop_net(x, y, len(names), args)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for part in ("val", "test"):
        if part not in dets:
            continue
        p_bg = background_prob(net, dets[part], images[part], args)
        table[part] = {str(w): {n: c.ap for n, c in
                                evaluate_ap(rescored(dets[part], p_bg, w), names).items()}
                       for w in WEIGHTS}
    print(f"\nAP50 (%) after rescoring, fold {args.fold}, {'TTA' if args.tta else 'no TTA'}, "
          f"{'plain NMS' if args.no_merge else 'merged'}; w = 0 is the detector alone")
    print("| w | " + " | ".join(f"{p} {n}" for p in table for n in names) + " |")
    print("|---|" + "---|" * (len(table) * len(names)))
    for w in WEIGHTS:
        cells = [table[p][str(w)][n] for p in table for n in names]
        print(f"| {w} | " + " | ".join("n/a" if np.isnan(c) else f"{100 * c:.1f}"
                                       for c in cells) + " |")
    if "val" in table:
        p_bg = background_prob(net, dets["val"], images["val"], args)
        pick = max(WEIGHTS, key=lambda w: fitness(
            evaluate_ap(rescored(dets["val"], p_bg, w), names), "weighted"))
        print(f"w picked on validation (AP50 weighted by boxes): {pick}")
    print(f"total {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "ap50": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
