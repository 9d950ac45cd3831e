"""Concentration counting rules on real held-out SVIA (fold models, operating point) and on the
tuning synthetic clips (seed 8000, score >= 0.25): tracked-only (today) vs every sperm detection
except those in tracks the analysis sets aside (debris / impurity-voted)."""
import sys; sys.path.insert(0,"scripts")
from pathlib import Path
import numpy as np
from active.analysis import Calibration, analyze_detections
from active.analysis.tracking import link, small_tracks
from bench_tracking import iou
def rules(boxes, cls, sc, size, fps, gt_per_frame):
    va=analyze_detections(boxes,cls,sc,("sperm","impurity"),size,fps,Calibration(um_per_px=0.35,chamber_depth_um=20))
    raw=va.raw_sperm_per_frame.astype(float)
    # detections of sperm class inside non-sperm tracks: match by box identity per frame
    sub=np.zeros(len(boxes))
    for r in va.tracks:
        if r.class_name=="sperm": continue
        t=r.track
        for f,b in zip(t.frames[t.detected], t.boxes[t.detected]):
            bb=boxes[f]; k=np.where(np.all(np.abs(bb-b)<1e-6,axis=1))[0]
            if len(k) and cls[f][k[0]]==0: sub[f]+=1
    out=[va.sperm_per_frame.mean(), raw.mean(), (raw-sub).mean()]
    return [100*(x/gt_per_frame-1) for x in out]
if sys.argv[1]=="svia":
    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan
    from active.inference.predictor import Predictor
    recs=load_dataset("../shared/data/svia-sample"); plan=SplitPlan.load("runs/shipped-plain-12k/lovo.json")
    for k in range(4):
        vid=plan.folds[k].test[0]; rs=sorted([r for r in recs if r.video_id==vid],key=lambda r:r.frame_index)
        p=Predictor(f"runs/shipped-plain-12k/fold{k}/last.pt",backend="torch",conf=0.4584,threads=2)
        d=[p(r.image) for r in rs]
        gt=np.mean([(np.asarray(r.labels)==0).sum() for r in rs])
        e=rules([x.xyxy.astype(float) for x in d],[x.cls for x in d],[x.conf.astype(float) for x in d],(rs[0].width,rs[0].height),30.0,gt)
        print(vid,"tracked %+.1f%%  raw %+.1f%%  raw minus set-aside %+.1f%%"%tuple(e))
else:
    from bench_tracking import load_clip
    for i in range(4):
        c=load_clip(8000,i,300,Path("runs/dev-track-cache"),[],0.25)
        gt=np.mean([(g[1]==0).sum() for g in c.gt])
        e=rules([d[0] for d in c.det],[d[1] for d in c.det],[d[2] for d in c.det],c.size,c.cfg.fps,gt)
        print(c.name,"tracked %+.1f%%  raw %+.1f%%  raw minus set-aside %+.1f%%"%tuple(e))
