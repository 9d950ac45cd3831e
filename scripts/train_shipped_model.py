"""The recipe of the shipped default model (issue 30), in one resumable command.

    python scripts/train_shipped_model.py [--data ../shared/data/svia-sample] [--out runs/shipped]

1. ``active synth`` and pre-training on the synthetic clips (``configs/shipped-pretrain.yaml``).
2. Leave-one-video-out: for each video, the same fine-tuning recipe
   (``configs/shipped-finetune-plain.yaml``, 12,000 image passes) on the other videos, scored
   on the held-out one: sperm AP50, the count threshold that is unbiased there, count bias,
   precision and recall.
3. Polish (``configs/shipped-polish.yaml``, ``--polish none`` to skip): each fine-tuned model
   continues for about ``--polish-passes`` image passes on its real training videos plus the
   synthetic pre-training clips, at a low learning rate. The scores below are the polished
   models'.
4. The shipped model: the same recipe on every video. Its counting threshold is the mean of the
   folds' unbiased thresholds on their held-out videos (each fold's model never saw the video its
   threshold comes from); each fold is also scored at the mean of the *other* folds' thresholds,
   which is how a threshold chosen this way counts on a video it was not chosen on.
5. The stripped checkpoint (with the evaluation, operating point and scale in its ``meta``) and
   its ONNX twin are written to ``--ship`` (default: the bundled model in src/active/weights).

The fine-tuning runs go two at a time with one thread each (two cores); each run is given about
``--passes`` image passes, so a fold with fewer frames trains more epochs. Every finished step is
skipped when the script runs again, and an interrupted run resumes from its last.pt.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVIA_FOLDERS = ("Subset-A", "Frames from original videos", "original videos")


def sh(cmd: list[str], log: Path | None = None) -> subprocess.Popen:
    print("+", " ".join(cmd), flush=True)
    out = open(log, "a") if log else None  # noqa: SIM115  (closed with the process)
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT if out else None)


def run(cmd: list[str], log: Path | None = None) -> None:
    if sh(cmd, log).wait() != 0:
        sys.exit(f"failed: {' '.join(cmd)}" + (f" (log: {log})" if log else ""))


def epochs_for(frames: int, passes: int, stage_epochs: list[int]) -> list[int]:
    """Epochs per stage giving about ``passes`` image passes over ``frames`` frames, shared
    between the stages in the proportions of the config's ``stage_epochs``."""
    total = max(len(stage_epochs), round(passes / frames))
    weights = [e / sum(stage_epochs) for e in stage_epochs]
    out = [max(1, round(w * total)) for w in weights[:-1]]
    return [*out, max(1, total - sum(out))]


def train_cmd(config: Path, data: Path, start: Path, split: Path, fold: int, out: Path,
              frames: int, passes: int, threads: int = 1) -> list[str]:
    """``active train`` of ``config`` from ``start`` on the fold's training part of ``data``,
    with the epochs for about ``passes`` image passes over its ``frames``; resumes a run that
    was interrupted."""
    from active.training.config import load_config

    epochs = epochs_for(frames, passes, [s.epochs for s in load_config(config).stages])
    cmd = [sys.executable, "-m", "active", "train", "--config", str(config), "--data", str(data),
           "--weights", str(start), "--split", str(split), "--fold", str(fold), "--out",
           str(out), "--threads", str(threads), "--epochs", *map(str, epochs), "--quiet"]
    return cmd + (["--resume"] if (out / "last.pt").exists() else [])


def link_svia(sources: list[Path], dest: Path) -> None:
    """One SVIA-layout folder whose files are links to those of ``sources`` (real videos and
    synthetic clips side by side, nothing copied)."""
    for src in sources:
        for folder in SVIA_FOLDERS:
            if not (src / folder).is_dir():
                sys.exit(f"--polish needs SVIA-layout data; {src} has no '{folder}' folder")
            (dest / folder).mkdir(parents=True, exist_ok=True)
            for f in (src / folder).iterdir():
                link = dest / folder / f.name
                if not link.is_symlink():
                    link.symlink_to(f.resolve())


def with_videos(split: Path, extra: list[str], out: Path) -> Path:
    """``split`` with the ``extra`` videos added to every fold's training part."""
    import json

    from active.utils.io import write_json

    plan = json.loads(split.read_text())
    plan["videos"] = plan["videos"] + extra
    for fold in plan["folds"]:
        fold["train"] = fold["train"] + extra
    write_json(out, plan)
    return out


def lanes(jobs: list[tuple[list[str], Path, Path]], width: int) -> None:
    """Run (command, done-marker, log) jobs ``width`` at a time; a failed job stops the script."""
    pending = [j for j in jobs if not j[1].exists()]
    active: list[tuple[subprocess.Popen, tuple]] = []
    while pending or active:
        while pending and len(active) < width:
            job = pending.pop(0)
            job[1].parent.mkdir(parents=True, exist_ok=True)
            active.append((sh(job[0], job[2]), job))
        time.sleep(5)
        for proc, job in list(active):
            if proc.poll() is None:
                continue
            active.remove((proc, job))
            if proc.returncode != 0:
                for p, _ in active:
                    p.terminate()
                sys.exit(f"failed: {' '.join(job[0])} (log: {job[2]})")
            job[1].touch()


def score_fold(weights: Path, records: list, names_cls: str = "sperm") -> dict:
    """Detections of ``weights`` on ``records`` (score >= 0.001) kept for the threshold study."""
    from active.data.ap import ImageResult, evaluate_ap
    from active.evaluation.counting import count_bias, count_threshold
    from active.inference.predictor import Predictor

    pred = Predictor(weights, backend="torch", conf=0.001)
    sperm = pred.names.index(names_cls)
    results = [ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls)
               for r, d in zip(records, (pred(r.image) for r in records), strict=True)]
    aps = evaluate_ap(results, pred.names)
    return {"results": results, "names": pred.names, "sperm": sperm,
            "ap50": round(aps["sperm"].ap, 4), "t_unbiased": round(count_threshold(results, sperm),
                                                                    4),
            "at_0.25": count_bias(results, sperm, 0.25)}


def at_threshold(fold: dict, t: float) -> dict:
    from active.evaluation.counting import count_summary

    return count_summary(fold["results"], fold["names"], fold["sperm"], t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/svia-sample")
    ap.add_argument("--out", type=Path, default=Path("runs/shipped"))
    ap.add_argument("--pretrain", type=Path, default=ROOT / "configs/shipped-pretrain.yaml")
    ap.add_argument("--finetune", type=Path,
                    default=ROOT / "configs/shipped-finetune-plain.yaml")
    ap.add_argument("--passes", type=int, default=12000,
                    help="image passes per fine-tuning run")
    ap.add_argument("--polish", type=Path, default=ROOT / "configs/shipped-polish.yaml",
                    help="config of the polish step ('none': no polish)")
    ap.add_argument("--polish-passes", type=int, default=2000,
                    help="image passes per polish run")
    ap.add_argument("--ship", type=Path, default=ROOT / "src/active/weights/active-i-n-svia.pt")
    ap.add_argument("--um-per-px", type=float, default=0.35, help="the training frames' µm/px")
    ap.add_argument("--results", type=Path, default=None, help="also copy the LOVO table here")
    ap.add_argument("--no-ship", action="store_true", help="train and score, write no model")
    args = ap.parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    active = [sys.executable, "-m", "active"]
    t0 = time.time()

    if not (out / "synth" / "synth.json").exists():
        run([*active, "synth", "--videos", "6", "--frames", "30", "--seed", "100", "--out",
             str(out / "synth")])
    if not (out / "pretrain" / "done").exists():
        resume = ["--resume"] if (out / "pretrain" / "last.pt").exists() else []
        run([*active, "train", "--config", str(args.pretrain), "--data", str(out / "synth"),
             "--out", str(out / "pretrain"), "--threads", "2", "--quiet", *resume],
            out / "pretrain.log")
        (out / "pretrain" / "done").touch()
    lovo, every = out / "lovo.json", out / "all.json"
    if not lovo.exists():
        run([*active, "data", "split", str(args.data), "--folds", "4", "--no-val", "--out",
             str(lovo)])
    if not every.exists():
        run([*active, "data", "split", str(args.data), "--ratios", "1", "0", "0", "--out",
             str(every)])

    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan

    records = load_dataset(args.data)
    per_video: dict[str, int] = {}
    for r in records:
        per_video[r.video_id] = per_video.get(r.video_id, 0) + 1
    plan = SplitPlan.load(lovo)
    # (run name, split, fold, training frames): the model on every video, then the folds
    runs = [("final", every, 0, len(records)),
            *((f"fold{k}", lovo, k, sum(per_video[v] for v in f.train))
              for k, f in enumerate(plan.folds))]
    pretrained = out / "pretrain" / "best.pt"
    lanes([(train_cmd(args.finetune, args.data, pretrained, split, k, out / name, frames,
                      args.passes), out / name / "done", out / f"{name}.log")
           for name, split, k, frames in runs], width=2)
    model = {name: out / name / "last.pt" for name, *_ in runs}
    if str(args.polish) != "none":
        synth = load_dataset(out / "synth")
        extra = sorted({r.video_id for r in synth})
        link_svia([args.data, out / "synth"], out / "mix-data")
        mixed = {split: with_videos(split, extra, out / f"{split.stem}-polish.json")
                 for split in (every, lovo)}
        lanes([(train_cmd(args.polish, out / "mix-data", model[name], mixed[split], k,
                          out / f"{name}-polish", frames + len(synth), args.polish_passes),
                out / f"{name}-polish" / "done", out / f"{name}-polish.log")
               for name, split, k, frames in runs], width=2)
        model = {name: out / f"{name}-polish" / "last.pt" for name, *_ in runs}
    train_s = time.time() - t0

    # Leave-one-video-out scores and the operating point
    folds = []
    for k, fold in enumerate(plan.folds):
        test = [r for r in records if r.video_id in set(fold.test)]
        s = score_fold(model[f"fold{k}"], test)
        s.update(fold=k, video=",".join(fold.test), frames=len(test),
                 boxes=int(sum((r.labels == s["sperm"]).sum() for r in test)))
        folds.append(s)
    thresholds = [f["t_unbiased"] for f in folds]
    shipped = round(sum(thresholds) / len(thresholds), 4)
    rows = []
    for f in folds:
        others = [x["t_unbiased"] for x in folds if x is not f]
        lofo = round(sum(others) / len(others), 4)
        rows.append({"fold": f["fold"], "video": f["video"], "frames": f["frames"],
                     "sperm_boxes": f["boxes"], "sperm_ap50": f["ap50"],
                     "unbiased_threshold": f["t_unbiased"], "at_0.25": f["at_0.25"],
                     "at_shipped": at_threshold(f, shipped),
                     "at_other_folds_threshold": at_threshold(f, lofo)})
    report = {"date": time.strftime("%Y-%m-%d"), "data": str(args.data),
              "recipe": {"pretrain": str(args.pretrain), "finetune": str(args.finetune),
                         "passes": args.passes, "polish": str(args.polish),
                         "polish_passes": args.polish_passes},
              "shipped_threshold": shipped, "folds": rows,
              "train_seconds_this_call": round(train_s)}
    for name in ("pretrain", "final", "final-polish"):
        log = out / name / "log.csv"
        if log.exists():
            import csv

            with open(log) as fh:
                report[f"{name}_seconds"] = round(sum(float(r["seconds"] or 0)
                                                      for r in csv.DictReader(fh)))
    from active.utils.io import write_json

    write_json(out / "lovo-report.json", report)
    print(table(report))
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "lovo-report.json", args.results / "lovo-report.json")
        (args.results / "lovo-table.md").write_text(table(report) + "\n")
    if not args.no_ship:
        ship(args, model["final"], report, records)
    return 0


def table(report: dict) -> str:
    t = report["shipped_threshold"]
    lines = [f"| fold | held-out video | frames | sperm boxes | sperm AP50 | unbiased threshold "
             f"there | count bias at 0.25 | count bias at {t} (shipped) | precision / recall "
             f"at {t} | count bias at the other folds' threshold |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["folds"]:
        s, o = r["at_shipped"], r["at_other_folds_threshold"]
        lines.append(f"| {r['fold']} | {r['video']} | {r['frames']} | {r['sperm_boxes']} | "
                     f"{r['sperm_ap50']:.3f} | {r['unbiased_threshold']:.3f} | "
                     f"{r['at_0.25']['bias_pct']:+.1f} % | {s['bias_pct']:+.1f} % | "
                     f"{s['precision']:.3f} / {s['recall']:.3f} | {o['bias_pct']:+.1f} % "
                     f"(at {o['threshold']:.3f}) |")
    return "\n".join(lines)


def ship(args: argparse.Namespace, weights: Path, report: dict, records: list) -> None:
    import torch

    from active.data.scale import records_scale
    from active.models.checkpoint import read_checkpoint
    from active.models.export import export_onnx, export_stripped
    from active.utils.io import atomic_path

    path = export_stripped(weights, args.ship, {"evaluation": {"leave_one_video_out": report}})
    data = read_checkpoint(path)
    data.setdefault("meta", {})["operating_point"] = {
        "score_threshold": report["shipped_threshold"],
        "fitted_on": {"data": str(args.data), "how": "mean of the leave-one-video-out folds' "
                      "unbiased thresholds on their held-out videos",
                      "videos": [r["video"] for r in report["folds"]]},
        "folds": [{"video": r["video"], "unbiased_threshold": r["unbiased_threshold"],
                   "count_at_threshold": {k: r["at_shipped"][k] for k in
                                          ("found_per_frame", "true_per_frame", "bias_pct",
                                           "frame_mae")}} for r in report["folds"]]}
    data["meta"]["scale"] = {**records_scale(records, data["model_config"]["imgsz"],
                                             args.um_per_px),
                             "note": "SVIA publishes no µm/px; inferred from head size "
                                     "(docs/model-card.md)"}
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    print(f"wrote {path}; exported {export_onnx(path)}")


if __name__ == "__main__":
    sys.exit(main())
