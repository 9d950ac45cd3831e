"""A sample's row of the catalogue from its videos' rows: the analysis layer's own combination
(:func:`active.analysis.sample.combine_fields`: pooled grades, concentration over the fields with
its Poisson interval, the replicate checks), never a second copy of it.

What a video keeps for this (its ``parts``, JSON): its grade counts, its counted field (cells per
frame and imaged volume, full precision) and the kinematics of its graded sperm tracks, so a
sample's medians pool the tracks of all its fields as the single-sample report does.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from active.analysis.calibration import Calibration
from active.analysis.concentration import MIN_CELLS, Field
from active.analysis.grades import GRADES, REFERENCE_LIMITS, Motility
from active.analysis.sample import VideoAnalysis, combine_fields

#: Kinematics pooled per sample: (attribute of Kinematics, column of the samples table).
KINEMATICS = (("vcl", "vcl_median_um_per_s"), ("vsl", "vsl_median_um_per_s"),
              ("vap", "vap_median_um_per_s"), ("lin", "lin_median"),
              ("alh_mean", "alh_median_um"), ("bcf_hz", "bcf_median_hz"))

#: The per-sample columns of the cohort table, in order (the ``samples`` table's, less its JSON).
COLUMNS = ("sample_id", "status", "videos", "done", "failed", "um_per_px", "chamber_depth_um",
           "dilution", "concentration_m_per_ml", "concentration_ci95_low",
           "concentration_ci95_high", "cells_counted", "graded_tracks",
           *(f"{g}_pct" for g in GRADES), "progressive_pct", "total_motility_pct",
           *(c for _, c in KINEMATICS), "below_reference", "low_count", "notes", "model_sha256",
           "updated_at")


def _finite(v: Any) -> float | None:
    return float(v) if v is not None and math.isfinite(float(v)) else None


def video_parts(va: VideoAnalysis) -> dict[str, Any]:
    """What a sample needs of one analysed video (module docstring)."""
    kins = [r.kinematics for r in va.sperm_tracks if r.grade is not None and r.kinematics]
    return {
        "motility": None if va.motility is None else {"counts": dict(va.motility.counts),
                                                      "ungraded": va.motility.ungraded},
        "field": None if va.field is None else {"cells": va.field.cells,
                                                "volume_ml": va.field.volume_ml},
        "kinematics": {attr: [x for k in kins if (x := _finite(getattr(k, attr))) is not None]
                       for attr, _ in KINEMATICS},
    }


def _round(v: float | None, digits: int = 3) -> float | None:
    return None if v is None else round(v, digits)


def sample_row(sample_id: str, calibration: Calibration, members: list[Any],
               updated_at: str) -> dict[str, Any]:
    """The ``samples`` row of one sample from its members' catalogue rows (``status``,
    ``parts``, ``error``, ``path``). Only done videos are combined; the status says whether
    some are still running (``running``) or failed (``partial``, or ``failed`` when none is
    done)."""
    done = [m for m in members if m["status"] == "done"]
    failed = [m for m in members if m["status"] == "failed"]
    running = len(members) - len(done) - len(failed)
    status = ("running" if running else "failed" if not done
              else "partial" if failed else "done")
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(sample_id=sample_id, status=status, videos=len(members), done=len(done),
               failed=len(failed), um_per_px=calibration.um_per_px,
               chamber_depth_um=calibration.chamber_depth_um, dilution=calibration.dilution,
               updated_at=updated_at, low_count=0)
    models = sorted({m["model_sha256"] for m in done if m["model_sha256"]})
    row["model_sha256"] = ",".join(models) or None
    notes = [f"{m['path']}: failed: {m['error']}" for m in failed]
    if running:
        notes.append(f"{running} video(s) not analysed yet")
    result: dict[str, Any] = {"motility": None, "concentration": None, "replicates": None}
    if done:
        parts = [json.loads(m["parts"]) for m in done]
        motilities = [None if p["motility"] is None
                      else Motility(p["motility"]["counts"], p["motility"]["ungraded"])
                      for p in parts]
        fields = [None if p["field"] is None else Field(**p["field"]) for p in parts]
        motility, conc, agreement, more = combine_fields(calibration, motilities, fields)
        notes.extend(more)
        result = {"motility": None if motility is None else motility.to_json(),
                  "concentration": None if conc is None else conc.to_json(),
                  "replicates": agreement}
        if motility is not None:
            row["graded_tracks"] = motility.graded
            for g in GRADES:
                row[f"{g}_pct"] = _round(motility.pct(g), 2)
            row["progressive_pct"] = _round(motility.progressive_pct, 2)
            row["total_motility_pct"] = _round(motility.total_motility_pct, 2)
        if conc is not None:
            row["concentration_m_per_ml"] = _round(conc.m_per_ml)
            row["concentration_ci95_low"] = _round(conc.ci95_m_per_ml[0])
            row["concentration_ci95_high"] = _round(conc.ci95_m_per_ml[1])
            row["cells_counted"] = _round(conc.cells_counted, 1)
            row["low_count"] = int(conc.cells_counted < MIN_CELLS)
        for attr, column in KINEMATICS:
            values = [v for p in parts for v in p["kinematics"][attr]]
            if values:
                row[column] = _round(float(np.median(values)))
        if calibration.um_per_px is None:  # medians in px: not comparable across samples
            for _, column in KINEMATICS:
                row[column] = None
    row["below_reference"] = ";".join(below_reference(row)) or None
    row["notes"] = "; ".join(notes) or None
    row["result"] = json.dumps({**result, "notes": notes})
    return row


def below_reference(row: dict[str, Any]) -> list[str]:
    """The WHO lower reference limits (6th ed.) a sample's row falls below."""
    values = {"progressive_motility_pct": row.get("progressive_pct"),
              "total_motility_pct": row.get("total_motility_pct"),
              "concentration_m_per_ml": row.get("concentration_m_per_ml")}
    return [k for k, v in values.items() if v is not None and v < REFERENCE_LIMITS[k][0]]
