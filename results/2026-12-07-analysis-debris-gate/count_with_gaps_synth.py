import sys; sys.path.insert(0,"scripts")
from pathlib import Path
from dataclasses import replace
import numpy as np
from bench_tracking import load_clip
from bench_analysis import analyse
seed=int(sys.argv[1]); n=int(sys.argv[2]); cache=Path(sys.argv[3]); thrs=[float(x) for x in sys.argv[4].split(",")]
clips=[load_clip(seed,i,300,cache,[],0.02) for i in range(n)]
for t in thrs:
    e1=[];e2=[]
    for c0 in clips:
        c=replace(c0, det=[(b[s>=t],cl[s>=t],s[s>=t]) for b,cl,s in c0.det])
        va=analyse(c,"detector"); vol=va.field.volume_ml
        det=va.sperm_per_frame.mean()
        allf=sum(len(r.track.frames) for r in va.sperm_tracks)/va.frames
        e1.append(100*(det/vol/1e6/c.concentration-1)); e2.append(100*(allf/vol/1e6/c.concentration-1))
    print(f"t={t}: detected-only {' '.join('%+.1f'%e for e in e1)} | with gaps {' '.join('%+.1f'%e for e in e2)}",flush=True)
