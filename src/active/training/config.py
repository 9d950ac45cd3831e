"""The training config: typed, read from YAML, unknown keys are errors naming the key.

The defaults are the paper's recipe: Adam, input 416, freeze training in two stages (backbone
frozen: batch 4, lr 1e-3, 50 epochs; then all layers: batch 2, lr 1e-4, 100 epochs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from active.data.transforms import AugmentConfig
from active.models.postprocess_config import PostProcessConfig
from active.models.variants import ModelConfig
from active.training.loss import LossConfig
from active.utils.config import apply_overrides, from_dict, to_dict


@dataclass
class StageConfig:
    """One stage of freeze training."""

    name: str = "frozen"
    epochs: int = 50
    batch: int = 4
    lr: float = 1e-3
    freeze_backbone: bool = True
    # False: this stage trains without the robustness transforms of ``augment`` (zoom, gamma,
    # defocus, halo, background, negatives, border), e.g. a last stage on plain frames
    robust: bool = True

    def __post_init__(self) -> None:  # a config error names the stage (exit 2 from the CLI)
        # lr 0 is allowed: a stage that only runs the data and the EMA (tests use it)
        if self.epochs < 0 or self.batch < 1 or not 0 <= self.lr < float("inf"):
            raise ValueError(f"stage {self.name!r} needs epochs >= 0, batch >= 1 and lr >= 0, "
                             f"got {self.epochs}, {self.batch} and {self.lr}")


def paper_stages() -> list[StageConfig]:
    return [StageConfig("frozen", 50, 4, 1e-3, True), StageConfig("unfrozen", 100, 2, 1e-4, False)]


@dataclass
class DataConfig:
    """Where the frames come from and which of them train, validate and test."""

    path: str = ""  # a dataset in any supported format (SVIA root, VOC, YOLO, COCO .json)
    format: str = "auto"
    classes: str | None = None  # class map file; None: sperm/impurity with SVIA's names
    split: str | None = None  # split JSON (active data split); None: 6:2:2 by video from seed
    fold: int = 0  # which fold of the split file
    strict: bool = False  # repairable problems (a box partly outside, clipped) are errors too
    skip_bad_frames: bool = False  # drop frames with an unusable box whole instead of an error
    cache: bool = True  # keep decoded frames in memory
    workers: int = 0  # DataLoader worker processes

    def __post_init__(self) -> None:
        if self.fold < 0 or self.workers < 0:
            raise ValueError(f"need fold >= 0 and workers >= 0, got {self.fold} and "
                             f"{self.workers}")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.yaml`` beside the run."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: PostProcessConfig = field(default_factory=PostProcessConfig.for_evaluation)
    stages: list[StageConfig] = field(default_factory=paper_stages)
    init_weights: str | None = None  # checkpoint to start from (e.g. synthetic pre-training)
    fit_anchors: bool = True  # k-means anchors from the training boxes before training
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    # CPU threads of the process (torch.set_num_threads); None: torch's default, every core. One
    # per process when several runs share a CPU (e.g. two `active cv` workers on two cores).
    threads: int | None = None
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast; fp16 only on CUDA
    ema: bool = True
    ema_decay: float = 0.999
    # updates over which the EMA decay ramps up to ema_decay (YOLOv5's 2000). On a short run it
    # decides how much the EMA averages: after U updates it spans ~1 / (1 - d(U)) of them, with
    # d(U) = ema_decay * (1 - exp(-U / ema_ramp)); 2000 gives ~2.5 updates after 1,800.
    ema_ramp: float = 2000.0
    warmup_steps: int = 100
    final_lr_ratio: float = 0.05  # cosine decay within each stage down to lr * this
    weight_decay: float = 0.0
    grad_clip: float = 10.0
    eval_every: int = 1  # epochs between validations (and best-checkpoint updates)
    # the validation number that picks best.pt: "map50" (mean AP50 over the classes), "weighted"
    # (AP50 weighted by each class's validation boxes, so a class with a handful of boxes cannot
    # swing the choice) or a class name (that class's AP50 alone)
    best_by: str = "map50"
    save_every: int = 0  # also keep the weights of every N-th epoch as epochN.pt (0: none)
    max_steps_per_epoch: int | None = None  # cap for quick runs
    out: str = "runs/train"

    def __post_init__(self) -> None:
        if not 0.0 <= self.ema_decay < 1.0 or self.ema_ramp <= 0:
            raise ValueError(f"need 0 <= ema_decay < 1 and ema_ramp > 0, got "
                             f"{self.ema_decay} and {self.ema_ramp}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1 (or null for every core), got {self.threads}")
        if self.save_every < 0:
            raise ValueError(f"save_every must be >= 0, got {self.save_every}")
        if not self.best_by:
            raise ValueError('best_by must be "map50", "weighted" or a class name, got ""')

    def to_dict(self) -> dict:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return from_dict(cls, data)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None
                ) -> TrainConfig:
    """Read a YAML config (or the defaults) and apply ``section.key=value`` overrides."""
    import yaml

    from active.utils.config import ConfigError

    data: dict = {}
    if path is not None:
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: malformed YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections")
    apply_overrides(data, overrides or [])
    try:
        return TrainConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path else str(exc)) from None
