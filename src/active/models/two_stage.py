"""ACTIVE with a second stage: the one-stage detector proposes, an RoI head on its own stride-8
features takes a second look at each proposal (not in the paper; ``model.second_stage: true``).

Why: on the held-out video S_0002 every one-stage model here (ACTIVE-I, YOLOv3/v4, YOLOv8n) takes
small dark dots for sperm heads, and Faster R-CNN, trained with the same recipe, does not
(docs/comparison.md). Its difference is a second stage that classifies RoIAligned features of each
candidate, learned jointly with the backbone. This module gives ACTIVE that stage and keeps the
rest: the one-stage head, its loss and its anchors are unchanged and act as the proposal network.

- Proposals: the first stage's decoded boxes, scored ``objectness * best class``, the top
  :data:`PRE_NMS` per image, class-agnostic IoU-NMS at :data:`PROPOSAL_IOU`, the best
  :data:`POST_NMS`; in training computed without gradient (as an RPN's proposals are).
- The RoI head is torchvision's :class:`~torchvision.models.detection.roi_heads.RoIHeads`
  (proposal sampling with the ground truth added, RoIAlign, Fast R-CNN losses) over a 3x3 conv
  on P3: a 7x7 RoIAlign, two 256-wide fully connected layers, a softmax over background and the
  classes, and a box regression per class. With ``model.roi_context`` > 1 it also pools a box
  that many times the proposal's size around the same centre (:class:`ContextRoIPool`) and
  reads both: a ~16 px head fills two P3 cells, and a sperm's tail, which a dark round dot
  lacks, lies outside its box.
- Detections: every proposal becomes one candidate row (the box of its most probable class, an
  objectness of 1, the softmax probability of each class), then the usual one-class-per-box
  thresholding, DIoU-NMS and merging of :mod:`active.models.postprocess`, so the second
  stage's probability is the score. Flip TTA fuses these rows like any other model's.

The model is not exported to ONNX (RoIAlign and the data-dependent proposal count would need a
graph of their own); it runs with the torch backend.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn
from torchvision.ops import clip_boxes_to_image, nms

from active.models.coder import BoxCoder, decode_outputs
from active.models.detector import Detector
from active.models.layers import ConvBNAct
from active.models.postprocess import (
    Detections,
    PostProcessConfig,
    candidates,
    finish_detections,
)
from active.models.torchvision_models import targets_to_torchvision

PRE_NMS = 1000  # first-stage candidates per image that enter the proposal NMS
POST_NMS = 300  # proposals per image after it (the sample holds up to ~90 objects per frame)
PROPOSAL_IOU = 0.7  # the IoU of the proposal NMS (Faster R-CNN's RPN value)
ROI_WIDTH = 64  # channels of the RoI features (a 3x3 conv on P3)
ROI_SIZE = 7  # RoIAlign output side
HEAD_WIDTH = 256  # the two fully connected layers
ROIS_PER_IMAGE = 256  # proposals sampled per training image
POSITIVE_FRACTION = 0.25  # of them at most this share positive (IoU >= 0.5 with a true box)


def proposals_from(decoded: Tensor, size: tuple[int, int]) -> tuple[list[Tensor], list[Tensor]]:
    """First-stage rows ``(B, N, 5 + nc)`` -> per image ``(P, 4)`` proposal boxes (clipped to
    ``size`` = (H, W)) and their first-stage scores, best first."""
    scores = decoded[..., 4] * decoded[..., 5:].amax(-1)
    boxes_out, scores_out = [], []
    for rows, s in zip(decoded, scores, strict=True):
        top = s.topk(min(PRE_NMS, len(s))).indices
        boxes = clip_boxes_to_image(rows[top, :4], size)
        wide = (boxes[:, 2] - boxes[:, 0] > 1e-2) & (boxes[:, 3] - boxes[:, 1] > 1e-2)
        top, boxes = top[wide], boxes[wide]
        keep = nms(boxes, s[top], PROPOSAL_IOU)[:POST_NMS]  # class-agnostic, as an RPN
        boxes_out.append(boxes[keep])
        scores_out.append(s[top[keep]])
    return boxes_out, scores_out


def widen_boxes(boxes: Tensor, factor: float) -> Tensor:
    """``(N, 4)`` xyxy boxes scaled by ``factor`` about their centres (not clipped: RoIAlign
    reads zeros outside the map)."""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (factor / 2)
    return torch.cat([centre - half, centre + half], 1)


class ContextRoIPool(nn.Module):
    """An RoI pooler (torchvision's call signature ``(features, boxes, image_shapes)``) that
    returns the pooled proposal and, stacked on the channels, the pooled box ``factor`` times
    its size around the same centre: ``(R, 2C, S, S)``. Not in torchvision, hence written here."""

    def __init__(self, pool: nn.Module, factor: float) -> None:
        super().__init__()
        self.pool, self.factor = pool, float(factor)

    def forward(self, features: dict[str, Tensor], boxes: list[Tensor],
                image_shapes: list[tuple[int, int]]) -> Tensor:
        wide = [widen_boxes(b, self.factor) for b in boxes]
        return torch.cat([self.pool(features, boxes, image_shapes),
                          self.pool(features, wide, image_shapes)], 1)


class TwoStageDetector(Detector):
    """A :class:`~active.models.detector.Detector` whose detections come from a second stage.

    ``forward(x)`` in eval mode returns the first stage's raw outputs (as a Detector);
    ``forward(x, targets)`` in training mode returns ``(raw, roi_losses)`` with the second
    stage's ``loss_classifier`` and ``loss_box_reg`` (:class:`TwoStageCriterion` adds the
    one-stage loss). :meth:`detect` and :meth:`candidate_rows` are the external-model interface
    the evaluator, the predictor and flip TTA use (``returns_detections``).

    ``coder`` must be the box coder the first stage trains with (``LossConfig.coder()``); the
    trainer and :func:`~active.models.checkpoint.load_model` set it.
    """

    returns_detections = True

    def __init__(self, *args, coder: BoxCoder | None = None, **kwargs) -> None:
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
        from torchvision.models.detection.roi_heads import RoIHeads
        from torchvision.ops import MultiScaleRoIAlign

        super().__init__(*args, **kwargs)
        self.coder = coder or BoxCoder()
        self.first_stage_weight = 0.0  # rows' objectness = first-stage score ** this
        c3 = self.neck.out_channels[0]
        self.roi_conv = ConvBNAct(c3, ROI_WIDTH, 3, act=self.config.act if self.config else "silu")
        pool: nn.Module = MultiScaleRoIAlign(["p3"], ROI_SIZE, sampling_ratio=2)
        pools = 1  # 7x7 maps per proposal that the first FC layer reads
        if self.config and self.config.roi_context != 1.0:
            pool, pools = ContextRoIPool(pool, self.config.roi_context), 2
        self.roi_heads = RoIHeads(
            pool,
            TwoMLPHead(pools * ROI_WIDTH * ROI_SIZE**2, HEAD_WIDTH),
            FastRCNNPredictor(HEAD_WIDTH, self.num_classes + 1),
            fg_iou_thresh=0.5, bg_iou_thresh=0.5, batch_size_per_image=ROIS_PER_IMAGE,
            positive_fraction=POSITIVE_FRACTION, bbox_reg_weights=None, score_thresh=0.0,
            nms_thresh=1.0, detections_per_img=POST_NMS)

    def forward(self, x: Tensor, targets: Tensor | None = None):  # type: ignore[override]
        feats = self.neck(self.backbone(x))
        raw = self.head(feats)
        if not self.training:
            return raw
        if targets is None:
            raise ValueError("training the second stage needs targets")
        size = (int(x.shape[-2]), int(x.shape[-1]))
        with torch.no_grad():
            decoded = decode_outputs([r.detach().float() for r in raw], self.anchors,
                                     self.strides, self.coder)
            proposals, _ = proposals_from(decoded, size)
        features = OrderedDict(p3=self.roi_conv(feats[0]))
        _, losses = self.roi_heads(features, proposals, [size] * len(x),
                                   targets_to_torchvision(targets, len(x)))
        return raw, losses

    @torch.no_grad()
    def candidate_rows(self, x: Tensor) -> list[Tensor]:
        """One ``(P, 5 + nc)`` row per proposal, in the layout of
        :func:`~active.models.coder.decode_outputs`: the box the second stage regresses for the
        proposal's most probable class (pixel xyxy in ``x``, clipped), as objectness the
        proposal's first-stage score to the power ``first_stage_weight`` (0, the default: 1,
        the second stage alone scores), and the softmax probability of each class."""
        was_training = self.training
        self.eval()
        try:
            feats = self.neck(self.backbone(x))
            raw = self.head(feats)
            size = (int(x.shape[-2]), int(x.shape[-1]))
            decoded = decode_outputs([r.float() for r in raw], self.anchors, self.strides,
                                     self.coder)
            proposals, first = proposals_from(decoded, size)
            heads = self.roi_heads
            features = OrderedDict(p3=self.roi_conv(feats[0]))
            pooled = heads.box_roi_pool(features, proposals, [size] * len(x))
            logits, deltas = heads.box_predictor(heads.box_head(pooled))
            per_class = heads.box_coder.decode(deltas.float(), proposals)  # (P, nc + 1, 4)
            probs = torch.softmax(logits.float(), -1)
            out = []
            sizes = [len(p) for p in proposals]
            for boxes, prob, s1 in zip(per_class.split(sizes), probs.split(sizes), first,
                                       strict=True):
                fg = prob[:, 1:]
                best = fg.argmax(1) + 1
                boxes = clip_boxes_to_image(boxes[torch.arange(len(boxes)), best], size)
                obj = s1.float()[:, None] ** self.first_stage_weight
                out.append(torch.cat([boxes, obj, fg], 1))
            return out
        finally:
            self.train(was_training)

    @torch.no_grad()
    def detect(self, x: Tensor, cfg: PostProcessConfig) -> list[Detections]:
        """Detections in input pixels: the second stage's rows through ``cfg``'s thresholds,
        NMS and merging."""
        return [finish_detections(*candidates(rows, cfg)[:3], cfg)
                for rows in self.candidate_rows(x)]


class TwoStageCriterion(nn.Module):
    """The one-stage loss plus the second stage's two losses, the latter scaled like the former
    (times the batch size when the one-stage loss is): ``forward((raw, roi_losses), targets)``.
    ``takes_targets``: the trainer passes the targets to the model's forward too."""

    takes_targets = True

    def __init__(self, yolo: nn.Module, gain: float = 1.0) -> None:
        super().__init__()
        self.yolo = yolo
        self.gain = float(gain)

    def forward(self, outputs: tuple[list[Tensor], dict[str, Tensor]], targets: Tensor
                ) -> tuple[Tensor, dict[str, Tensor]]:
        raw, roi = outputs
        total, parts = self.yolo(raw, targets)
        batch = raw[0].shape[0] if self.yolo.cfg.scale_by_batch else 1
        cls = self.gain * roi["loss_classifier"].float()
        box = self.gain * roi["loss_box_reg"].float()
        parts = {**parts, "roi_cls": cls.detach(), "roi_box": box.detach()}
        return total + (cls + box) * batch, parts
