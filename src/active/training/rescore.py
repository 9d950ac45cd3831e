"""Train a :class:`~active.models.rescore.Rescorer` on a trained detector's candidates.

1. The detector runs on the split's training frames (score >= ``min_score``, the evaluation
   post-processing otherwise). A candidate overlapping a true box with IoU >= ``pos_iou`` is a
   positive of that box's class; one whose best IoU is < ``neg_iou`` is background; the ones in
   between are left out. ``jitter`` copies of every true box (centre and size moved by ~10 %) add
   positives the detector may have ranked low.
2. :class:`~active.models.rescore.CropNet` learns background / classes from the crops with
   cross-entropy (class weights: the square root of the inverse frequency), Adam with a one-cycle
   schedule, flips, 90-degree turns and a brightness gain as augmentation.
3. The score mixing weight is picked on the validation frames from ``weights`` (0 keeps the
   detector's ranking, so a rescorer never makes validation worse), by the AP50 weighted by each
   class's boxes (:func:`active.training.trainer.fitness`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from active.data.ap import ClassAP, ImageResult, evaluate_ap
from active.data.record import FrameRecord
from active.models.rescore import CropNet, Rescorer, crop_boxes, mixed_results


@dataclass
class RescoreConfig:
    crop: int = 32  # crop side in pixels
    context: float = 2.0  # crop side / the box's longer side
    width: int = 16  # channels of the crop net's first layer
    epochs: int = 12
    batch: int = 256
    lr: float = 2e-3
    jitter: int = 2  # jittered copies of each true box added as positives
    min_score: float = 0.01  # detections that become training candidates
    pos_iou: float = 0.5
    neg_iou: float = 0.3
    weights: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # mixing weights tried on val
    seed: int = 0


def label_candidates(results: Sequence[ImageResult], images: Sequence[np.ndarray],
                     cfg: RescoreConfig, rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    """Crops and labels (0 background, c + 1 class c) from detections and jittered truth."""
    from torchvision.ops import box_iou

    xs, ys = [], []
    for res, image in zip(results, images, strict=True):
        det = res.boxes[res.scores >= cfg.min_score].astype(np.float32)
        gt = res.gt_boxes.astype(np.float32).reshape(-1, 4)
        labels = np.full(len(det), -1)
        if len(gt) and len(det):
            iou = box_iou(torch.from_numpy(det), torch.from_numpy(gt)).numpy()
            best, arg = iou.max(1), iou.argmax(1)
            labels[best >= cfg.pos_iou] = res.gt_labels[arg[best >= cfg.pos_iou]] + 1
            labels[best < cfg.neg_iou] = 0
        elif len(det):
            labels[:] = 0
        wh = np.tile(gt[:, 2:] - gt[:, :2], 2)
        jittered = [gt + rng.normal(0, 0.1, gt.shape) * wh for _ in range(cfg.jitter)]
        boxes = np.concatenate([det[labels >= 0], *jittered]).astype(np.float32)
        lab = np.concatenate([labels[labels >= 0], *[res.gt_labels + 1] * cfg.jitter])
        if len(boxes):
            xs.append(crop_boxes(image, boxes, cfg.crop, cfg.context))
            ys.append(torch.as_tensor(lab, dtype=torch.long))
    if not xs:
        raise ValueError("no training candidates: the detector found nothing and the frames "
                         "hold no boxes")
    return torch.cat(xs), torch.cat(ys)


def _augment(x: Tensor, gen: torch.Generator) -> Tensor:
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(3)
    if torch.rand(1, generator=gen) < 0.5:
        x = x.flip(2)
    k = int(torch.randint(0, 4, (1,), generator=gen))
    gain = 1 + 0.2 * (torch.rand(len(x), 1, 1, 1, generator=gen) - 0.5)
    return torch.rot90(x, k, (2, 3)) * gain


def train_crop_net(x: Tensor, y: Tensor, num_classes: int, cfg: RescoreConfig,
                   log: Callable[[str], None] = print) -> CropNet:
    """Fit a CropNet to crops ``x`` with labels ``y`` (seeded, deterministic on the CPU)."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    net = CropNet(num_classes, cfg.width)
    steps = cfg.epochs * ((len(x) + cfg.batch - 1) // cfg.batch)
    opt = torch.optim.Adam(net.parameters(), cfg.lr / 2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=max(steps, 1))
    counts = torch.bincount(y, minlength=num_classes + 1).float()
    weight = (counts.sum() / counts.clamp(min=1)).sqrt()
    loss_fn = nn.CrossEntropyLoss(weight=weight / weight.mean())
    net.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for i in range(0, len(x), cfg.batch):
            idx = order[i:i + cfg.batch]
            loss = loss_fn(net(_augment(x[idx], gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        log(f"crop net epoch {epoch + 1}/{cfg.epochs}: loss {total / len(x):.4f}")
    return net.eval()


def weight_table(rescorer: Rescorer, results: Sequence[ImageResult],
                 images: Sequence[np.ndarray], weights: Sequence[float]
                 ) -> dict[float, dict[str, ClassAP]]:
    """AP50 per class after rescoring with each mixing weight (one crop-net pass)."""
    p = rescorer.background_probs(results, images)
    return {w: evaluate_ap(mixed_results(results, p, w), rescorer.class_names) for w in weights}


def fit_rescorer(weights: str | Path, data: str | Path, split: str | Path, fold: int = 0,
                 cfg: RescoreConfig | None = None, tta: bool = False, merge: bool = True,
                 device: str = "auto", log: Callable[[str], None] = print,
                 records: Sequence[FrameRecord] | None = None) -> tuple[Rescorer, dict[str, Any]]:
    """Train a rescorer for detector ``weights`` on fold ``fold`` of ``split``; returns it (the
    mixing weight picked on the fold's validation frames, or 0.5 without any) and a summary."""
    from active.data.classes import DEFAULT_CLASSES
    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan, apply_fold
    from active.models.checkpoint import checkpoint_coder, load_model
    from active.models.postprocess_config import PostProcessConfig
    from active.models.predict import predict_records
    from active.training.trainer import fitness, resolve_device

    cfg = cfg or RescoreConfig()
    dev = resolve_device(device)
    model, ckpt = load_model(weights, dev)
    records = list(records) if records is not None else load_dataset(data, "auto",
                                                                     DEFAULT_CLASSES)
    parts = apply_fold(records, SplitPlan.load(split).folds[fold], Path(split))
    if not parts["train"]:
        raise ValueError(f"{split}: fold {fold} has no training frames")
    coder = checkpoint_coder(ckpt)
    post = PostProcessConfig.for_evaluation(merge=merge)
    size = tuple(model.config.imgsz)
    names = tuple(model.class_names)
    train = predict_records(model, parts["train"], size, coder, post, dev, tta=tta)
    x, y = label_candidates(train, [r.image for r in parts["train"]], cfg,
                            np.random.default_rng(cfg.seed))
    counts = torch.bincount(y, minlength=len(names) + 1).tolist()
    log(f"{len(y)} training crops: background {counts[0]}, "
        + ", ".join(f"{n} {c}" for n, c in zip(names, counts[1:], strict=True)))
    net = train_crop_net(x, y, len(names), cfg, log)
    rescorer = Rescorer(net, names, cfg.crop, cfg.context, 0.5,
                        {"detector": str(weights), "split": str(split), "fold": fold,
                         "tta": tta, "merge": merge, "crops": counts})
    summary: dict[str, Any] = {"crops": counts}
    if parts["val"]:
        val = predict_records(model, parts["val"], size, coder, post, dev, tta=tta)
        table = weight_table(rescorer, val, [r.image for r in parts["val"]], cfg.weights)
        best = max(cfg.weights, key=lambda w: (fitness(table[w], "weighted"), -w))
        rescorer.weight = best
        summary["val_ap50"] = {str(w): {n: c.ap for n, c in t.items()} for w, t in table.items()}
    summary["weight"] = rescorer.weight
    rescorer.meta["weight_from"] = "validation" if parts["val"] else "default (no validation)"
    return rescorer, summary

