"""Model ensembles: several trained detectors look at the same frames and their boxes are fused.

Each member gives its candidates before NMS (for each flip of the frame when flip TTA is on);
all of them go through :func:`~active.models.tta.fuse_views`, the fusion flip TTA uses: NMS
on the pooled candidates picks the objects, a kept box becomes the score-weighted mean of the
candidates it suppressed, and its score the *mean over the views* (members x flips) of each
view's best score in it. An object that every member finds keeps its score; a blob that one
member of three finds keeps a third of it. So the ensemble ranks by agreement between
independently trained models, which is what lifts the hard held-out video of the shared sample
(S_0002) more reliably than any single run does (measured in docs/training.md).

Why not the ``ensemble_boxes`` package: its weighted box fusion loops over boxes in Python, far too
slow at the evaluation threshold (thousands of candidates per frame), and the project's TTA fusion
already is that algorithm on whole tensors. Members run one after the other on the same
letterboxed batch, so they must agree on classes; a member trained at another input size runs at
the ensemble's (the networks are fully convolutional).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import Tensor, nn

from active.errors import UsageError
from active.models.checkpoint import checkpoint_coder, load_model
from active.models.coder import BoxCoder, decode_outputs
from active.models.postprocess import Detections, PostProcessConfig, decode_candidates
from active.models.tta import FLIPS, flip_batch, fuse_views, unflip_rows


class Ensemble(nn.Module):
    """Detectors fused into one (``returns_detections``: evaluation, the predictor and
    ``active detect`` call :meth:`detect`).

    Args:
        members: trained models with the same class names: ACTIVE / YOLOv3 / YOLOv4 (raw head
            outputs, decoded with their ``coders``) or models that give candidates before NMS
            (``candidate_rows``: the second-stage ACTIVE, SSD, Faster R-CNN, YOLOv8n).
        coders: each member's box coder (from its checkpoint's loss config; ignored for members
            with ``candidate_rows``).
        sources: a name per member for error messages (e.g. the checkpoint paths).
        tta: also fuse each member's four flipped views (:mod:`active.models.tta`).
    """

    returns_detections = True

    def __init__(self, members: Sequence[nn.Module], coders: Sequence[BoxCoder] | None = None,
                 sources: Sequence[str] | None = None, tta: bool = False) -> None:
        super().__init__()
        if not members:
            raise UsageError("an ensemble needs at least one model")
        sources = list(sources or [f"member {i}" for i in range(len(members))])
        coders = list(coders or [BoxCoder()] * len(members))
        if not len(sources) == len(coders) == len(members):
            raise ValueError("one coder and one source per member")
        names = tuple(members[0].class_names)
        for m, src in zip(members, sources, strict=True):
            if tuple(m.class_names) != names:
                raise UsageError(f"{src}: classes {list(m.class_names)} differ from "
                                 f"{sources[0]}'s {list(names)}; an ensemble fuses one class set")
            if getattr(m, "returns_detections", False) and not hasattr(m, "candidate_rows"):
                raise UsageError(f"{src}: {m.config.variant} returns final detections only; an "
                                 "ensemble needs each model's candidates before NMS")
        self.members = nn.ModuleList(members)
        self.coders = coders
        self.sources = sources
        self.class_names = names
        self.config = members[0].config
        self.flips = FLIPS if tta else ((),)
        kinds = {getattr(m, "nms", None) for m in members}
        #: the NMS kind of the members' recipes when they all share one (None: the configured one)
        self.nms = kinds.pop() if len(kinds) == 1 else None

    @property
    def anchors(self) -> Tensor:
        """The first member's anchors (what a :class:`ModelSpec` records; fusion needs none)."""
        return self.members[0].anchors

    @property
    def strides(self) -> tuple[int, ...]:
        return tuple(self.members[0].strides)

    def fuse(self) -> None:
        """Fold BatchNorm into the convolutions of every member that can (inference only)."""
        for m in self.members:
            if hasattr(m, "fuse"):
                m.fuse()

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - not a training module
        raise TypeError("an Ensemble is for inference: call detect()")

    @torch.no_grad()
    def member_rows(self, index: int, x: Tensor, score_threshold: float) -> list[Tensor]:
        """Member ``index``'s candidates on batch ``x``: one ``(N, 5 + nc)`` tensor per image,
        pixel xyxy in ``x`` first, on the CPU in float32."""
        m = self.members[index]
        if hasattr(m, "candidate_rows"):
            rows = m.candidate_rows(x)
        else:
            raw = [r.float() for r in m(x)]
            if score_threshold > 0:
                rows = decode_candidates(raw, m.anchors, m.strides, self.coders[index],
                                         score_threshold)
            else:
                rows = list(decode_outputs(raw, m.anchors, m.strides, self.coders[index]))
        return [r.float().cpu() for r in rows]

    @torch.no_grad()
    def views(self, x: Tensor, score_threshold: float) -> list[list[Tensor]]:
        """Every image's views, one per member and flip, mapped back into ``x``'s frame."""
        height, width = x.shape[-2:]
        per_image: list[list[Tensor]] = [[] for _ in range(x.shape[0])]
        for i in range(len(self.members)):
            for dims in self.flips:
                for b, rows in enumerate(self.member_rows(i, flip_batch(x, dims),
                                                          score_threshold)):
                    per_image[b].append(unflip_rows(rows, dims, height, width))
        return per_image

    @torch.no_grad()
    def detect(self, x: Tensor, cfg: PostProcessConfig) -> list[Detections]:
        """Fused detections in input pixels. ``cfg.merge`` does not matter: fusing merges."""
        if self.nms is not None:
            cfg = replace(cfg, nms=self.nms)
        return [fuse_views(v, cfg) for v in self.views(x, cfg.score_threshold)]


def load_ensemble(weights: Sequence[str | Path], device: str | torch.device = "cpu",
                  tta: bool = False) -> tuple[Ensemble, dict]:
    """Load checkpoints into an :class:`Ensemble`; returns it and the first checkpoint's data."""
    members, coders, first = [], [], None
    for w in weights:
        model, data = load_model(w, device)
        members.append(model)
        coders.append(checkpoint_coder(data))
        first = first or data
    return Ensemble(members, coders, [str(w) for w in weights], tta=tta).to(device), first
