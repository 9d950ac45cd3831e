"""Fold models on their held-out real video and on four synthetic tuning clips (seeds
video_seed(8000, i), 150 frames each, not the benchmark's): sperm AP50, unbiased threshold,
count bias, and impurity AP50 on the synthetic clips.

    python results/2026-12-07-synthetic-polish/polish_eval.py FOLD NAME=WEIGHTS [NAME=WEIGHTS ...]
"""
import sys

sys.path.insert(0, "scripts")
from dataclasses import replace  # noqa: E402

from train_shipped_model import at_threshold, score_fold  # noqa: E402

from active.data.dataset import load_dataset  # noqa: E402
from active.data.synth import SynthConfig, render_video, video_seed  # noqa: E402

TEST = ["S_0004", "S_0001", "S_0002", "S_0005"]
fold = int(sys.argv[1])
real = [r for r in load_dataset("../shared/data/svia-sample") if r.video_id == TEST[fold]]
synth = [render_video(replace(SynthConfig(), frames=150), video_seed(8000, i), f"T{i}").records
         for i in range(4)]
for arg in sys.argv[2:]:
    name, w = arg.split("=", 1)
    s = score_fold(w, real)
    t = s["t_unbiased"]
    out = [f"{name} (fold {fold}, {TEST[fold]}): AP50 {s['ap50']:.3f} unbiased t {t:.3f} "
           f"bias@0.4584 {at_threshold(s, 0.4584)['bias_pct']:+.1f}%"]
    for i, recs in enumerate(synth):
        ss = score_fold(w, recs)
        a, b, c = (at_threshold(ss, x) for x in (0.4584, t, 0.25))
        out.append(f"  synth{i}: AP50 {ss['ap50']:.3f} bias@0.4584 {a['bias_pct']:+.1f}% "
                   f"R {a['recall']:.3f} | @own-real-t {b['bias_pct']:+.1f}% | "
                   f"@0.25 {c['bias_pct']:+.1f}%")
    print("\n".join(out), flush=True)
