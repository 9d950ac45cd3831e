"""A second look at each detection: a small CNN on a crop around the box rescores it.

One-stage detectors score every box from the dense feature map; Faster R-CNN classifies each
candidate a second time, with a background class, and on the shared SVIA sample that is what
separates annotated sperm heads from look-alike dark dots (docs/training.md). A :class:`Rescorer`
adds that second look to any trained detector without touching it: a crop around each detection
(``context`` times the box's longer side, resampled to ``crop`` px by torchvision's
``roi_align``) goes through :class:`CropNet` (background + one logit per class), and the
detection's score becomes ``score ** (1 - weight) * (1 - p_background) ** weight``. Boxes and
classes do not change, only the ranking (AP) and which boxes clear a score threshold.

It is trained on the detector's own candidates on the training videos
(:func:`active.training.rescore.fit_rescorer`, ``active rescorer``), and saved as a small file
loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

from active.data.ap import ImageResult
from active.errors import CheckpointError
from active.models.checkpoint import load_file
from active.models.postprocess import Detections
from active.utils.io import atomic_path

FORMAT = "active-rescorer"
VERSION = 1


class CropNet(nn.Module):
    """A small CNN over an RGB crop: logits for background (index 0) and each class."""

    def __init__(self, num_classes: int, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int, stride: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                                 nn.BatchNorm2d(cout), nn.SiLU())

        self.num_classes, self.width = num_classes, width
        self.features = nn.Sequential(block(3, width, 1), block(width, width, 2),
                                      block(width, 2 * width, 1), block(2 * width, 2 * width, 2),
                                      block(2 * width, 4 * width, 2),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4 * width, num_classes + 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def crop_boxes(image: np.ndarray, boxes: np.ndarray | Tensor, size: int, context: float
               ) -> Tensor:
    """(N, 3, size, size) float crops in [0, 1] of an H x W x 3 uint8 frame: squares centred on
    each pixel-xyxy box, ``context`` times its longer side (zeros beyond the frame)."""
    img = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    b = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    centre = (b[:, :2] + b[:, 2:]) / 2
    half = context * (b[:, 2:] - b[:, :2]).amax(1, keepdim=True).clamp(min=1.0) / 2
    rois = torch.cat([torch.zeros(len(b), 1), centre - half, centre + half], 1)
    return roi_align(img, rois, (size, size), 1.0, 2, aligned=True)


def mix_scores(scores: Tensor | np.ndarray, p_background: Tensor | np.ndarray, weight: float
               ) -> Any:
    """``score ** (1 - weight) * (1 - p_background) ** weight`` (numpy or torch, as given)."""
    if isinstance(scores, np.ndarray):
        return scores ** (1 - weight) * np.clip(1 - p_background, 1e-6, 1) ** weight
    return scores ** (1 - weight) * (1 - p_background).clamp(1e-6, 1) ** weight


def mixed_results(results: Sequence[ImageResult], p_background: Sequence[np.ndarray],
                  weight: float) -> list[ImageResult]:
    """``results`` (detections with ground truth) with each score mixed with its P(background)."""
    return [ImageResult(r.gt_boxes, r.gt_labels, r.boxes, mix_scores(r.scores, p, weight),
                        r.labels) for r, p in zip(results, p_background, strict=True)]


@dataclass
class Rescorer:
    """A trained :class:`CropNet` with the settings it was trained with."""

    net: CropNet
    class_names: tuple[str, ...]
    crop: int = 32
    context: float = 2.0
    weight: float = 0.5  # chosen on the validation video by fit_rescorer
    meta: dict[str, Any] = field(default_factory=dict)

    @torch.inference_mode()
    def background_prob(self, image: np.ndarray, boxes: np.ndarray | Tensor,
                        batch: int = 1024) -> Tensor:
        """P(background) of each box of one frame."""
        self.net.eval()
        if len(boxes) == 0:
            return torch.zeros(0)
        x = crop_boxes(image, boxes, self.crop, self.context)
        return torch.cat([self.net(x[i:i + batch]).softmax(1)[:, 0]
                          for i in range(0, len(x), batch)])

    def background_probs(self, results: Sequence[ImageResult], images: Sequence[np.ndarray]
                         ) -> list[np.ndarray]:
        """P(background) of every detection of ``results``, frame by frame."""
        return [self.background_prob(img, r.boxes).numpy()
                for r, img in zip(results, images, strict=True)]

    def rescore_results(self, results: Sequence[ImageResult], images: Sequence[np.ndarray],
                        weight: float | None = None) -> list[ImageResult]:
        """``results`` rescored (``weight``: the rescorer's own unless given); for evaluation."""
        return mixed_results(results, self.background_probs(results, images),
                             self.weight if weight is None else weight)

    def __call__(self, image: np.ndarray, det: Detections, score_threshold: float = 0.0
                 ) -> Detections:
        """The detections of one frame (pixel coordinates of ``image``) rescored, re-sorted and
        cut at ``score_threshold``; ``det``'s arrays may be tensors or numpy (the ONNX path)."""
        det = Detections(*(torch.as_tensor(a) for a in (det.boxes, det.scores, det.classes)))
        if len(det) == 0:
            return det
        p = self.background_prob(image, det.boxes).to(det.scores.dtype)
        scores = mix_scores(det.scores.cpu(), p, self.weight)
        order = scores.argsort(descending=True)
        order = order[scores[order] >= score_threshold]
        return Detections(det.boxes.cpu()[order], scores[order], det.classes.cpu()[order])

    def save(self, path: str | Path) -> None:
        """Write the rescorer atomically (plain data and tensors only)."""
        payload = {"format": FORMAT, "version": VERSION, "class_names": list(self.class_names),
                   "num_classes": self.net.num_classes, "width": self.net.width,
                   "crop": self.crop, "context": self.context, "weight": self.weight,
                   "model": {k: v.detach().cpu() for k, v in self.net.state_dict().items()},
                   "meta": self.meta}
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)

    @classmethod
    def load(cls, path: str | Path) -> Rescorer:
        """Read a rescorer file; a missing, corrupt, foreign or newer file is a CheckpointError
        naming it."""
        path = Path(path)
        data = load_file(path, "rescorer")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(path, "not an ACTIVE rescorer (train one with 'active "
                                        "rescorer'; a detector checkpoint goes to --weights)")
        if not isinstance(data.get("version"), int) or data["version"] > VERSION:
            raise CheckpointError(path, f"rescorer format version {data.get('version')} is "
                                        f"newer than this ACTIVE understands ({VERSION})")
        net = CropNet(int(data["num_classes"]), int(data["width"]))
        try:
            net.load_state_dict(data["model"])
        except (RuntimeError, KeyError) as exc:
            raise CheckpointError(path, f"rescorer weights do not fit ({exc})") from None
        return cls(net.eval(), tuple(data["class_names"]), int(data["crop"]),
                   float(data["context"]), float(data["weight"]), dict(data.get("meta", {})))

    def check_classes(self, names: tuple[str, ...] | list[str], origin: str | Path) -> None:
        """Refuse a detector whose classes differ from the ones this rescorer learned."""
        if tuple(names) != self.class_names:
            raise CheckpointError(Path(str(origin)), f"classes {list(names)} differ from the "
                                  f"rescorer's {list(self.class_names)}")
