"""Ultralytics YOLOv8n / YOLO11n, the detector a user would pick today, as an optional baseline
behind the interface of the other external models (``returns_detections``): trained by this
project's trainer on the same data, augmentation, epochs and optimiser as every other model, and
scored by this project's evaluator on one-class-per-box detections.

Install the extra by hand: ``pip install ultralytics`` (not a dependency: it pulls the
non-headless OpenCV, which shares the ``cv2`` folder with ``opencv-python-headless``; ``pip
install --no-deps ultralytics ultralytics-thop`` avoids that).

What is Ultralytics' own: the network, built from its YAML (``yolov8n.yaml`` / ``yolo11n.yaml``)
for our classes, without any weights, and its loss (task-aligned assignment, BCE + CIoU + DFL,
its default gains box 7.5, cls 0.5, dfl 1.5). What is ours: the training loop (Ultralytics'
trainer would bring its own augmentation and schedule, which would make the comparison unequal)
and the post-processing: the best class per box, the score threshold, per-class NMS at the
evaluation's IoU (Ultralytics' validator keeps several classes per box, which inflates the rare
class's AP).

Offline: ``YOLO_OFFLINE=1`` is set before the import (no network probes); nothing here plots,
so no font is fetched; importing Ultralytics sets OpenCV's thread count to 0, which is restored.
"""

from __future__ import annotations

import os
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor, nn

from active.models.external import ExternalDetector
from active.models.postprocess import Detections, PostProcessConfig, finish_detections

ULTRALYTICS_MODELS = {"yolov8n": "yolov8n.yaml", "yolo11n": "yolo11n.yaml"}
LOSS_GAINS = SimpleNamespace(box=7.5, cls=0.5, dfl=1.5)  # Ultralytics' defaults


def _detection_model_class() -> Any:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import cv2

    threads = cv2.getNumThreads()
    try:
        from ultralytics.nn.tasks import DetectionModel, yaml_model_load
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "YOLOv8n/YOLO11n need the optional 'ultralytics' package: "
            "pip install --no-deps ultralytics ultralytics-thop"
        ) from e
    finally:
        cv2.setNumThreads(threads)
    return DetectionModel, yaml_model_load


class UltralyticsDetector(ExternalDetector):
    """An Ultralytics detection network for ``config.num_classes`` classes."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        detection_model, load_yaml = _detection_model_class()
        spec = {**load_yaml(ULTRALYTICS_MODELS[config.variant]), "nc": self.num_classes}
        self.net = detection_model(spec, verbose=False)
        self.net.args = LOSS_GAINS
        self._n_backbone = len(self.net.yaml["backbone"])
        self._criterion: Any = None

    @property
    def backbone(self) -> nn.Module:
        """The YAML's backbone layers (not registered twice: a view of ``net.model``)."""
        return nn.Sequential(*self.net.model[: self._n_backbone])

    def _loss(self, preds: Any, targets: Tensor, x: Tensor) -> dict[str, Tensor]:
        if self._criterion is None or self._criterion.device != x.device:
            from ultralytics.utils.loss import v8DetectionLoss

            self._criterion = v8DetectionLoss(self.net)
        h, w = x.shape[-2:]
        xyxy = targets[:, 2:6].float()
        scale = xyxy.new_tensor([w, h, w, h])
        xywh = torch.cat([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], 1) / scale
        batch = {"batch_idx": targets[:, 0].float(), "cls": targets[:, 1].float(),
                 "bboxes": xywh}
        parts = self._criterion.get_assigned_targets_and_loss(preds, batch)[1]
        return {"loss_box": parts[0], "loss_cls": parts[1], "loss_dfl": parts[2]}

    def forward(self, x: Tensor, targets: Tensor | None = None) -> Any:
        if self.training:
            if targets is None:
                raise ValueError("training an Ultralytics model needs targets")
            return self._loss(self.net(x), targets, x)
        return self.net(x)

    #: NMS of Ultralytics' own recipes (plain IoU), for :meth:`detect` and flip TTA alike.
    nms = "iou"

    @torch.no_grad()
    def candidate_rows(self, x: Tensor) -> list[Tensor]:
        """The network's candidates before NMS, one ``(N, 5 + nc)`` tensor per image in the rows
        of :func:`~active.models.coder.decode_outputs`: pixel xyxy (clipped to the input), an
        objectness of 1 (the network has none: its class scores are the scores), class scores.
        This is what flip TTA (:mod:`active.models.tta`) fuses."""
        from torchvision.ops import box_convert, clip_boxes_to_image

        was_training = self.training
        self.eval()
        y = self.net(x)
        self.train(was_training)
        y = y[0] if isinstance(y, tuple) else y  # (B, 4 + nc, N): xywh px, class scores
        out = []
        for p in y.float():
            boxes = clip_boxes_to_image(box_convert(p[:4].T, "cxcywh", "xyxy"),
                                        tuple(x.shape[-2:]))
            out.append(torch.cat([boxes, boxes.new_ones(len(boxes), 1), p[4:].T], 1))
        return out

    @torch.no_grad()
    def detect(self, x: Tensor, cfg: PostProcessConfig) -> list[Detections]:
        """Detections in input pixels: best class per box, score threshold, per-class NMS."""
        plain_iou = replace(cfg, nms=self.nms)
        out = []
        for rows in self.candidate_rows(x):
            scores, cls = rows[:, 5:].max(1)
            keep = scores > cfg.score_threshold
            out.append(finish_detections(rows[keep, :4], scores[keep], cls[keep], plain_iou))
        return out
