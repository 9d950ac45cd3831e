"""WHO motility grades (6th edition, 2021) and the lower reference limits they are read against.

Grades, from the net progression of a track over 1 s (drift removed):

- rapid progressive: >= 25 µm/s;
- slowly progressive: 5 to < 25 µm/s;
- non-progressive: < 5 µm/s, but the head moves (its average-path speed VAP is at least
  ``motile_vap_um_per_s``);
- immotile: neither.

Only tracks at least 1 s long are graded; shorter ones are counted and reported as ungraded.
The WHO manual names no number for "the head moves"; 5 µm/s VAP is above what detection noise
alone gives a still head at 30 fps (about 2-4 µm/s for a 0.2-0.35 µm localisation error after
the 5-point average) and below the slowest circling a non-progressive head shows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRADES = ("rapid_progressive", "slow_progressive", "non_progressive", "immotile")
GRADE_LABELS = {"rapid_progressive": "rapid progressive (a)",
                "slow_progressive": "slowly progressive (b)",
                "non_progressive": "non-progressive (c)", "immotile": "immotile (d)"}

#: WHO laboratory manual for the examination and processing of human semen, 6th edition (2021),
#: lower reference limits (5th centiles, 95 % CI) from Campbell et al., Hum Reprod Update 2021;
#: 27(4):745-761 (docs/analysis.md cites them).
REFERENCE_LIMITS = {
    "progressive_motility_pct": (30.0, "29-31"),
    "total_motility_pct": (42.0, "40-43"),
    "concentration_m_per_ml": (16.0, "15-18"),
}


@dataclass(frozen=True)
class GradeConfig:
    """Thresholds in µm/s (WHO 6th ed.) and the shortest gradable track."""

    rapid_um_per_s: float = 25.0
    progressive_um_per_s: float = 5.0
    motile_vap_um_per_s: float = 5.0
    min_seconds: float = 1.0


def grade(net_1s_um_per_s: float | None, vap_um_per_s: float | None,
          config: GradeConfig | None = None) -> str | None:
    """The grade of one track, or None when it is too short to grade."""
    cfg = config or GradeConfig()
    if net_1s_um_per_s is None:
        return None
    if net_1s_um_per_s >= cfg.rapid_um_per_s:
        return "rapid_progressive"
    if net_1s_um_per_s >= cfg.progressive_um_per_s:
        return "slow_progressive"
    if vap_um_per_s is not None and vap_um_per_s >= cfg.motile_vap_um_per_s:
        return "non_progressive"
    return "immotile"


@dataclass
class Motility:
    """Grade counts of one video or sample, with percentages and WHO's composite numbers."""

    counts: dict[str, int]
    ungraded: int

    @property
    def graded(self) -> int:
        return sum(self.counts.values())

    def pct(self, grade_name: str) -> float | None:
        return 100.0 * self.counts[grade_name] / self.graded if self.graded else None

    @property
    def progressive_pct(self) -> float | None:
        if not self.graded:
            return None
        return 100.0 * (self.counts["rapid_progressive"] + self.counts["slow_progressive"]
                        ) / self.graded

    @property
    def total_motility_pct(self) -> float | None:
        if not self.graded:
            return None
        return 100.0 * (self.graded - self.counts["immotile"]) / self.graded

    def to_json(self) -> dict[str, object]:
        limits = {k: {"limit": v[0], "ci95": v[1]} for k, v in REFERENCE_LIMITS.items()
                  if k.endswith("_pct")}
        r = lambda v: None if v is None else round(v, 2)  # noqa: E731
        return {"graded_tracks": self.graded, "ungraded_tracks": self.ungraded,
                "counts": dict(self.counts),
                "percent": {g: r(self.pct(g)) for g in GRADES},
                "progressive_pct": r(self.progressive_pct),
                "total_motility_pct": r(self.total_motility_pct),
                "below_reference": {
                    "progressive_motility_pct": _below(self.progressive_pct,
                                                       "progressive_motility_pct"),
                    "total_motility_pct": _below(self.total_motility_pct, "total_motility_pct")},
                "reference_limits": limits}


def _below(value: float | None, key: str) -> bool | None:
    return None if value is None else value < REFERENCE_LIMITS[key][0]


def tally(grades: list[str | None]) -> Motility:
    counts = {g: 0 for g in GRADES}
    ungraded = 0
    for g in grades:
        if g is None:
            ungraded += 1
        else:
            counts[g] += 1
    return Motility(counts, ungraded)


def combine(parts: list[Motility]) -> Motility:
    return Motility({g: sum(p.counts[g] for p in parts) for g in GRADES},
                    sum(p.ungraded for p in parts))


def replicates_agree(parts: list[Motility], alpha: float = 0.05) -> dict[str, object]:
    """WHO's check that replicate assessments agree: are the grade proportions of the replicates
    the same within sampling error? (chi-square test of homogeneity of the grade counts, the
    general form of the manual's table of acceptable differences between two percentages)."""
    table = np.array([[p.counts[g] for g in GRADES] for p in parts if p.graded])
    if len(table) < 2:
        return {"tested": False, "reason": "fewer than two replicates with graded tracks"}
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return {"tested": True, "agree": True, "p_value": 1.0, "replicates": len(table)}
    from scipy import stats  # only here: a second of import that one video never needs

    chi2, pval, _, _ = stats.chi2_contingency(table)
    return {"tested": True, "agree": bool(pval >= alpha), "p_value": round(float(pval), 4),
            "chi2": round(float(chi2), 3), "replicates": len(table)}
