"""Sperm concentration from the cells counted in the imaged volume, with a Poisson interval.

One video images one field of the chamber: the cells in it are counted once per frame, and the
same cells are counted again in the next frame, so the number of *independent* cells counted is
the field's mean count per frame, not the sum over frames. The interval is the exact (Garwood)
Poisson interval on that number, summed over the sample's fields; WHO asks for at least 200
cells per replicate before a concentration is read with confidence.

    concentration [10^6/mL] = cells / (area_um2 * depth_um * 1e-12 mL/µm³) * dilution / 1e6
"""

from __future__ import annotations

from dataclasses import dataclass

# scipy.special's chi-square functions are what scipy.stats.chi2 evaluates; importing them
# instead of scipy.stats gives the same numbers without a second of start-up per analysis
from scipy.special import chdtrc, chdtri

#: WHO: count at least 200 spermatozoa per replicate (a sampling error of about 7 %).
MIN_CELLS = 200
UM3_PER_ML = 1e12


def field_volume_ml(width_px: int, height_px: int, um_per_px: float, depth_um: float) -> float:
    """The imaged volume of one field, in mL."""
    return width_px * height_px * um_per_px**2 * depth_um / UM3_PER_ML


def poisson_interval(count: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean after observing ``count``."""
    a = (1 - level) / 2
    lo = 0.0 if count <= 0 else chdtri(2 * count, 1 - a) / 2  # chi2.ppf(a, 2 count) / 2
    hi = chdtri(2 * count + 2, a) / 2
    return float(lo), float(hi)


@dataclass(frozen=True)
class Field:
    """One video's contribution: mean sperm per frame and the volume it images (mL)."""

    cells: float
    volume_ml: float


@dataclass
class Concentration:
    """Concentration in million/mL with its 95 % interval and how many cells it rests on."""

    m_per_ml: float
    ci95_m_per_ml: tuple[float, float]
    cells_counted: float
    fields: int
    volume_nl: float
    dilution: float
    warnings: list[str]

    def to_json(self) -> dict[str, object]:
        return {"m_per_ml": round(self.m_per_ml, 3),
                "ci95_m_per_ml": [round(v, 3) for v in self.ci95_m_per_ml],
                "cells_counted": round(self.cells_counted, 1), "fields": self.fields,
                "imaged_volume_nl": round(self.volume_nl, 4), "dilution": self.dilution,
                "below_reference": self.m_per_ml < 16.0, "reference_limit_m_per_ml": 16.0,
                "warnings": list(self.warnings)}


def concentration(fields: list[Field], dilution: float) -> Concentration:
    """Combine the fields (videos) of one sample."""
    if not fields:
        raise ValueError("no field to compute a concentration from")
    cells = sum(f.cells for f in fields)
    volume = sum(f.volume_ml for f in fields)
    scale = dilution / volume / 1e6
    lo, hi = poisson_interval(cells)
    warnings = []
    if cells < MIN_CELLS:
        warnings.append(f"only {cells:.0f} cells counted (WHO asks for at least {MIN_CELLS} per "
                        f"replicate): the interval is wide; record more fields")
    return Concentration(cells * scale, (lo * scale, hi * scale), cells, len(fields),
                         volume * 1e6, dilution, warnings)


def replicates_agree(fields: list[Field], alpha: float = 0.05) -> dict[str, object]:
    """Do the fields' counts agree with one concentration? Poisson dispersion test (expected count
    of a field in proportion to its volume); for two equal fields it is WHO's rule that the
    difference of two counts must stay within 1.96 * sqrt(sum)."""
    if len(fields) < 2:
        return {"tested": False, "reason": "one field"}
    total = sum(f.cells for f in fields)
    vol = sum(f.volume_ml for f in fields)
    if total <= 0:
        return {"tested": False, "reason": "no cells counted"}
    expected = [total * f.volume_ml / vol for f in fields]
    chi2 = sum((f.cells - e) ** 2 / e for f, e in zip(fields, expected, strict=True))
    pval = float(chdtrc(len(fields) - 1, chi2))  # chi2.sf
    return {"tested": True, "agree": pval >= alpha, "p_value": round(pval, 4),
            "chi2": round(chi2, 3), "fields": len(fields)}
