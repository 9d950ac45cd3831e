"""The ACTIVE detector: backbone (DBFEN) -> neck (CCFPN) -> head, raw outputs. Building one from a
:class:`~active.models.variants.ModelConfig` is :func:`active.models.build.build_model`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from active.models.head import YoloHead
from active.models.layers import ConvBNAct
from active.models.variants import ModelConfig


class Detector(nn.Module):
    """``backbone -> neck -> head``; returns raw per-level tensors in train and eval mode alike.

    ``forward(x)`` takes ``x`` of shape ``(B, 3, H, W)``, floats in [0, 1], H and W multiples of
    32, and returns one tensor per level, strides ``self.strides`` = (8, 16, 32) in that order,
    shaped ``(B, na, H/s, W/s, 5 + nc)``: ``tx, ty, tw, th, objectness, class logits``, all raw.

    ``anchors`` ``(nl, na, 2)``: anchor (w, h) in input pixels per level, kept as a buffer so it
    travels with the state dict and the device.
    """

    anchors: Tensor

    def __init__(
        self,
        backbone: nn.Module,
        neck: nn.Module,
        head: YoloHead,
        anchors: Tensor | Sequence[Sequence[Sequence[float]]],
        class_names: Sequence[str],
        config: ModelConfig | None = None,
    ) -> None:
        super().__init__()
        anchors = torch.as_tensor(anchors, dtype=torch.float32)
        strides = tuple(int(s) for s in backbone.strides)
        if anchors.shape != (len(strides), head.num_anchors, 2):
            raise ValueError(
                f"anchors must be ({len(strides)}, {head.num_anchors}, 2), "
                f"got {tuple(anchors.shape)}"
            )
        if len(class_names) != head.num_classes:
            raise ValueError(f"{head.num_classes} classes but names {tuple(class_names)}")
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.register_buffer("anchors", anchors)
        self.strides: tuple[int, ...] = strides
        self.num_classes: int = head.num_classes
        self.class_names: tuple[str, ...] = tuple(class_names)
        self.config = config
        self.backbone_frozen = False

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.head(self.neck(self.backbone(x)))

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Freeze (stage 1 of freeze training) or unfreeze the backbone.

        Frozen: no gradients for the backbone's parameters, and its BatchNorm layers stay in eval
        mode (running statistics fixed) even after ``model.train()``, so that the small batches
        of stage 1 do not drift the statistics of a pre-trained backbone.
        """
        self.backbone_frozen = frozen
        self.backbone.requires_grad_(not frozen)
        self.train(self.training)

    def fuse(self) -> Detector:
        """Fold every BatchNorm into its conv for faster inference; eval mode, irreversible.

        The outputs stay the same up to float rounding; the state dict loses its BN entries.
        """
        self.eval()
        for module in self.modules():
            if isinstance(module, ConvBNAct):
                module.fuse()
        return self

    def train(self, mode: bool = True) -> Detector:
        super().train(mode)
        if self.backbone_frozen:
            self.backbone.eval()
        return self

