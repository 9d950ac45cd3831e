"""The common part of the models that bring their own loss and post-processing (torchvision's
Faster R-CNN and SSD, EfficientDet, Ultralytics): what the trainer, the evaluator, checkpoints
and the predictor expect of a model, written once.

A subclass sets ``self.backbone`` (frozen by freeze training) and implements ``forward(x,
targets)`` (the loss parts in training) and ``detect(x, cfg)`` (Detections in input pixels).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ExternalDetector(nn.Module):
    """Base of the external models: the config's classes, strides and anchors (kept so that
    every checkpoint has one format, although these models do not use ACTIVE's anchors), freeze
    training of ``self.backbone`` and a no-op :meth:`fuse`."""

    returns_detections = True

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.config = config
        self.class_names = tuple(config.class_names)
        self.num_classes = int(config.num_classes)
        self.strides: tuple[int, ...] = tuple(config.strides)
        self.register_buffer("anchors", torch.tensor(config.anchors, dtype=torch.float32)
                             .view(len(config.strides), -1, 2))
        self.backbone_frozen = False

    def freeze_backbone(self, frozen: bool = True) -> None:
        for p in self.backbone.parameters():
            p.requires_grad_(not frozen)
        self.backbone_frozen = frozen

    def fuse(self) -> ExternalDetector:
        return self.eval()

    def train(self, mode: bool = True) -> ExternalDetector:
        super().train(mode)
        if self.backbone_frozen:  # frozen BatchNorm statistics too
            self.backbone.eval()
        return self
