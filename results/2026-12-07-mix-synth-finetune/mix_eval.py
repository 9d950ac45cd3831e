"""Fold-0 models on the held-out real video S_0004 and on four synthetic tuning clips (seeds
video_seed(8000, i), 150 frames each): sperm AP50, unbiased threshold, count bias."""
import sys; sys.path.insert(0,"scripts")
from dataclasses import replace
from train_shipped_model import score_fold, at_threshold
from active.data.dataset import load_dataset
from active.data.synth import SynthConfig, render_video, video_seed
real=[r for r in load_dataset("../shared/data/svia-sample") if r.video_id=="S_0004"]
synth=[]
for i in range(4):
    v=render_video(replace(SynthConfig(),frames=150),video_seed(8000,i),f"T{i}")
    synth.append(v.records)
for name,w in [("plain",sys.argv[1]),("mix",sys.argv[2])]:
    s=score_fold(w,real); t=s["t_unbiased"]
    line=[f"{name}: S_0004 AP50 {s['ap50']:.3f} unbiased t {t:.3f} bias@0.4584 {at_threshold(s,0.4584)['bias_pct']:+.1f}%"]
    for i,recs in enumerate(synth):
        ss=score_fold(w,recs)
        a=at_threshold(ss,0.4584); b=at_threshold(ss,t)
        line.append(f"  synth{i}: AP50 {ss['ap50']:.3f} unbiased t {ss['t_unbiased']:.3f} bias@0.4584 {a['bias_pct']:+.1f}% R {a['recall']:.3f} | bias@own-real-t {b['bias_pct']:+.1f}%")
    print("\n".join(line),flush=True)
