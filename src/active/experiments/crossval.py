"""Cross-validation by video and the branch ablation: the paper's Tables I and II, one call each.

:func:`run_cv` trains every model on every fold of a k-fold split by video (``kfold_split``: with
k = 5 each fold is the paper's 6:2:2 train/val/test; with k = the number of videos it is
leave-one-video-out) and evaluates each fold's ``best.pt`` on that fold's test videos.
:func:`run_ablation` does the same for one variant built with branch 1, branch 2 and both. The
output folder holds::

    split.json          the folds; a rerun reuses them, so every model sees the same parts
    results.json        one entry per finished (model, fold), rewritten as each one finishes
    table.md            Table I (run_cv) / ablation.md: Table II (run_ablation)
    <model>/fold<i>/    the training run (best.pt, last.pt, log.csv) and test/report.json

With several training seeds (``run_cv(seeds=...)``) every model is trained once per seed (the
config's seed keeps the plain folder name, another seed ``s`` goes to ``<model>-seed<s>/``), and a
row ``<model>-<n>seeds`` evaluates the runs of each fold fused into one
:class:`~active.models.ensemble.Ensemble` (its reports in ``<model>-<n>seeds/fold<i>/test``).

A rerun skips the (model, fold) pairs that have a results entry and resumes a run that has a
``last.pt``, so an interrupted experiment continues where it stopped.

Several processes may run the same experiment into the same folder at once (more GPUs, or more
runs on one large GPU): each takes a (model, fold) pair by creating ``<model>/fold<i>/claim``
exclusively and skips the pairs others have taken, and ``results.json`` is updated under a lock
(read, merge, rewrite). A claim left by a process that died on this host is taken over. The
pairs go fold by fold (every model's fold 0, then fold 1, ...), so a stopped experiment has
compared every model on the same folds.

The rows, their results and the tables are :mod:`active.experiments.cvtable` (re-exported here);
``results.json`` and the claims are :mod:`active.experiments.cvstore`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from active.data.classes import ClassMap
from active.data.splits import SplitPlan, kfold_split
from active.errors import DataError
from active.evaluation import report
from active.experiments.cvstore import FoldResult, ResultStore, claim, fingerprint
from active.experiments.cvtable import (  # noqa: F401 (re-exported: the results and tables)
    ABLATION_BRANCHES,
    BOTH,
    ClassSummary,
    CVResult,
    ModelSpec,
    format_table_i,
    format_table_ii,
    percent,
)
from active.models.variants import supports_tta
from active.training import trainer
from active.training.config import TrainConfig
from active.utils.config import ConfigError
from active.utils.io import write_text


def load_experiment_config(path: str | Path | None, overrides: Sequence[str] = (),
                           epochs: Sequence[int] | None = None) -> TrainConfig:
    """``load_config`` plus epochs per stage (one value for every stage, or one per stage)."""
    from active.training.config import load_config

    cfg = load_config(path, list(overrides))
    for i, stage in enumerate(cfg.stages if epochs else ()):
        stage.epochs = int(epochs[min(i, len(epochs) - 1)])
    return cfg


def run_cv(cfg: TrainConfig, variants: Sequence[str] | None = None, folds: int = 5,
           out: str | Path = "runs/cv", seed: int = 0,
           branches_list: Sequence[Sequence[str]] | None = None, progress: bool = True,
           log: Callable[[str], None] = print, only_folds: Sequence[int] | None = None,
           tta: bool = False, seeds: Sequence[int] | None = None) -> CVResult:
    """k-fold cross-validation by video of each variant (x each branch setting); writes Table I.

    Args:
        cfg: the training recipe shared by every run; its model variant and branches are
            replaced per model, its ``out`` and ``data.split``/``data.fold`` per fold.
        variants: e.g. ``["active-i", "active-iv"]``; default the config's variant.
        folds: k; at least 3 (one group of videos validates, one tests) and at most the number
            of videos (k = number of videos is leave-one-video-out).
        out: the experiment folder (see the module docstring).
        seed: seed of the assignment of videos to folds (training uses ``cfg.seed``).
        branches_list: DBFEN branch settings; default the config's ``model.branches``.
        progress: progress bars while training.
        log: where the one-line reports of each fold go.
        only_folds: train only these folds (e.g. to spread one experiment over machines); the
            table reports every fold that has results, and finished folds of the other folds are
            still evaluated again when the evaluation settings changed (or for ``tta``).
        tta: also evaluate each fold's weights with flip test-time augmentation
            (:mod:`active.models.tta`); the table gets a "+ flip TTA" row per model. Folds
            trained before are evaluated again, not retrained.
        seeds: train every model once per training seed (default: ``cfg.seed`` only) and, with
            two or more, add a row of each fold's runs fused
            (:class:`~active.models.ensemble.Ensemble`), evaluated as soon as every seed of
            the fold is trained. Runs of ``cfg.seed`` are the plain rows, so seeds can be added
            to a finished experiment.
    """
    result = _run(cfg, variants, folds, Path(out), seed, branches_list, progress, log,
                  only_folds, tta, seeds)
    write_text(result.out / "table.md", format_table_i(result) + "\n")
    return result


def run_ablation(cfg: TrainConfig, variant: str | None = None, folds: int = 5,
                 out: str | Path = "runs/ablation", seed: int = 0, progress: bool = True,
                 log: Callable[[str], None] = print, only_folds: Sequence[int] | None = None
                 ) -> CVResult:
    """The branch ablation: ``variant`` with branch 1, branch 2 and both on the same k folds;
    writes Table II to ``out/ablation.md``. Arguments as :func:`run_cv`."""
    result = _run(cfg, [variant] if variant else None, folds, Path(out), seed,
                  ABLATION_BRANCHES, progress, log, only_folds)
    write_text(result.out / "ablation.md", format_table_ii(result) + "\n")
    return result


def _run(cfg: TrainConfig, variants: Sequence[str] | None, k: int, out: Path, seed: int,
         branches_list: Sequence[Sequence[str]] | None, progress: bool,
         log: Callable[[str], None], only_folds: Sequence[int] | None = None,
         tta: bool = False, seeds: Sequence[int] | None = None) -> CVResult:
    if only_folds is not None and not set(only_folds) <= set(range(k)):
        raise ConfigError(f"--only-fold {sorted(only_folds)}: folds are 0..{k - 1}")
    seeds = list(dict.fromkeys(seeds)) if seeds else [cfg.seed]
    if cfg.threads:  # the evaluations too, not only the training runs
        torch.set_num_threads(cfg.threads)
    specs: list[ModelSpec] = []
    for variant in variants or [cfg.model.variant]:
        for branches in branches_list or [cfg.model.branches]:
            try:  # build every model config first, so a typo fails before hours of training
                mcfg = replace(cfg.model, variant=variant, branches=tuple(branches))
            except ValueError as exc:
                raise ConfigError(f"model {variant} {tuple(branches)}: {exc}") from None
            if len(seeds) > 1 and not supports_tta(mcfg.variant):
                raise ConfigError(f"model {variant}: its runs of several seeds cannot be fused "
                                  "(it does its NMS inside); train one seed at a time")
            base = ModelSpec(mcfg.variant, mcfg.branches, mcfg.second_stage)
            runs = [replace(base, seed=None if s == cfg.seed else s) for s in seeds]
            fused = [replace(base, fused=tuple(r.name for r in runs))] if len(runs) > 1 else []
            specs += [s for s in runs + fused if s not in specs]
    split_path = out / "split.json"
    plan = _split_plan(cfg, split_path, k, seed)
    store = ResultStore(out / "results.json", fingerprint(cfg))
    settings = _eval_settings(cfg)
    for i in range(k):
        for spec in specs:
            store.reload()
            done = store.get(spec.name, i)
            mine = only_folds is None or i in only_folds
            if spec.fused:  # fused as soon as its runs are there, whoever trained them
                _fuse_fold(cfg, spec, i, out, split_path, store, settings, tta, log, mine)
                continue
            if done is None and not mine:
                continue  # only_folds limits training; finished folds are still re-evaluated
            spec_tta = tta and supports_tta(spec.variant)
            if tta and not spec_tta:
                log(f"{spec.name} fold {i}: no flip TTA (the model does its NMS inside)")
            if done is not None:
                _revisit(done, cfg, settings, split_path, store, spec_tta, log)
                continue
            with claim(out / spec.name / f"fold{i}") as ours:
                if not ours:
                    log(f"{spec.name} fold {i}: taken by another process, skipped")
                    continue
                res = _run_fold(cfg, spec, split_path, i, out, progress, log, spec_tta)
                store.add(res)
            log(_tested(res))
    for i in range(k):  # runs that other processes finished meanwhile: the last one to end fuses
        for spec in (s for s in specs if s.fused):
            store.reload()
            if store.get(spec.name, i) is None:
                _fuse_fold(cfg, spec, i, out, split_path, store, settings, tta, log, False)
    store.reload()
    results = [r for s in specs for i in range(k) if (r := store.get(s.name, i)) is not None]
    return CVResult(out, plan, specs, results)


def _split_plan(cfg: TrainConfig, path: Path, k: int, seed: int) -> SplitPlan:
    """The folds saved in ``path``, or new ones over the dataset's videos (then saved)."""
    from active.data.classes import DEFAULT_CLASSES
    from active.data.dataset import load_dataset

    records = load_dataset(cfg.data.path, cfg.data.format, DEFAULT_CLASSES, cfg.data.strict,
                           cfg.data.skip_bad_frames)
    videos = sorted({r.video_id for r in records})
    if path.is_file():
        plan = SplitPlan.load(path)
        if (plan.kind, len(plan.folds), plan.seed, sorted(plan.videos)) != ("kfold", k, seed,
                                                                             videos):
            raise DataError(path, f"holds {len(plan.folds)} {plan.kind} folds (seed {plan.seed}) "
                            f"over {len(plan.videos)} videos, but this run asks {k} folds "
                            f"(seed {seed}) over the dataset's {len(videos)} videos; use "
                            "another output folder or remove the old one")
        return plan
    if k > len(videos):
        hint = (f"; {len(videos)} folds is leave-one-video-out" if len(videos) >= 3 else "")
        raise DataError(cfg.data.path, f"{k} folds need at least {k} videos, but the dataset "
                        f"has {len(videos)} ({', '.join(videos[:10])}){hint}")
    if k < 3:
        raise DataError(cfg.data.path, f"cross-validation needs at least 3 folds (one group "
                        f"of videos validates, one tests), got {k}")
    plan = kfold_split(videos, k, seed, val=True)
    plan.save(path)
    return plan


def _fuse_fold(cfg: TrainConfig, spec: ModelSpec, fold: int, out: Path, split_path: Path,
               store: ResultStore, settings: dict[str, Any], tta: bool,
               log: Callable[[str], None], say_waiting: bool) -> None:
    """The fused row of one fold: evaluated once every run it fuses has finished the fold, and
    again when one of those runs was replaced (or as :func:`_revisit` says)."""
    runs = [store.get(name, fold) for name in spec.fused]
    missing = [name for name, r in zip(spec.fused, runs, strict=True) if r is None]
    if missing:
        if say_waiting:
            log(f"{spec.name} fold {fold}: waiting for {', '.join(missing)}")
        return
    members = [r.weights for r in runs if r is not None]
    done = store.get(spec.name, fold)
    if done is not None and done.members == members:
        _revisit(done, cfg, settings, split_path, store, tta, log)
        return
    res = _evaluated(cfg, members, split_path, fold, spec.name, 0, tta,
                     _fused_dir(out, spec.name, fold))
    store.add(res)
    log(_tested(res))


def _fused_dir(out: Path, model: str, fold: int) -> Path:
    """Where a fused row's reports go (it has no run folder of its own)."""
    return out / model / f"fold{fold}"


def _tested(res: FoldResult) -> str:
    """The log line of a finished evaluation."""
    return (f"{res.model} fold {res.fold}: test {', '.join(res.test_videos)}: AP50 (%) "
            + ", ".join(f"{c} {percent(a)}" for c, a in res.ap50.items()))


def _revisit(done: FoldResult, cfg: TrainConfig, settings: dict[str, Any], split_path: Path,
             store: ResultStore, tta: bool, log: Callable[[str], None]) -> None:
    """A finished fold: evaluate its weights again if the evaluation settings changed (or for a
    TTA row it lacks); never train it again."""
    name = f"{done.model} fold {done.fold}"
    weights = done.members or [done.weights]
    shown = " + ".join(weights)
    where = _fused_dir(store.path.parent, done.model, done.fold) if done.members else None
    here = all(Path(w).is_file() for w in weights)
    if done.eval != settings and not here:
        log(f"{name}: done, but its weights {shown} are not here: its results stay as "
            f"evaluated with other settings ({_settings_diff(done.eval, settings)})")
    elif done.eval != settings:
        log(f"{name}: done; evaluation settings changed, evaluating {shown} again")
        store.add(_evaluated(cfg, weights, split_path, done.fold, done.model, done.epochs,
                             tta or done.ap50_tta is not None, where))
    elif tta and done.ap50_tta is None and here:
        log(f"{name}: done; evaluating {shown} with flip TTA")
        store.add(replace(done, ap50_tta=_evaluate(cfg, weights, split_path, done.fold, True,
                                                   where)["ap50"]))
    elif tta and done.ap50_tta is None:
        log(f"{name}: done, but its weights {shown} are not here: no flip TTA evaluation")
    else:
        log(f"{name}: done, skipped (results in {store.path})")


def _evaluate(cfg: TrainConfig, weights: Sequence[str | Path], split_path: Path, fold: int,
              tta: bool, where: Path | None = None) -> dict[str, Any]:
    """The report of ``weights`` (several: fused) on the fold's test videos, written to
    ``where`` (default: beside the one checkpoint), in ``test/`` or ``test-tta/``."""
    where = where or Path(weights[0]).parent
    return report.evaluate_checkpoint(
        [Path(w) for w in weights] if len(weights) > 1 else Path(weights[0]), cfg.data.path,
        fmt=cfg.data.format, split=split_path, part="test", fold=fold,
        out=where / ("test-tta" if tta else "test"), device=cfg.device,
        strict=cfg.data.strict, skip_bad_frames=cfg.data.skip_bad_frames,
        classes=ClassMap.from_file(cfg.data.classes) if cfg.data.classes else None,
        postprocess=cfg.eval, tta=tta)


def _run_fold(cfg: TrainConfig, spec: ModelSpec, split_path: Path, fold: int, out: Path,
              progress: bool, log: Callable[[str], None], tta: bool = False) -> FoldResult:
    """Train (or resume) one model on one fold and evaluate it on the fold's test videos."""
    run_dir = out / spec.name / f"fold{fold}"
    fold_cfg = replace(cfg, out=str(run_dir), seed=cfg.seed if spec.seed is None else spec.seed,
                       data=replace(cfg.data, split=str(split_path), fold=fold),
                       model=replace(cfg.model, variant=spec.variant, branches=spec.branches))
    resume = (run_dir / "last.pt").is_file()  # a finished run resumes to itself at once
    log(f"{spec.name} fold {fold}: {'resuming' if resume else 'training'} in {run_dir}")
    summary = trainer.fit(fold_cfg, resume=resume, progress=progress)
    weights = run_dir / "best.pt"
    if not weights.is_file():  # validation AP was never defined (no ground truth in val)
        weights = run_dir / "last.pt"
    return _evaluated(cfg, [str(weights)], split_path, fold, spec.name,
                      int(summary.get("epochs", 0)), tta)


def _settings_diff(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    old = old or {}
    return ", ".join(f"{k}: {old.get(k)} -> {v}" for k, v in new.items() if old.get(k) != v)


def _eval_settings(cfg: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(cfg.eval)))  # tuples as lists, as read back


def _evaluated(cfg: TrainConfig, weights: Sequence[str], split_path: Path, fold: int, model: str,
               epochs: int, tta: bool, where: Path | None = None) -> FoldResult:
    """The fold's results entry: ``weights`` (several: fused) evaluated on its test videos (and
    with flip TTA)."""
    rep = _evaluate(cfg, weights, split_path, fold, False, where)
    per_class = rep["operating_point"]["per_class"]
    fused = len(weights) > 1
    return FoldResult(model, fold, list(rep["videos"]), int(rep["frames"]),
                      {c: float(a) for c, a in rep["ap50"].items()},
                      {c: int(per_class[c]["ground_truth"]) for c in rep["ap50"]},
                      "" if fused else str(weights[0]), epochs,
                      _evaluate(cfg, weights, split_path, fold, True, where)["ap50"]
                      if tta else None, _eval_settings(cfg),
                      [str(w) for w in weights] if fused else None)
