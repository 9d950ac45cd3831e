"""The predictor: load a model once (a checkpoint, an exported ONNX file or the bundled default),
then detect on images or batches; boxes come back in each frame's own pixel coordinates.

>>> from active import Predictor                      # doctest: +SKIP
>>> predictor = Predictor()                           # the bundled model, PyTorch on the CPU
>>> result = predictor(rgb_frame)                     # H x W x 3 uint8 RGB -> Results
>>> result.counts()                                   # {'sperm': 31, 'impurity': 1}
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from active.data.transforms import letterbox_batch
from active.errors import CheckpointError, DataError, UsageError
from active.inference.backends import OnnxBackend
from active.inference.postprocess_np import postprocess as postprocess_np
from active.inference.results import Results
from active.models.postprocess_config import PostProcessConfig
from active.models.spec import Deployment, ModelSpec
from active.utils.io import file_sha256

# Nothing here imports PyTorch. The paths that need it (a checkpoint run by PyTorch, flip TTA, an
# ensemble, a rescorer) import the model layer's PyTorch modules (active.models.checkpoint,
# .torch_backend, .postprocess, .tta, .ensemble, .rescore, .export) when they run; detecting with
# an ONNX model never does.

Backend = Literal["auto", "torch", "onnx"]

#: The bundled model's name; ``Predictor("default")`` loads it.
DEFAULT_MODEL = "active-i-n-svia"
#: The bundled fast model (512x384 input, ReLU; docs/model-card.md): ``Predictor("fast")``.
FAST_MODEL = "active-i-n-svia-fast"
#: Short names of the bundled models.
BUNDLED = {"default": DEFAULT_MODEL, "fast": FAST_MODEL}


def bundled_weights(name: str = DEFAULT_MODEL, suffix: str = ".pt") -> Path:
    """Path of a model that ships inside the package (``src/active/weights/``)."""
    path = Path(str(resources.files("active") / "weights" / f"{name}{suffix}"))
    if not path.is_file():
        raise CheckpointError(path, f"bundled model {name!r} is not installed (train it with "
                                    "'bash scripts/train_default_model.sh', see "
                                    "docs/model-card.md)")
    return path


def resolve_weights(weights: str | Path) -> Path:
    """A path as given, or a bundled model: ``"default"``, ``"fast"`` or its file name."""
    text = str(weights)
    if text in BUNDLED:
        return bundled_weights(BUNDLED[text])
    path = Path(text)
    if not path.exists() and path.suffix == "" and "/" not in text:
        return bundled_weights(text)
    return path


class _NumpyDetections:
    """One image's detections from the numpy post-processing (boxes, scores, classes); the
    rescorer takes them as they are."""

    def __init__(self, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray) -> None:
        self.boxes, self.scores, self.classes = boxes, scores, classes


def _as_numpy(x: object) -> np.ndarray:
    return x.numpy() if hasattr(x, "numpy") else np.asarray(x)  # type: ignore[union-attr]


def _input_size(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    """The network input (multiples of 32) for a frame of ``shape`` resized by ``factor``; the
    resized size is rounded to whole pixels first, so that a factor a hair above 384/528 does
    not add a 32-px band of padding."""
    h, w = shape[:2]
    return (max(32, int(np.ceil(round(h * factor) / 32)) * 32),
            max(32, int(np.ceil(round(w * factor) / 32)) * 32))


def onnx_twin(weights: Path, imgsz: tuple[int, ...] | None = None) -> Path | None:
    """The ``.onnx`` exported from checkpoint ``weights`` that sits beside it, if any (checked by
    the checkpoint's SHA-256 recorded at export, so a stale export is never picked up), and
    exported at ``imgsz`` when one is asked for."""
    twin = weights.with_suffix(".onnx")
    if weights.suffix != ".pt" or not twin.is_file() or not weights.is_file():
        return None
    try:
        import onnx

        meta = {p.key: p.value for p in onnx.load(str(twin), load_external_data=False)
                .metadata_props}
    except Exception:  # unreadable twin: fall back to the checkpoint
        return None
    if imgsz is not None and meta.get("imgsz") != json.dumps(list(imgsz)):
        return None
    return twin if meta.get("checkpoint_sha256") == file_sha256(weights) else None


def as_rgb(image: np.ndarray | str | Path, name: str = "image") -> np.ndarray:
    """Check (or read) one frame: H x W x 3 uint8 RGB; a 2-D grey frame is repeated to RGB."""
    if isinstance(image, str | Path):
        from active.data.images import read_image

        return read_image(image)
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise DataError(None, f"{name}: expected an H x W x 3 RGB array, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise DataError(None, f"{name}: expected uint8 pixels, got {arr.dtype}")
    return arr


class Predictor:
    """Detect sperm and impurities in frames.

    Args:
        weights: a checkpoint (``.pt``), an exported ``.onnx`` file, ``"default"`` (the bundled
            model), ``"fast"`` (the bundled fast model) or a bundled model's name; a list of
            checkpoints: an ensemble (:mod:`active.models.ensemble`, PyTorch only), their boxes
            fused.
        backend: ``"torch"``, ``"onnx"`` (ONNX Runtime) or ``"auto"``: ONNX Runtime for an
            ``.onnx`` file, or for a ``.pt`` with an exported twin beside it (same name, ``.onnx``,
            exported from this very checkpoint: its SHA-256 is in the ONNX metadata), else
            PyTorch. With a ``.pt`` file and ``"onnx"`` and no twin, the model is exported in
            memory first (a few seconds).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        imgsz: network input (height, width), or one int for a square; default: the size the
            model was trained at. Frames are letterboxed into it (aspect ratio kept).
        conf: score threshold; default: the model's counting operating point (the threshold at
            which its count per frame was unbiased on validation data, stored in the checkpoint
            and the ONNX metadata as ``score_threshold``), else 0.25; ``operating_point``
            says which. iou: DIoU-NMS threshold; max_det: detections kept per frame.
        merge: move each kept box to the score-weighted mean of the boxes its NMS suppressed
            (default; ``False``: the paper's plain DIoU-NMS). Counts do not change, boxes do.
        threads: CPU threads (PyTorch intra-op or ONNX Runtime); default: every core.
        tta: flip test-time augmentation (:mod:`active.models.tta`): four passes per frame
            (as it is, mirrored left-right, up-down, both), boxes fused; about 4x slower, more
            accurate on crowded frames (docs/inference.md).
        rescorer: a crop classifier trained by ``active rescorer`` for this model's classes
            (:mod:`active.models.rescore`): every detection is looked at a second time and
            rescored before ``conf`` applies (docs/training.md).
        um_per_px: the frames' scale (µm per pixel). When the model records the scale it was
            trained at, every frame is resized by ``um_per_px / model_um_per_px`` (the network
            input follows, in multiples of 32) so that heads reach the network at the size it
            learnt them, whatever the objective and camera; boxes come back in the frame's own
            pixels. None: frames are letterboxed into the model's input size (``imgsz``).
    """

    def __init__(self, weights: str | Path = "default", backend: Backend = "auto",
                 device: str = "auto", imgsz: int | Sequence[int] | None = None,
                 conf: float | None = None, iou: float = 0.45, max_det: int = 300,
                 nms: Literal["diou", "iou"] = "diou", threads: int | None = None,
                 tta: bool = False, merge: bool = True,
                 rescorer: str | Path | None = None, um_per_px: float | None = None) -> None:
        if backend not in ("auto", "torch", "onnx"):
            raise UsageError(f"backend must be 'auto', 'torch' or 'onnx', got {backend!r}")
        members = ([weights] if isinstance(weights, str | Path) else list(weights)) or ["default"]
        self.members = [resolve_weights(w) for w in members]
        self.weights = self.members[0]
        self.ensemble_tta = False  # an ensemble does its flips inside (self.tta stays False)
        if len(members) > 1 and (backend == "onnx" or any(w.suffix == ".onnx"
                                                          for w in self.members)):
            raise UsageError("an ensemble runs with the torch backend on .pt checkpoints")
        if self.weights.suffix == ".onnx" and backend == "torch":
            raise UsageError(f"{self.weights}: an ONNX file runs with backend 'onnx' (or 'auto')")
        self.postprocess_config = PostProcessConfig(score_threshold=0.25 if conf is None else conf,
                                                    iou_threshold=iou, max_det=max_det, nms=nms,
                                                    merge=merge)
        deployment = Deployment()
        size = None if imgsz is None else (
            (int(imgsz), int(imgsz)) if isinstance(imgsz, int) else tuple(int(v) for v in imgsz))
        if size is not None and (len(size) != 2 or any(v <= 0 or v % 32 for v in size)):
            raise UsageError(f"imgsz must be (height, width) multiples of 32, got {imgsz}")
        twin = onnx_twin(self.weights, size) if backend != "torch" and len(members) == 1 else None
        if twin is not None:
            self.weights = twin
        if self.weights.suffix == ".onnx":
            self.backend = OnnxBackend(self.weights, device, threads)
            self.spec = ModelSpec.from_metadata(self.backend.metadata, self.weights)
            deployment = Deployment.from_metadata(self.backend.metadata)
            if size is not None and size != self.spec.imgsz:
                raise UsageError(f"{self.weights}: exported at {self.spec.imgsz}; re-export for "
                                 f"imgsz {size}")
        else:
            from active.models.checkpoint import checkpoint_spec, load_model
            from active.models.device import set_threads

            if len(members) > 1:  # the ensemble flips each member's frames itself
                from active.models.ensemble import load_ensemble

                model, data = load_ensemble(self.members, tta=tta)
                self.ensemble_tta, tta = tta, False
            else:
                model, data = load_model(self.weights)
                deployment = Deployment.from_checkpoint(data)
            self.spec = checkpoint_spec(model, data, size, len(members))
            if backend == "onnx" and getattr(model, "returns_detections", False):
                raise UsageError(f"{self.weights}: {model.config.variant} runs with the torch "
                                 "backend only (no ONNX export)")
            if threads:
                set_threads(threads)
            if backend == "onnx":
                from active.models.export import onnx_bytes

                self.backend = OnnxBackend(onnx_bytes(model, self.spec), device, threads,
                                           origin=self.weights)
            else:
                from active.models.torch_backend import TorchBackend

                self.backend = TorchBackend(model, device)
        if (tta and getattr(self.backend, "returns_detections", False)
                and not getattr(self.backend, "has_candidates", False)):
            raise UsageError(f"{self.weights}: flip TTA needs a model's candidates before NMS "
                             "(ACTIVE, YOLOv3, YOLOv4, YOLOv8n/YOLO11n), not a baseline that "
                             "returns final detections only")
        self.tta = tta
        model_conf = deployment.score_threshold
        if conf is None:
            conf = model_conf if model_conf is not None else 0.25
            self.operating_point = "model" if model_conf is not None else "default 0.25"
        else:
            self.operating_point = "given"
        self.postprocess_config = replace(self.postprocess_config, score_threshold=conf)
        #: The µm/px the model was trained at (None: not recorded).
        self.model_um_per_px = deployment.um_per_px
        #: The median sperm box (long side, px) of its training frames (None: not recorded).
        self.model_head_box_px = deployment.head_box_px
        self._size_warned = False
        self._fixed_size = size is not None
        self.scale_factor: float | None = None
        if um_per_px is not None:
            self.set_scale(um_per_px)
        self.rescorer = None
        if rescorer is not None:
            from active.models.rescore import Rescorer

            self.rescorer = Rescorer.load(rescorer)
            self.rescorer.check_classes(self.names, self.weights)
            # a detection scoring s ends at most at s ** (1 - weight): lower ones cannot pass
            w = self.rescorer.weight
            self.postprocess_config = replace(self.postprocess_config, score_threshold=(
                conf ** (1 / (1 - w)) if w < 1 else 0.001))
        self.conf = conf
        self.timings: dict[str, float] = {"preprocess": 0.0, "inference": 0.0,
                                          "postprocess": 0.0}

    @property
    def names(self) -> tuple[str, ...]:
        return self.spec.names

    @property
    def imgsz(self) -> tuple[int, int]:
        return self.spec.imgsz

    def __repr__(self) -> str:
        name = (self.weights.name if len(self.members) == 1 else
                "[" + ", ".join(str(w) for w in self.members) + "]")  # names may repeat
        return (f"Predictor({name}, backend={self.backend.name}, "
                f"imgsz={self.imgsz}, classes={list(self.names)}"
                + (", tta=True" if self.tta or self.ensemble_tta else "")
                + (f", rescorer weight {self.rescorer.weight}" if self.rescorer else "") + ")")

    def __call__(self, images: np.ndarray | str | Path | Sequence[np.ndarray | str | Path],
                 sources: Sequence[str | None] | None = None) -> Results | list[Results]:
        """One frame (array or image path) -> :class:`Results`; a list -> a list of them.

        Frames are H x W x 3 uint8 **RGB**; frames of different sizes may share a batch (each is
        letterboxed on its own, and its boxes come back in its own coordinates).
        """
        single = isinstance(images, str | Path) or (isinstance(images, np.ndarray)
                                                    and images.ndim in (2, 3))
        batch = [images] if single else list(images)
        names = [str(s) if isinstance(s, str | Path) else None for s in batch]
        frames = [as_rgb(img, names[i] or f"image {i}") for i, img in enumerate(batch)]
        if sources is None:
            sources = names
        results = self.predict_frames(frames, sources)
        return results[0] if single else results

    def set_scale(self, um_per_px: float) -> None:
        """Resize every frame from ``um_per_px`` to the model's training scale from now on."""
        from active.data.scale import UM_PER_PX_RANGE

        lo, hi = UM_PER_PX_RANGE
        if not lo <= float(um_per_px) <= hi:
            raise UsageError(f"--um-per-px must lie in {lo}-{hi} µm/px, got {um_per_px}")
        if self.model_um_per_px is None:
            raise UsageError(f"{self.weights}: the model records no training scale (µm/px), so "
                             "frames cannot be resized to it; leave out --um-per-px or use a "
                             "model that records it (scripts/set_operating_point.py --um-per-px)")
        if self._fixed_size:
            raise UsageError("give either imgsz or um_per_px: with a scale the input size "
                             "follows the frame")
        if self.backend.name == "onnx" and not getattr(self.backend, "dynamic_hw", False):
            raise UsageError(f"{self.weights}: this ONNX export has a fixed input size; export "
                             "it again ('active export') to resize frames to the model's scale")
        self.scale_factor = float(um_per_px) / self.model_um_per_px

    def _input_for(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """The network input size for frames of ``shape``; warns once when a large frame is
        shrunk far below the model's scale because no µm/px was given."""
        if self.scale_factor is not None:
            return _input_size(shape, self.scale_factor)
        shrink = min(self.imgsz[0] / shape[0], self.imgsz[1] / shape[1])
        if shrink < 0.6 and not self._size_warned:
            import warnings

            self._size_warned = True
            at = (f" (trained at {self.model_um_per_px} µm/px)" if self.model_um_per_px
                  else "")
            warnings.warn(f"frames of {shape[1]}x{shape[0]} px are shrunk to {shrink:.0%} to fit "
                          f"the model's {self.imgsz[1]}x{self.imgsz[0]} input, so sperm heads "
                          f"reach it much smaller than it learnt them{at}; give --um-per-px "
                          "(your microscope's µm per pixel) to resize frames to the model's "
                          "scale instead", UserWarning, stacklevel=3)
        return self.imgsz

    def predict_frames(self, frames: Sequence[np.ndarray],
                       sources: Sequence[str | None] | None = None,
                       frame_indices: Sequence[int] | None = None,
                       times: Sequence[float | None] | None = None) -> list[Results]:
        """The detection path: checked RGB frames -> letterbox -> network -> DIoU-NMS."""
        if not frames:
            return []
        n = len(frames)
        sources = sources or [None] * n
        frame_indices = frame_indices or list(range(n))
        times = times or [None] * n
        shapes = {f.shape[:2] for f in frames}
        if len(shapes) > 1 and self.scale_factor is not None:  # one input size per call
            return [r for i in range(n) for r in self.predict_frames(
                frames[i:i + 1], sources[i:i + 1], frame_indices[i:i + 1], times[i:i + 1])]
        t0 = time.perf_counter()
        batch, metas = letterbox_batch(frames, self._input_for(frames[0].shape))
        t1 = time.perf_counter()
        onnx = self.backend.name == "onnx"
        if self.tta:
            from active.models.tta import tta_candidates, tta_detect
        elif not onnx:
            from active.models.postprocess import postprocess
        if self.tta and getattr(self.backend, "returns_detections", False):  # Ultralytics
            cfg = replace(self.postprocess_config, nms=self.backend.nms or
                          self.postprocess_config.nms)
            dets = tta_candidates(self.backend.candidate_rows, batch, cfg)
            t2 = time.perf_counter()
        elif getattr(self.backend, "returns_detections", False):  # torchvision baselines
            dets = self.backend.detect(batch, self.postprocess_config)
            t2 = time.perf_counter()
        elif self.tta:  # network and fusion are interleaved: all of it counts as inference
            dets = tta_detect(self.backend, batch, self.spec.anchors, self.spec.strides,
                              self.spec.coder, self.postprocess_config)
            t2 = time.perf_counter()
        elif onnx:  # numpy end to end (active.inference.postprocess_np, equal to the torch path)
            raw_np = self.backend.run(batch)
            t2 = time.perf_counter()
            dets = [_NumpyDetections(*d) for d in postprocess_np(
                raw_np, np.asarray(self.spec.anchors, np.float32), self.spec.strides,
                self.spec.coder, self.postprocess_config)]
        else:
            raw = self.backend(batch)
            t2 = time.perf_counter()
            dets = postprocess([r.cpu() for r in raw], self.spec.anchors, self.spec.strides,
                               self.spec.coder, self.postprocess_config)
        results = []
        for i, (d, meta) in enumerate(zip(dets, metas, strict=True)):
            boxes = meta.undo(_as_numpy(d.boxes)).astype(np.float32)
            if self.rescorer is not None:  # in frame pixels: its crops come from the frame
                d = self.rescorer(frames[i], _NumpyDetections(boxes, d.scores, d.classes),
                                  self.conf)
                boxes = d.boxes.numpy()
            results.append(Results(boxes, _as_numpy(d.scores).astype(np.float32),
                                   _as_numpy(d.classes).astype(np.int64), self.names,
                                   tuple(frames[i].shape[:2]), sources[i], frame_indices[i],
                                   times[i]))
        t3 = time.perf_counter()
        self.timings["preprocess"] += t1 - t0
        self.timings["inference"] += t2 - t1
        self.timings["postprocess"] += t3 - t2
        return results
