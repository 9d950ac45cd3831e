"""``active eval``: every number a reader of the paper checks, for one checkpoint on one dataset.

It scores a trained checkpoint (or an ensemble of them) and trains nothing: cross-validation and
the ablation, which train and then call :func:`evaluate_checkpoint`, are
:mod:`active.experiments.crossval`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from active.data.ap import ClassAP, ImageResult, evaluate_ap, mean_ap
from active.data.boxes import box_iou


def operating_point(results: Sequence[ImageResult], class_names: Sequence[str],
                    score_threshold: float, iou: float = 0.5) -> dict[str, Any]:
    """Precision/recall per class at ``score_threshold`` and the class confusion matrix.

    Detections above the threshold are matched greedily by score to ground truth of *any*
    class at IoU >= ``iou``; ``confusion[gt][pred]`` counts the matches, with a ``missed`` column
    (ground truth left unmatched) and a ``background`` row (detections matching nothing).
    """
    nc = len(class_names)
    conf = np.zeros((nc + 1, nc + 1), dtype=np.int64)  # last row: background, last col: missed
    for r in results:
        keep = r.scores >= score_threshold
        boxes, labels = r.boxes[keep], r.labels[keep]
        order = np.argsort(-r.scores[keep], kind="stable")
        used = np.zeros(len(r.gt_labels), bool)
        ious = box_iou(boxes, r.gt_boxes) if len(boxes) and len(r.gt_boxes) else None
        for j in order:
            if ious is not None:
                cand = np.where(used, -1.0, ious[j])
                g = int(np.argmax(cand))
                if cand[g] >= iou:
                    used[g] = True
                    conf[r.gt_labels[g], labels[j]] += 1
                    continue
            conf[nc, labels[j]] += 1
        for g in np.flatnonzero(~used):
            conf[r.gt_labels[g], nc] += 1
    per_class = {}
    for c, name in enumerate(class_names):
        tp = int(conf[c, c])
        n_det, n_gt = int(conf[:, c].sum()), int(conf[c, :].sum())
        per_class[name] = {"precision": tp / n_det if n_det else float("nan"),
                           "recall": tp / n_gt if n_gt else float("nan"),
                           "tp": tp, "detections": n_det, "ground_truth": n_gt}
    labels_ = [*class_names]
    return {"score_threshold": score_threshold, "per_class": per_class,
            "confusion": {"rows_ground_truth": [*labels_, "background"],
                          "cols_predicted": [*labels_, "missed"], "matrix": conf.tolist()}}


def plot_pr(per_class: dict[str, ClassAP], path: Path) -> None:
    """Precision-recall curve per class, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from active.utils.io import atomic_path

    fig, ax = plt.subplots(figsize=(5, 4))
    for name, c in per_class.items():
        if c.num_gt:
            env = np.maximum.accumulate(c.precision[::-1])[::-1] if len(c.precision) else []
            ax.plot(c.recall, env, label=f"{name} AP50={c.ap:.3f}")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title="Precision-recall at IoU 0.5")
    ax.legend(loc="lower left")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def evaluate_checkpoint(weights: str | Path | Sequence[str | Path], data: str | Path,
                        fmt: str = "auto",
                        split: str | Path | None = None, part: str = "test", fold: int = 0,
                        out: str | Path | None = None, score_threshold: float = 0.25,
                        iou_threshold: float = 0.45, lenient: bool = False,
                        device: str = "auto", strict: bool = False,
                        skip_bad_frames: bool = False,
                        imgsz: tuple[int, int] | None = None, classes: Any = None,
                        postprocess: Any = None, tta: bool = False, merge: bool = True,
                        rescorer: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a checkpoint on a dataset (or one part of a split); returns the report dict
    (and writes ``report.json`` and ``pr_curve.png`` into ``out`` when given). A number that is
    undefined (AP of a class without ground truth, precision without a detection) is NaN in the
    returned dict, null in report.json and ``-`` in the text: never ``nan`` in what a user reads.

    ``classes`` is the dataset's :class:`~active.data.classes.ClassMap` (default: sperm/impurity
    with SVIA's names); ``postprocess`` a full :class:`PostProcessConfig` for the AP detections
    (default: the evaluation one, score 0.001, with ``iou_threshold`` and ``merge``). ``tta``: flip
    test-time augmentation (:mod:`active.models.tta`), recorded in the report. ``rescorer``:
    a :class:`~active.models.rescore.Rescorer` file that rescores every detection. Several
    ``weights``: an :class:`~active.models.ensemble.Ensemble` of them, their boxes fused
    (which merges: ``merge`` does not apply).
    """
    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan, apply_fold
    from active.evaluation.coco_eval import coco_evaluate
    from active.models.checkpoint import checkpoint_coder, load_model
    from active.models.device import pick_device
    from active.models.postprocess_config import PostProcessConfig
    from active.models.predict import predict_records
    from active.utils.io import write_json

    dev = pick_device(device)
    members = [weights] if isinstance(weights, str | Path) else list(weights)
    if len(members) > 1:  # an ensemble: its fusion does the flips itself
        from active.models.ensemble import load_ensemble

        model, ckpt = load_ensemble(members, dev, tta=tta)
    else:
        model, ckpt = load_model(members[0], dev)
    from active.data.classes import DEFAULT_CLASSES

    records = load_dataset(data, fmt, classes or DEFAULT_CLASSES, strict=strict,
                           skip_bad_frames=skip_bad_frames)
    if split is not None:
        records = apply_fold(records, SplitPlan.load(split).folds[fold], Path(split))[part]
    coder = checkpoint_coder(ckpt)
    cfg = postprocess or PostProcessConfig.for_evaluation(iou_threshold=iou_threshold,
                                                          merge=merge)
    size = imgsz or tuple(model.config.imgsz)
    results = predict_records(model, records, size, coder, cfg, dev,
                              tta=tta and len(members) == 1)
    names = model.class_names
    rescore_info = None
    if rescorer is not None:
        from active.models.rescore import Rescorer

        second = Rescorer.load(rescorer)
        second.check_classes(names, members[0])
        results = second.rescore_results(results, [r.image for r in records])
        rescore_info = {"file": str(rescorer), "weight": second.weight}
    aps = evaluate_ap(results, names)
    report: dict[str, Any] = {
        "weights": str(members[0]) if len(members) == 1 else [str(w) for w in members],
        "data": str(data), "frames": len(records),
        "videos": sorted({r.video_id for r in records}),
        "split": None if split is None else {"file": str(split), "fold": fold, "part": part},
        "imgsz": list(size), "tta": tta, "merge": cfg.merge or len(members) > 1,
        "ensemble": len(members), "rescorer": rescore_info,
        "ap50": {n: c.ap for n, c in aps.items()}, "map50": mean_ap(aps),
        "coco": coco_evaluate(results, names),
        "operating_point": operating_point(results, names, score_threshold),
    }
    if lenient:
        report["ap50_lenient_todcnn"] = {n: c.ap for n, c in
                                         evaluate_ap(results, names, lenient_px=3.0).items()}
    report["text"] = format_report(report)
    if out is not None:
        out = Path(out)
        write_json(out / "report.json",
                   _defined({k: v for k, v in report.items() if k != "text"}))
        plot_pr(aps, out / "pr_curve.png")
    return report


def format_report(r: dict[str, Any]) -> str:
    lines = [f"{r['frames']} frames of {len(r['videos'])} videos at input "
             f"{r['imgsz'][0]}x{r['imgsz'][1]}"
             + (f", an ensemble of {r['ensemble']} models (boxes fused)"
                if r.get("ensemble", 1) > 1 else "")
             + (" with flip TTA (4 views fused)" if r.get("tta") else "")
             + ("" if r.get("merge", True) else ", plain NMS (no merging)")
             + (f", rescored by {r['rescorer']['file']} (weight {r['rescorer']['weight']})"
                if r.get("rescorer") else ""),
             f"{'class':<10} {'AP50':>7} {'precision':>10} {'recall':>7}  "
             f"(at score >= {r['operating_point']['score_threshold']})"]
    for name, ap in r["ap50"].items():
        op = r["operating_point"]["per_class"][name]
        lines.append(f"{name:<10} {_cell(ap):>7} {_cell(op['precision']):>10} "
                     f"{_cell(op['recall']):>7}")
    lines.append(f"mAP50 {_cell(r['map50'])}   COCO mAP50:95 {_cell(r['coco']['map50_95'])}")
    if "ap50_lenient_todcnn" in r:
        lines.append("lenient (TOD-CNN rule, not the paper's metric): " + ", ".join(
            f"{k} {_cell(v)}" for k, v in r["ap50_lenient_todcnn"].items()))
    m = r["operating_point"]["confusion"]
    lines.append("confusion (rows ground truth, columns predicted): " + "  ".join(
        f"{row}: {vals}" for row, vals in zip(m["rows_ground_truth"], m["matrix"], strict=True)))
    return "\n".join(lines)


def _cell(v: float | None) -> str:
    """A ratio as text: 4 decimals, ``-`` where it is undefined."""
    return "-" if v is None or v != v else f"{v:.4f}"


def _defined(obj: Any) -> Any:
    """``obj`` with every NaN float (nested in dicts and lists) replaced by None, for JSON."""
    if isinstance(obj, float):
        return None if obj != obj else obj
    if isinstance(obj, dict):
        return {k: _defined(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_defined(v) for v in obj]
    return obj
