"""The paper's two-stage and single-shot baselines from torchvision's detection models: Faster
R-CNN (ResNet + FPN) and SSD (VGG-16 at scale ``paper``, SSDlite/MobileNetV3 below), built
without any downloaded weights and adapted to 10-30 px objects.

:class:`TorchvisionDetector` speaks the interface the trainer, the evaluator and the predictor
use for every model here: ``forward(images, targets)`` returns the loss parts in training,
:meth:`detect` returns :class:`~active.models.postprocess.Detections` in input pixels, and
the checkpoint holds a :class:`~active.models.variants.ModelConfig` (``variant: faster-rcnn`` or
``ssd``) that rebuilds it. What is torchvision's own: the networks, the losses (RPN + ROI heads;
SSD's multibox loss), the RPN's proposals and plain-IoU NMS (not DIoU-NMS). The final
post-processing is ours (:meth:`TorchvisionDetector.candidate_rows` stops before torchvision's):
one class per box like every other model here (torchvision keeps a box for every class above the
threshold), optional merging, and flip TTA.

Adaptations for small objects (the defaults target COCO's 32-500 px objects):

- Faster R-CNN: at scales ``paper`` (ResNet-50) and ``s`` (ResNet-18), FPN levels from stride 4
  (ResNet stages 1-4) with one anchor size per level of 8/16/32/64/128 px; at ``n`` a budget
  that trains on a CPU (:func:`_faster_rcnn_light`: the YOLO models' CSPDarknet53 at scale
  ``n`` under a 64-channel FPN over strides 8-32); no internal resize (``min_size`` /
  ``max_size`` = the input size), ordinary trainable BatchNorm (torchvision freezes it for
  pre-trained backbones; we have none).
- SSD: default boxes from 2 % to 60 % of the input side instead of 20-95 %, at the input size.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from active.models.external import ExternalDetector
from active.models.postprocess import (
    Detections,
    PostProcessConfig,
    candidates,
    finish_detections,
)

TORCHVISION_MODELS = ("faster-rcnn", "ssd")

# Backbone per scale: the paper-size models are the published ones; smaller scales fit a CPU.
_FRCNN_BACKBONE = {"paper": "resnet50", "s": "resnet18", "n": "cspdarknet53-n",
                   "tiny": "cspdarknet53-tiny"}
_SSD_BACKBONE = {"paper": "vgg16", "s": "mobilenet_v3_large", "n": "mobilenet_v3_large",
                 "tiny": "mobilenet_v3_large"}


def targets_to_torchvision(targets: Tensor, batch: int) -> list[dict[str, Tensor]]:
    """``(M, 6)`` rows ``[image, class, x0, y0, x1, y1]`` -> torchvision's per-image dicts
    (labels shifted by one: 0 is torchvision's background)."""
    out = []
    for i in range(batch):
        rows = targets[targets[:, 0] == i]
        out.append({"boxes": rows[:, 2:6].float(), "labels": rows[:, 1].long() + 1})
    return out


def _faster_rcnn(backbone_name: str, num_classes: int, imgsz: tuple[int, int]) -> nn.Module:
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    if backbone_name.startswith("cspdarknet53-"):
        return _faster_rcnn_light(backbone_name.split("-")[1], num_classes, imgsz)
    backbone = resnet_fpn_backbone(backbone_name=backbone_name, weights=None,
                                   norm_layer=nn.BatchNorm2d, trainable_layers=5,
                                   returned_layers=[1, 2, 3, 4])
    anchors = AnchorGenerator(sizes=((8,), (16,), (32,), (64,), (128,)),
                              aspect_ratios=((0.5, 1.0, 2.0),) * 5)
    return FasterRCNN(backbone, num_classes=num_classes + 1, min_size=min(imgsz),
                      max_size=max(imgsz), rpn_anchor_generator=anchors,
                      box_detections_per_img=300)


class _CSPDarknetFPN(nn.Module):
    """CSPDarknet53 at a small scale (YOLOv4's backbone and ACTIVE's branch 1, this project's own
    blocks) under torchvision's FPN, in the form torchvision's detectors read: an ordered dict
    of maps at strides 8, 16, 32 and 64 (max-pool), ``out_channels`` wide."""

    def __init__(self, scale_name: str, width: int) -> None:
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        from active.models.backbone import Branch1
        from active.models.baselines import DARKNET53_DEPTHS, DARKNET53_WIDTHS
        from active.models.layers import make_divisible, scale_depth
        from active.models.variants import SCALES

        scale = SCALES[scale_name]
        skip = 1 if scale.b1_stem_stride == 2 else 0
        self.body = Branch1([make_divisible(c * scale.width) for c in DARKNET53_WIDTHS[skip:]],
                            [scale_depth(d, scale.depth) for d in DARKNET53_DEPTHS[skip:]],
                            stem_stride=scale.b1_stem_stride)
        self.fpn = FeaturePyramidNetwork(list(self.body.out_channels), width,
                                         extra_blocks=LastLevelMaxPool())
        self.out_channels = width

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        from collections import OrderedDict

        return self.fpn(OrderedDict((str(i), f) for i, f in enumerate(self.body(x))))


_FRCNN_LIGHT_WIDTH = 64  # FPN channels of the CPU-size Faster R-CNN; box head MLP 4x this


def _faster_rcnn_light(scale_name: str, num_classes: int, imgsz: tuple[int, int]) -> nn.Module:
    """Faster R-CNN at a budget that trains on a 2-core CPU (scale ``n``, ``s``' ResNet-18 FPN
    takes ~290 s per epoch here): the scale-``n`` CSPDarknet53 the YOLO models use, a 64-channel
    FPN over strides 8-32 (+ a max-pool level), two anchor sizes per level from 12 px, and a
    256-wide box head instead of the 1024-wide one (12.8 M parameters in its first layer alone).
    torchvision's MobileNetV3 backbones were the first choice but cost 3.5x ACTIVE-I's training
    step here (depthwise convolutions at full resolution run on a slow CPU kernel)."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    width = _FRCNN_LIGHT_WIDTH
    anchors = AnchorGenerator(sizes=((12, 18), (24, 36), (48, 72), (96, 144)),
                              aspect_ratios=((0.5, 1.0, 2.0),) * 4)
    roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2"], output_size=7, sampling_ratio=2)
    head = 4 * width
    return FasterRCNN(_CSPDarknetFPN(scale_name, width), min_size=min(imgsz), max_size=max(imgsz),
                      rpn_anchor_generator=anchors, box_roi_pool=roi_pool,
                      box_head=TwoMLPHead(width * 7 * 7, head),
                      box_predictor=FastRCNNPredictor(head, num_classes + 1),
                      box_detections_per_img=300)


def _ssd(backbone_name: str, num_classes: int, imgsz: tuple[int, int]) -> nn.Module:
    from torchvision.models.detection import ssd300_vgg16, ssdlite320_mobilenet_v3_large
    from torchvision.models.detection.anchor_utils import DefaultBoxGenerator

    if backbone_name == "vgg16":
        model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=num_classes + 1)
        ratios = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    else:
        model = ssdlite320_mobilenet_v3_large(weights=None, weights_backbone=None,
                                              num_classes=num_classes + 1)
        ratios = [[2, 3] for _ in range(6)]
    n = len(ratios)
    scales = [0.02 * (0.6 / 0.02) ** (k / n) for k in range(n + 1)]  # geometric 2 % .. 60 %
    model.anchor_generator = DefaultBoxGenerator(ratios, scales=scales)
    model.transform.fixed_size = tuple(imgsz)
    model.transform.min_size = (min(imgsz),)
    model.transform.max_size = max(imgsz)
    return model


class TorchvisionDetector(ExternalDetector):
    """A torchvision detection model behind ACTIVE's model interface.

    ``forward(x)`` with ``x`` (B, 3, H, W) in [0, 1]: in training mode with ``targets`` ((M, 6)
    rows ``[image, class, x0, y0, x1, y1]`` in input pixels) the dict of loss parts; in eval mode
    the list of torchvision's per-image output dicts. :meth:`detect` gives Detections.
    """

    nms = "iou"  # the NMS kind torchvision's own post-processing uses; ours follows it

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        if config.variant == "faster-rcnn":
            self.net = _faster_rcnn(_FRCNN_BACKBONE[config.scale], self.num_classes,
                                    config.imgsz)
        elif config.variant == "ssd":
            self.net = _ssd(_SSD_BACKBONE[config.scale], self.num_classes, config.imgsz)
        else:
            raise ValueError(f"unknown torchvision model {config.variant!r}")
        self.backbone = self.net.backbone

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Any:
        images = list(x)
        if self.training:
            if targets is None:
                raise ValueError("training a torchvision model needs targets")
            return self.net(images, targets_to_torchvision(targets, len(images)))
        return self.net(images)

    @torch.no_grad()
    def candidate_rows(self, x: Tensor) -> list[Tensor]:
        """The network's candidates before NMS, one ``(N, 5 + nc)`` tensor per image in the rows
        of :func:`~active.models.coder.decode_outputs`: pixel xyxy in ``x``'s frame (clipped),
        an objectness of 1, and the softmax probability of each foreground class.

        Faster R-CNN: one row per RPN proposal, its box the second stage's box for the proposal's
        most probable foreground class (the stage regresses one box per class); SSD: one row per
        default box. This is torchvision's ``postprocess_detections`` up to its per-class split,
        thresholds and NMS, which :meth:`detect` (and flip TTA) then do as for every other model.
        """
        from torchvision.models.detection.transform import resize_boxes
        from torchvision.ops import clip_boxes_to_image

        net = self.net
        was_training = self.training
        self.eval()
        try:
            images, _ = net.transform(list(x))
            features = net.backbone(images.tensors)
            if isinstance(features, Tensor):
                features = OrderedDict([("0", features)])
            if hasattr(net, "roi_heads"):  # Faster R-CNN
                proposals, _ = net.rpn(images, features)
                heads = net.roi_heads
                pooled = heads.box_roi_pool(features, proposals, images.image_sizes)
                logits, deltas = heads.box_predictor(heads.box_head(pooled))
                per_class = heads.box_coder.decode(deltas, proposals)  # (N, nc + 1, 4)
                probs = torch.softmax(logits, -1)
                sizes = [len(p) for p in proposals]
                pairs = zip(per_class.split(sizes), probs.split(sizes), strict=True)
            else:  # SSD
                maps = list(features.values())
                head = net.head(maps)
                anchors = net.anchor_generator(images, maps)
                boxes = [net.box_coder.decode_single(r, a)
                         for r, a in zip(head["bbox_regression"], anchors, strict=True)]
                pairs = zip(boxes, torch.softmax(head["cls_logits"], -1), strict=True)
            out = []
            for (boxes, prob), size in zip(pairs, images.image_sizes, strict=True):
                fg = prob[:, 1:].float()
                if boxes.ndim == 3:
                    best = fg.argmax(1)
                    boxes = boxes[torch.arange(len(boxes), device=boxes.device), best + 1]
                boxes = clip_boxes_to_image(boxes.float(), tuple(size))
                boxes = resize_boxes(boxes, tuple(size), tuple(x.shape[-2:]))
                out.append(torch.cat([boxes, boxes.new_ones(len(boxes), 1), fg], 1))
            return out
        finally:
            self.train(was_training)

    @torch.no_grad()
    def detect(self, x: Tensor, cfg: PostProcessConfig) -> list[Detections]:
        """Detections in input pixels: best class per box (every class above the threshold with
        ``cfg.multi_label``, on the best class's box), ``cfg``'s score threshold, plain-IoU NMS
        per class, merging when ``cfg.merge``."""
        plain_iou = replace(cfg, nms=self.nms)
        return [finish_detections(*candidates(rows, plain_iou)[:3], plain_iou)
                for rows in self.candidate_rows(x)]


class TorchvisionLoss(nn.Module):
    """The criterion of a torchvision model: the sum of the loss parts its forward returned
    (each already a mean over the batch, hence ``mean_over_batch``; ``takes_targets``: the
    model's forward needs the targets)."""

    mean_over_batch = True
    takes_targets = True

    def forward(self, outputs: dict[str, Tensor], targets: Tensor
                ) -> tuple[Tensor, dict[str, Tensor]]:
        total = torch.stack([v.float() for v in outputs.values()]).sum()
        parts = {k.removeprefix("loss_"): v.detach() for k, v in outputs.items()}
        return total, parts
