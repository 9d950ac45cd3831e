"""EfficientDet-D2 (the paper's EfficientDet baseline) from the ``effdet`` package, behind the
interface of :class:`~active.models.torchvision_models.TorchvisionDetector`: ``forward(x,
targets)`` returns the loss parts in training, :meth:`detect` returns Detections in input pixels.

Install it with the optional extra: ``pip install -e .[effdet]`` (``effdet`` pulls ``timm``).

What is ``effdet``'s own: the network (EfficientNet-B2 backbone, 5 BiFPN cells of 112 channels, 3
head repeats), the anchor labeler of its training bench (``DetBenchTrain(create_labeler=True)``:
IoU >= 0.5 positives, every object forced to its best anchor) and its focal + Huber loss. Built
without downloadable weights (``pretrained_backbone=False``).

Adaptations, which are ours:

- anchors for 10-30 px objects: ``anchor_scale`` 1.5 instead of 4, so that the stride-8 level
  has 12-19 px anchors (effdet's default puts 32-50 px there);
- any input size: EfficientDet needs sides divisible by 128 (its stride-128 level), so the input
  is zero-padded at the right and bottom to the next multiple of 128 inside :meth:`forward`;
  boxes keep their coordinates (the padding is below and right of the image);
- detections are one class per anchor (its best), thresholded and then suppressed per class
  with torchvision's ``batched_nms`` at the evaluation's IoU threshold; effdet's own
  post-processing ranks anchor-class pairs (several classes per box) with a fixed IoU of 0.5.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from active.models.external import ExternalDetector
from active.models.postprocess import Detections, PostProcessConfig, finish_detections

EFFDET_MODELS = ("efficientdet-d2",)
ANCHOR_SCALE = 1.5


def _require_effdet() -> Any:
    try:
        import effdet
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "EfficientDet needs the optional 'effdet' package: pip install -e '.[effdet]'"
        ) from e
    return effdet


def _padded(n: int, multiple: int = 128) -> int:
    return -(-n // multiple) * multiple


class EfficientDetDetector(ExternalDetector):
    """EfficientDet-D2 for ``config.num_classes`` classes at input ``config.imgsz`` (H, W)."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        effdet = _require_effdet()
        from effdet.anchors import AnchorLabeler, Anchors
        from effdet.loss import DetectionLoss

        h, w = config.imgsz
        ecfg = effdet.get_efficientdet_config("efficientdet_d2")
        ecfg.num_classes = self.num_classes
        ecfg.image_size = (_padded(h), _padded(w))
        ecfg.anchor_scale = ANCHOR_SCALE
        ecfg.max_det_per_image = 300
        self.pad_hw = tuple(ecfg.image_size)
        self.net = effdet.EfficientDet(ecfg, pretrained_backbone=False)
        self.backbone = self.net.backbone
        anchors = Anchors.from_config(ecfg)
        self.register_buffer("anchor_boxes", anchors.boxes.float(), persistent=False)  # yxyx
        self.labeler = AnchorLabeler(anchors, self.num_classes, match_threshold=0.5)
        self.loss_fn = DetectionLoss(ecfg)
        self.max_points = int(ecfg.max_detection_points)

    def _pad(self, x: Tensor) -> Tensor:
        ph, pw = self.pad_hw
        if x.shape[-2] > ph or x.shape[-1] > pw:
            raise ValueError(f"input {tuple(x.shape[-2:])} is larger than the model's "
                             f"{tuple(self.config.imgsz)}")
        return F.pad(x, (0, pw - x.shape[-1], 0, ph - x.shape[-2]))

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Any:
        class_out, box_out = self.net(self._pad(x))
        if not self.training:
            return class_out, box_out
        if targets is None:
            raise ValueError("training EfficientDet needs targets")
        boxes, classes = [], []
        for i in range(x.shape[0]):
            rows = targets[targets[:, 0] == i]
            boxes.append(rows[:, [3, 2, 5, 4]].float())  # effdet's labeler wants yxyx
            classes.append(rows[:, 1].float() + 1)  # and 1-based classes
        self.labeler.anchors.boxes = self.anchor_boxes  # follow the model's device
        cls_t, box_t, num_pos = self.labeler.batch_label_anchors(boxes, classes)
        total, cls_loss, _ = self.loss_fn(class_out, box_out, cls_t, box_t, num_pos)
        return {"loss_cls": cls_loss, "loss_box": total - cls_loss}

    @torch.no_grad()
    def detect(self, x: Tensor, cfg: PostProcessConfig) -> list[Detections]:
        """Detections in input pixels: best class per anchor, top ``max_detection_points``,
        score threshold, per-class NMS at ``cfg.iou_threshold``, at most ``cfg.max_det``."""
        from effdet.anchors import decode_box_outputs
        from torchvision.ops import clip_boxes_to_image

        plain_iou = replace(cfg, nms="iou")  # their own recipes use plain-IoU NMS
        was_training = self.training
        self.eval()
        class_out, box_out = self.net(self._pad(x))
        self.train(was_training)
        b, nc = x.shape[0], self.num_classes
        logits = torch.cat([c.permute(0, 2, 3, 1).reshape(b, -1, nc) for c in class_out], 1)
        deltas = torch.cat([o.permute(0, 2, 3, 1).reshape(b, -1, 4) for o in box_out], 1)
        best, cls = logits.float().max(-1)
        k = min(self.max_points, best.shape[1])
        out = []
        for i in range(b):
            top, idx = best[i].topk(k)
            scores = top.sigmoid()
            keep = scores > cfg.score_threshold
            idx, scores = idx[keep], scores[keep]
            boxes = decode_box_outputs(deltas[i, idx].float(), self.anchor_boxes[idx],
                                       output_xyxy=True)
            boxes = clip_boxes_to_image(boxes, tuple(x.shape[-2:]))
            labels = cls[i, idx]
            out.append(finish_detections(boxes, scores, labels, plain_iou))
        return out
