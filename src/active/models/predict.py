"""Batched prediction with a PyTorch model on frames, the letterbox undone: the path of the
training loop's validation, of evaluation and of the rescorer's training. The predictor runs the
same pre- and post-processing (:func:`~active.data.transforms.letterbox_batch`, then
:mod:`active.models.postprocess`), so all of them see exactly the same detections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from active.data.ap import ImageResult
from active.data.record import FrameRecord
from active.data.transforms import Letterbox, letterbox_batch
from active.models.coder import BoxCoder
from active.models.postprocess import Detections, PostProcessConfig, postprocess


def preprocess(images: Sequence[np.ndarray], imgsz: tuple[int, int]
               ) -> tuple[torch.Tensor, list[Letterbox]]:
    """:func:`letterbox_batch` as a torch tensor."""
    batch, metas = letterbox_batch(images, imgsz)
    return torch.from_numpy(batch), metas


@torch.inference_mode()
def predict_batch(model: torch.nn.Module, images: Sequence[np.ndarray], imgsz: tuple[int, int],
                  coder: BoxCoder, cfg: PostProcessConfig, device: torch.device | str = "cpu",
                  tta: bool = False) -> list[Detections]:
    """Detect on RGB frames; boxes come back as pixel xyxy in each frame's own coordinates.
    ``tta``: flip test-time augmentation (:mod:`active.models.tta`, four passes)."""
    batch, metas = preprocess(images, imgsz)
    external = getattr(model, "returns_detections", False)
    if tta and external and not hasattr(model, "candidate_rows"):
        raise ValueError(f"flip TTA needs a model's candidates before NMS; "
                         f"{type(model).__name__} returns final detections only")
    if tta and external:  # Ultralytics: its own NMS kind, our fusion
        from active.models.tta import tta_candidates

        dets = tta_candidates(lambda x: model.candidate_rows(x.to(device)), batch,
                              replace(cfg, nms=getattr(model, "nms", cfg.nms)))
    elif external:  # torchvision, effdet, Ultralytics baselines
        dets = model.detect(batch.to(device), cfg)
    elif tta:
        from active.models.tta import tta_detect

        dets = tta_detect(lambda x: model(x.to(device)), batch, model.anchors.cpu(),
                          model.strides, coder, cfg)
    else:
        raw = model(batch.to(device))
        dets = postprocess(raw, model.anchors, model.strides, coder, cfg)
    out = []
    for d, meta in zip(dets, metas, strict=True):
        boxes = torch.from_numpy(meta.undo(d.boxes.cpu().numpy())).to(d.boxes.dtype)
        out.append(Detections(boxes, d.scores.cpu(), d.classes.cpu()))
    return out


@torch.no_grad()
def predict_records(model: torch.nn.Module, records: Sequence[FrameRecord],
                    imgsz: tuple[int, int], coder: BoxCoder, cfg: PostProcessConfig,
                    device: torch.device | str, batch_size: int = 8, tta: bool = False
                    ) -> list[ImageResult]:
    """Detections and ground truth of every record, in original frame pixels (``tta``: flip
    test-time augmentation)."""
    model.eval()
    results = []
    for start in range(0, len(records), batch_size):
        chunk = records[start:start + batch_size]
        dets = predict_batch(model, [r.image for r in chunk], imgsz, coder, cfg, device, tta)
        for rec, d in zip(chunk, dets, strict=True):
            results.append(ImageResult(rec.boxes, rec.labels, d.boxes.numpy(), d.scores.numpy(),
                                       d.classes.numpy()))
    return results
