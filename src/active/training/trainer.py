"""``fit(config)``: freeze training in stages with validation, checkpoints, resume, logs and
optional DistributedDataParallel (``torchrun --nproc_per_node N -m active train ...``; the rank
helpers are in :mod:`active.training.distributed`)."""

from __future__ import annotations

import csv
import math
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from active.data.ap import ClassAP, mean_ap
from active.data.record import FrameRecord
from active.models.checkpoint import load_model, read_checkpoint, save_checkpoint
from active.models.device import pick_device
from active.training import distributed as ddp
from active.training.config import TrainConfig
from active.training.data import DetectionDataset, collate
from active.training.engine import ModelEMA, evaluate, precision_warning, train_one_epoch
from active.utils.io import write_text

LOG_FIELDS = ("epoch", "stage", "lr", "box", "obj", "cls", "total", "val_ap50_sperm",
              "val_ap50_impurity", "val_map50", "seconds")


def resolve_device(name: str) -> torch.device:
    """The device ``name`` names; one this machine lacks is a UsageError naming --device."""
    return pick_device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def load_splits(cfg: TrainConfig) -> dict[str, list[FrameRecord]]:
    """The config's dataset split into train/val/test by video (never a video in two parts)."""
    from active.data.classes import DEFAULT_CLASSES, ClassMap
    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan, apply_fold, ratio_split

    d = cfg.data
    classes = ClassMap.from_file(d.classes) if d.classes else DEFAULT_CLASSES
    records = load_dataset(d.path, d.format, classes, d.strict, d.skip_bad_frames)
    if d.split:
        plan = SplitPlan.load(d.split)
        if not 0 <= d.fold < len(plan.folds):
            raise ValueError(f"{d.split}: fold {d.fold} does not exist ({len(plan.folds)} folds)")
        fold = plan.folds[d.fold]
    else:
        fold = ratio_split({r.video_id for r in records}, (6, 2, 2), cfg.seed).folds[0]
    return apply_fold(records, fold, Path(d.split) if d.split else None)


def fit_anchors(records: list[FrameRecord], imgsz: tuple[int, int], seed: int
                ) -> tuple[tuple[float, float], ...]:
    """k-means anchors (1 - IoU) of the training boxes as the letterbox scales them."""
    from active.models.anchors import kmeans_anchors

    wh = []
    for r in records:
        scale = min(imgsz[0] / r.height, imgsz[1] / r.width)
        wh.append((r.boxes[:, 2:] - r.boxes[:, :2]) * scale)
    return kmeans_anchors(np.concatenate(wh), 9, seed=seed).as_config()


def _lr_lambda(total: int, warmup: int, final: float):
    def f(step: int) -> float:
        w = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
        progress = min(step / max(total, 1), 1.0)
        return w * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))

    return f


class Run:
    """The state of one training run, so that ``fit`` reads as the recipe it is.

    Under torchrun it joins the process group (see :func:`active.training.distributed.setup`);
    ``main`` is rank 0, the only rank that validates, prints and writes files.
    """

    def __init__(self, cfg: TrainConfig, out: Path, resume: bool, progress: bool) -> None:
        self.cfg, self.out, self.progress = cfg, out, progress
        self.ranks, self.device = ddp.setup(resolve_device(cfg.device))
        self.distributed, self.main = self.ranks.distributed, self.ranks.main
        self.rank, self.world = self.ranks.rank, self.ranks.world
        self.resume_state = None
        if resume:  # every rank reads it: the run folder must be on a shared file system
            self.resume_state = read_checkpoint(out / "last.pt")

    def log(self, text: str) -> None:
        if self.main:
            print(text, flush=True)

    def barrier(self) -> None:
        ddp.barrier(self.ranks, self.device)

    def close(self) -> None:
        ddp.close(self.ranks, self.device)


def build_model_for(cfg: TrainConfig, train: list[FrameRecord], run: Run) -> torch.nn.Module:
    from active.models.build import build_model

    mcfg = cfg.model
    if run.resume_state is not None:
        from active.models.variants import ModelConfig

        mcfg = ModelConfig.from_dict(run.resume_state["model_config"])
    elif cfg.init_weights:
        model, data = load_model(cfg.init_weights)
        init_cfg = model.config
        if (init_cfg.variant, init_cfg.scale, init_cfg.branches) != (mcfg.variant, mcfg.scale,
                                                                     mcfg.branches):
            raise ValueError(f"{cfg.init_weights}: holds {init_cfg.variant}/{init_cfg.scale}/"
                             f"{init_cfg.branches}, config asks {mcfg.variant}/{mcfg.scale}/"
                             f"{mcfg.branches}")
        if tuple(init_cfg.imgsz) != tuple(mcfg.imgsz):  # fine-tuning at another input size
            model.config = replace(init_cfg, imgsz=tuple(mcfg.imgsz))
        if init_cfg.second_stage and mcfg.second_stage and init_cfg.roi_context != \
                mcfg.roi_context:
            raise ValueError(f"{cfg.init_weights}: its second stage has roi_context "
                             f"{init_cfg.roi_context}, config asks {mcfg.roi_context}")
        if mcfg.second_stage and not init_cfg.second_stage:  # a new RoI head on trained weights
            one_stage = model
            model = build_model(replace(model.config, second_stage=True,
                                        roi_context=mcfg.roi_context))
            missing, unexpected = model.load_state_dict(one_stage.state_dict(), strict=False)
            if unexpected or any(not k.startswith(("roi_conv.", "roi_heads.")) for k in missing):
                raise ValueError(f"{cfg.init_weights}: does not fit a second stage on top")
            run.log("second stage added to the initial weights (the RoI head starts untrained)")
        run.log(f"initialised from {cfg.init_weights}")
        return model
    elif cfg.fit_anchors:
        mcfg = replace(mcfg, anchors=fit_anchors(train, mcfg.imgsz, cfg.seed))
        run.log(f"k-means anchors at {mcfg.imgsz}: {mcfg.anchors}")
    return build_model(mcfg)


def fit(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train ``cfg`` and return a summary (best validation AP50 per class, paths, times).

    Writes into ``cfg.out``: ``config.yaml``, ``last.pt`` (every epoch, with the training state
    for ``resume``), ``best.pt`` (best validation mAP50), ``log.csv`` and ``curves.png``.
    """
    import yaml
    from tqdm import tqdm

    from active.training.loss import YoloCriterion

    out = Path(cfg.out)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = Run(cfg, out, resume, progress)
    seed_everything(cfg.seed + run.rank)
    if (warning := precision_warning(run.device, cfg.precision)) is not None:
        run.log(warning)
    parts = load_splits(cfg)
    train, val = parts["train"], parts["val"]
    if not train:
        raise ValueError(f"{cfg.data.path}: the split leaves no training frames")
    check_best_by(cfg.best_by, train[0].class_names, val)
    model = build_model_for(cfg, train, run).to(run.device)
    imgsz = model.config.imgsz
    if run.main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    coder = cfg.loss.coder()
    if model.config.second_stage:  # the one-stage loss and the RoI head's
        from active.models.two_stage import TwoStageCriterion

        model.coder = coder
        criterion = TwoStageCriterion(
            YoloCriterion(model.anchors, model.strides, model.num_classes, cfg.loss))
    elif getattr(model, "returns_detections", False):  # torchvision baselines: own losses
        from active.models.torchvision_models import TorchvisionLoss

        criterion = TorchvisionLoss()
    else:
        criterion = YoloCriterion(model.anchors, model.strides, model.num_classes, cfg.loss)
    criterion.to(run.device)
    # only rank 0 validates and saves, so only rank 0 keeps the average
    ema = ModelEMA(model, cfg.ema_decay, cfg.ema_ramp) if cfg.ema and run.main else None
    dataset = DetectionDataset(train, imgsz, cfg.augment, cfg.seed, cfg.data.cache)
    if cfg.data.workers > 0:
        dataset.preload()
    state = run.resume_state.get("train_state", {}) if run.resume_state else {}
    if run.resume_state is not None:  # the raw weights (the checkpoint's "model" may be the EMA)
        model.load_state_dict(state.get("raw_model", run.resume_state["model"]))
        if ema is not None and "ema" in state:
            ema.load_state_dict(state["ema"])
    best = float(state.get("best", -1.0))
    best_map50 = float(state.get("best_map50", -1.0))
    history: list[dict] = list(state.get("history", []))
    start_stage, start_epoch = int(state.get("stage", 0)), int(state.get("epoch", 0))
    t_start = time.time()
    for si, stage in enumerate(cfg.stages):
        dataset.augment = (cfg.augment if stage.robust or cfg.augment is None
                           else cfg.augment.without_robustness())
        if si < start_stage:
            continue
        model.freeze_backbone(stage.freeze_backbone)
        net = ddp.wrap(model, run.ranks, run.device)  # after freezing: DDP registers trainables
        generator = torch.Generator()
        sampler = ddp.sampler(dataset, run.ranks, cfg.seed, generator)
        loader = DataLoader(dataset, stage.batch, sampler=sampler, collate_fn=collate,
                            num_workers=cfg.data.workers, drop_last=len(sampler) > stage.batch)
        steps = len(loader) if cfg.max_steps_per_epoch is None else min(
            len(loader), cfg.max_steps_per_epoch)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=stage.lr, weight_decay=cfg.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, _lr_lambda(steps * stage.epochs, cfg.warmup_steps, cfg.final_lr_ratio))
        scaler = (torch.amp.GradScaler("cuda") if cfg.precision == "fp16"
                  and run.device.type == "cuda" else None)
        first_epoch = 0
        if si == start_stage and "optimizer" in state:
            if start_epoch > 0:  # mid-stage; at a stage boundary the saved optimizer is the
                optimizer.load_state_dict(state["optimizer"])  # last stage's, other params
                scheduler.load_state_dict(state["scheduler"])
            first_epoch = start_epoch
            torch.set_rng_state(state["torch_rng"])
        for epoch in range(first_epoch, stage.epochs):
            dataset.set_epoch(1000 * si + epoch)
            generator.manual_seed(cfg.seed + 1000 * si + epoch)  # same order after a resume
            if run.distributed:
                sampler.set_epoch(1000 * si + epoch)
                torch.manual_seed(ddp.rank_seed(cfg.seed, si, epoch, run.rank))
            t0 = time.time()
            bar = tqdm(total=steps, desc=f"{stage.name} {epoch + 1}/{stage.epochs}",
                       disable=not (progress and run.main), leave=False, dynamic_ncols=True)

            def on_step(step: int, values: dict[str, float], bar=bar) -> None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in values.items()})

            losses = train_one_epoch(net, criterion, loader, optimizer, scheduler, run.device,
                                     cfg.precision, cfg.grad_clip, ema, scaler,
                                     cfg.max_steps_per_epoch, on_step)
            bar.close()
            losses = ddp.average(losses, run.ranks, run.device)
            digests = ddp.check_replicas(net, run.ranks) if run.distributed else []
            row: dict[str, Any] = {"epoch": len(history) + 1, "stage": stage.name,
                                   "lr": optimizer.param_groups[0]["lr"], **losses}
            final = si == len(cfg.stages) - 1 and epoch == stage.epochs - 1
            if run.main and val and ((epoch + 1) % cfg.eval_every == 0 or final):
                eval_model = ema.module if ema is not None else model
                aps = evaluate(eval_model, val, imgsz, coder, cfg.eval, run.device)
                for name, c in aps.items():
                    row[f"val_ap50_{name}"] = c.ap
                row["val_map50"] = mean_ap(aps)
                if cfg.best_by != "map50":
                    row["val_score"] = fitness(aps, cfg.best_by)
            row["seconds"] = round(time.time() - t0, 2)
            history.append(row)
            if run.main:
                score = row.get("val_score", row.get("val_map50", float("nan")))
                improved = not math.isnan(score) and score > best
                if improved:
                    best, best_map50 = score, row["val_map50"]
                done_stage, done_epoch = (si, epoch + 1) if epoch + 1 < stage.epochs else (
                    si + 1, 0)
                train_state = {
                    "stage": done_stage, "epoch": done_epoch, "best": best,
                    "best_map50": best_map50,
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(), "history": history,
                }
                if ema is not None:
                    train_state["ema"] = ema.state_dict()
                    train_state["raw_model"] = {k: v.detach().cpu() for k, v in
                                                model.state_dict().items()}
                weights = ema.module if ema is not None else model
                meta: dict[str, Any] = {"epoch": row["epoch"],
                                        "val_map50": row.get("val_map50", float("nan")),
                                        "best_by": cfg.best_by, "val_score": score}
                if run.distributed:  # each rank's raw parameters, to check they agree
                    meta["replica_digests"] = digests
                save_checkpoint(out / "last.pt", weights, cfg.loss.to_dict(), train_state, meta)
                if improved or not val:
                    save_checkpoint(out / "best.pt", weights, cfg.loss.to_dict(), None, meta)
                if cfg.save_every and row["epoch"] % cfg.save_every == 0:
                    save_checkpoint(out / f"epoch{row['epoch']}.pt", weights,
                                    cfg.loss.to_dict(), None, meta)
                write_log(out / "log.csv", history)
                run.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                 for k, v in row.items()))
            run.barrier()  # the others wait here (not inside DDP's forward) while rank 0 saves
        start_epoch = 0
    if run.main:
        plot_curves(history, out / "curves.png")
    run.close()
    return {"out": str(out), "best_val_map50": best_map50, "best_by": cfg.best_by,
            "best_score": best, "epochs": len(history),
            "seconds": round(time.time() - t_start, 1), "history": history,
            "rank": run.rank, "world_size": run.world}


def check_best_by(best_by: str, class_names: tuple[str, ...], val: list[FrameRecord]) -> None:
    """Raise a ConfigError unless ``best_by`` is "map50", "weighted" or a class with validation
    boxes (a class without any would leave every epoch unscored and no best.pt)."""
    from active.utils.config import ConfigError

    if best_by in ("map50", "weighted"):
        return
    if best_by not in class_names:
        raise ConfigError(f'best_by: "{best_by}" is neither "map50", "weighted" nor a class of '
                          f"the data ({', '.join(class_names)})")
    index = class_names.index(best_by)
    if val and not any((r.labels == index).any() for r in val):
        raise ConfigError(f'best_by: the validation frames hold no "{best_by}" box, so its AP50 '
                          f"cannot pick best.pt")


def fitness(aps: dict[str, ClassAP], best_by: str) -> float:
    """The validation score that picks best.pt (see ``TrainConfig.best_by``); NaN if undefined.

    "weighted" weights each class's AP50 by its number of validation boxes: on the shared SVIA
    sample one validation video holds 1,691 sperm boxes and 92 impurity boxes (two objects), and
    the plain mean lets those two objects decide which epoch is kept.
    """
    if best_by == "map50":
        return mean_ap(aps)
    if best_by == "weighted":
        defined = [c for c in aps.values() if c.num_gt > 0 and not math.isnan(c.ap)]
        total = sum(c.num_gt for c in defined)
        return sum(c.ap * c.num_gt for c in defined) / total if total else float("nan")
    return aps[best_by].ap if best_by in aps else float("nan")


def write_log(path: Path, history: list[dict]) -> None:
    from active.utils.io import atomic_open

    with atomic_open(path, "w", newline="") as fh:
        fields = list(LOG_FIELDS)  # plus the loss parts of models with their own (e.g. dfl)
        for key in dict.fromkeys(k for row in history for k in row if k not in fields):
            fields.insert(fields.index("seconds" if key.startswith("val_") else "total"), key)
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in history:
            writer.writerow({k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in
                             row.items()})


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss parts and validation AP50 per epoch, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from active.utils.io import atomic_path

    if not history:
        return
    epochs = [r["epoch"] for r in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for k in ("box", "obj", "cls", "total"):
        if k in history[0]:
            axes[0].plot(epochs, [r[k] for r in history], label=k)
    axes[0].set(xlabel="epoch", ylabel="loss per image", yscale="log", title="Training loss")
    axes[0].legend()
    for k in ("val_ap50_sperm", "val_ap50_impurity", "val_map50", "val_score"):
        pts = [(r["epoch"], r[k]) for r in history if k in r]
        if pts:
            axes[1].plot(*zip(*pts, strict=True), marker=".", label=k.removeprefix("val_"))
    axes[1].set(xlabel="epoch", ylabel="AP50", ylim=(0, 1), title="Validation")
    if axes[1].lines:
        axes[1].legend()
    else:  # a split without validation videos (best.pt is then the last epoch)
        axes[1].text(0.5, 0.5, "no validation videos", ha="center", transform=axes[1].transAxes)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
