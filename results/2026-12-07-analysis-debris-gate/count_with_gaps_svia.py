import sys; sys.path.insert(0,"scripts")
import numpy as np
from active.analysis import Calibration, analyze_detections
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan
from active.inference.predictor import Predictor
recs=load_dataset("../shared/data/svia-sample")
plan=SplitPlan.load("runs/shipped-plain-12k/lovo.json")
for k in range(4):
    vid=plan.folds[k].test[0]
    rs=sorted([r for r in recs if r.video_id==vid], key=lambda r:r.frame_index)
    p=Predictor(f"runs/shipped-plain-12k/fold{k}/last.pt", backend="torch", conf=0.4584, threads=2)
    dets=[p(r.image) for r in rs]
    gt=np.mean([(np.asarray(r.labels)==0).sum() for r in rs])
    va=analyze_detections([d.xyxy.astype(float) for d in dets],[d.cls for d in dets],[d.conf.astype(float) for d in dets],("sperm","impurity"),(rs[0].width,rs[0].height),30.0,Calibration(um_per_px=0.35,chamber_depth_um=20))
    raw=va.raw_sperm_per_frame.mean(); det=va.sperm_per_frame.mean(); allf=sum(len(r.track.frames) for r in va.sperm_tracks)/va.frames
    print(vid, "gt %.1f raw %+.1f%% tracked-detected %+.1f%% with gaps %+.1f%% debris %d"%(gt,100*(raw/gt-1),100*(det/gt-1),100*(allf/gt-1),sum(t.class_name=='debris' for t in va.tracks)))
