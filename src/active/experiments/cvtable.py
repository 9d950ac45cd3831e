"""What a cross-validation experiment holds and how it is tabled: the rows (:class:`ModelSpec`),
every row's per-fold test AP50 (:class:`CVResult`, with mean ± std and paired differences) and
the Markdown of the paper's Table I and Table II. Running the experiment is
:mod:`active.experiments.crossval`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from active.data.splits import SplitPlan
from active.experiments.cvstore import FoldResult

BOTH = ("b1", "b2")
ABLATION_BRANCHES: tuple[tuple[str, ...], ...] = (("b1",), ("b2",), BOTH)
_PAPER_ORDER = ("impurity", "sperm")  # the paper's tables list impurity first


@dataclass(frozen=True)
class ModelSpec:
    """One row of the experiment: a variant, the DBFEN branches it is built with, and whether it
    has a second stage (``model.second_stage``; the same for every row of one experiment, so it
    names the row, not the folder); ``seed``: a training seed other than the config's; ``fused``:
    the names of the rows whose runs this row fuses (an ensemble, trained by those rows)."""

    variant: str
    branches: tuple[str, ...] = BOTH
    second_stage: bool = False
    seed: int | None = None
    fused: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """Folder and results key: ``active-i``, ``active-i-b1`` for a single branch,
        ``active-i-seed1`` for another training seed, ``active-i-3seeds`` for three fused."""
        name = self.variant if self.branches == BOTH else (
            f"{self.variant}-{'+'.join(self.branches)}")
        if self.fused:
            return f"{name}-{len(self.fused)}seeds"
        return name if self.seed is None else f"{name}-seed{self.seed}"

    @property
    def label(self) -> str:
        """As the paper writes it: ``ACTIVE-I`` (``ACTIVE-I (b1)``, ``ACTIVE-I + second stage``),
        then ``, seed 1`` or ``, 3 seeds fused``."""
        name = self.variant.upper()
        if self.branches != BOTH:
            name = f"{name} ({'+'.join(self.branches)})"
        name += " + second stage" if self.second_stage else ""
        if self.fused:
            return f"{name}, {len(self.fused)} seeds fused"
        return name if self.seed is None else f"{name}, seed {self.seed}"


@dataclass(frozen=True)
class ClassSummary:
    """Mean and sample standard deviation (ddof 1) over the folds where the class is defined."""

    mean: float  # NaN when no fold has ground truth of the class
    std: float  # NaN with fewer than two contributing folds
    folds: int  # folds that contributed
    total: int  # folds of the split
    evaluated: int = 0  # folds with a result of the model at all (with the class or not)


@dataclass
class CVResult:
    """Every model's per-fold test AP50 on one split."""

    out: Path
    split: SplitPlan
    models: list[ModelSpec]
    results: list[FoldResult]

    @property
    def k(self) -> int:
        return len(self.split.folds)

    @property
    def class_names(self) -> list[str]:
        """Classes in the paper's order (impurity, sperm), then any others as evaluated (the
        paper's two while nothing is evaluated yet)."""
        seen = list(dict.fromkeys(c for r in self.results for c in r.ap50)) or list(_PAPER_ORDER)
        return [c for c in _PAPER_ORDER if c in seen] + [c for c in seen if c not in _PAPER_ORDER]

    def fold_result(self, model: str, fold: int) -> FoldResult | None:
        return next((r for r in self.results if r.model == model and r.fold == fold), None)

    def has_tta(self, model: str) -> bool:
        """Whether any fold of ``model`` was also evaluated with flip TTA."""
        return any(r.ap50_tta is not None for r in self.results if r.model == model)

    def summary(self, model: str, cls: str, tta: bool = False) -> ClassSummary:
        evaluated = [_aps(r, tta) for r in self.results if r.model == model
                     and (not tta or r.ap50_tta is not None)]
        aps = [a for a in (e.get(cls, float("nan")) for e in evaluated) if not math.isnan(a)]
        mean = float(np.mean(aps)) if aps else float("nan")
        std = float(np.std(aps, ddof=1)) if len(aps) > 1 else float("nan")
        return ClassSummary(mean, std, len(aps), self.k, len(evaluated))

    def paired_difference(self, model: str, reference: str, cls: str, tta: bool = False
                          ) -> tuple[float, list[int]]:
        """Mean AP50 of ``model`` minus ``reference`` over the folds where both have a value
        for ``cls`` (NaN and no folds when they share none); ``tta``: of the flip-TTA
        evaluations. Means over different sets of folds are not comparable when the held-out
        videos differ as much as the shared sample's; this is."""
        diffs, folds = [], []
        for i in range(self.k):
            a, b = self.fold_result(model, i), self.fold_result(reference, i)
            if a is None or b is None:
                continue
            x, y = _aps(a, tta).get(cls, float("nan")), _aps(b, tta).get(cls, float("nan"))
            if not (math.isnan(x) or math.isnan(y)):
                diffs.append(x - y)
                folds.append(i)
        return (float(np.mean(diffs)) if diffs else float("nan")), folds


def _aps(r: FoldResult, tta: bool) -> dict[str, float]:
    return (r.ap50_tta or {}) if tta else r.ap50


def percent(ap: float) -> str:
    """AP as a percentage cell: two decimals, "n/a" for NaN."""
    return "n/a" if math.isnan(ap) else f"{100 * ap:.2f}"


def _mean_cell(s: ClassSummary) -> str:
    if s.evaluated == 0:
        return "-"  # nothing evaluated yet, as a fold cell without a result
    if s.folds == 0:
        return "n/a"
    cell = percent(s.mean) + (f" ± {100 * s.std:.2f}" if s.folds > 1 else "")
    return cell + (f" ({s.folds} of {s.total} folds)" if s.folds < s.total else "")


def _fold_cell(result: CVResult, model: str, fold: int, classes: Sequence[str],
               tta: bool = False) -> str:
    r = result.fold_result(model, fold)
    if r is None or (tta and r.ap50_tta is None):
        return "-"
    return " / ".join(percent(_aps(r, tta).get(c, float("nan"))) for c in classes)


def _abbrev(name: str) -> str:
    return {"impurity": "I", "sperm": "S"}.get(name, name)


def _notes(result: CVResult) -> list[str]:
    missing = [f"{r.model} fold {r.fold} ({c})" for r in result.results for c, a in r.ap50.items()
               if math.isnan(a)]
    if not missing:
        return []
    return ["", "n/a: no ground truth of the class in the fold's test videos: "
            + "; ".join(missing) + ". Means leave those folds out."]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def format_table_i(result: CVResult) -> str:
    """Markdown laid out as the paper's Table I: a row per model, mean ± std of AP50 (%) per
    class over the folds, then one column per fold (``AP_I / AP_S``)."""
    classes = result.class_names
    folds = range(result.k)
    header = ["Model", *(f"AP_{_abbrev(c)} (%)" for c in classes),
              *(f"fold {i} ({' / '.join(_abbrev(c) for c in classes)})" for i in folds)]
    rows = [[m.label + (" + flip TTA" if tta else ""),
             *(_mean_cell(result.summary(m.name, c, tta)) for c in classes),
             *(_fold_cell(result, m.name, i, classes, tta) for i in folds)]
            for m in result.models for tta in (False, True)
            if not tta or result.has_tta(m.name)]
    title = (f"Table I: AP50 (%) of {result.k}-fold cross-validation by video (split seed "
             f"{result.split.seed}); mean ± sample standard deviation over the folds."
             + (" '+ flip TTA': the same weights evaluated with flip test-time augmentation "
                "(4 views fused), not a paper setting." if any(
                    result.has_tta(m.name) for m in result.models) else "")
             + (" 'seeds fused': each fold's runs of those training seeds as one ensemble "
                "(their boxes fused before NMS), not a paper setting." if any(
                    m.fused for m in result.models) else ""))
    return "\n".join([title, "", *_table(header, rows), *_notes(result)])


def format_table_ii(result: CVResult) -> str:
    """Markdown laid out as the paper's Table II: per branch setting and class, mean ± std of
    AP50 (%) over the folds, then one column per fold; one table per variant."""
    classes = result.class_names
    blocks = []
    for variant in dict.fromkeys(m.variant for m in result.models):
        rows = []
        for m in (m for m in result.models if m.variant == variant):
            marks = ["✓" if b in m.branches else "" for b in BOTH]
            for c in classes:
                r = [result.fold_result(m.name, i) for i in range(result.k)]
                rows.append([*marks, c.capitalize(), _mean_cell(result.summary(m.name, c)),
                             *("-" if x is None else percent(x.ap50.get(c, float("nan")))
                               for x in r)])
        header = ["DBFEN1", "DBFEN2", "Category", "AP (%)", *(f"fold {i}" for i in
                                                               range(result.k))]
        blocks += [f"Table II: branch ablation of {variant.upper()}, AP50 (%) over {result.k} "
                   f"folds by video (split seed {result.split.seed}); mean ± sample standard "
                   "deviation over the folds.", "", *_table(header, rows), ""]
    return "\n".join(blocks[:-1] + _notes(result))
