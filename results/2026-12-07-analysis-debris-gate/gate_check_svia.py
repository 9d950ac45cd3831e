import sys; sys.path.insert(0,"scripts")
import numpy as np, json
from bench_tracking import iou
from active.analysis.tracking import link
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan
from active.inference.predictor import Predictor
recs=load_dataset("../shared/data/svia-sample")
plan=SplitPlan.load("runs/shipped-plain-12k/lovo.json")
rows=[]
for k in range(4):
    vid=plan.folds[k].test[0]
    rs=sorted([r for r in recs if r.video_id==vid], key=lambda r:r.frame_index)
    p=Predictor(f"runs/shipped-plain-12k/fold{k}/last.pt", backend="torch", conf=0.25, threads=2)
    dets=[p(r.image) for r in rs]
    for thr in [0.25, 0.4584]:
        boxes=[d.xyxy[d.conf>=thr].astype(float) for d in dets]; cls=[d.cls[d.conf>=thr] for d in dets]; sc=[d.conf[d.conf>=thr].astype(float) for d in dets]
        tracks=link(boxes,cls,sc,(rs[0].width,rs[0].height),30.0,1/0.35)
        for tr in tracks:
            det=tr.detected; fr=tr.frames[det]; b=tr.boxes[det]; s=tr.scores[det]
            hit=0
            for f,bb in zip(fr,b):
                g=rs[f].boxes[np.asarray(rs[f].labels)==0]
                if len(g) and iou(bb,g).max()>=0.5: hit+=1
            side=np.maximum(b[:,2]-b[:,0],b[:,3]-b[:,1])
            rows.append(dict(clip=vid,thr=thr,cls=tr.cls,n=int(det.sum()),true=hit/len(fr),mean=float(s.mean()),side=float(np.median(side))))
        allside=np.concatenate([np.maximum(b[:,2]-b[:,0],b[:,3]-b[:,1])[c==0] for b,c in zip(boxes,cls)])
        print(vid,thr,"frames",len(rs),"tracks",len(tracks),"median det side",np.median(allside), "gt/frame", np.mean([(np.asarray(r.labels)==0).sum() for r in rs]), flush=True)
json.dump(rows,open("/tmp/feat_svia.json","w"))
