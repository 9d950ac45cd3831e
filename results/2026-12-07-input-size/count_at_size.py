import sys; sys.path.insert(0,"scripts")
from train_shipped_model import at_threshold
from active.data.ap import ImageResult, evaluate_ap
from active.data.dataset import load_dataset
from active.data.splits import SplitPlan
from active.evaluation.counting import count_threshold
from active.inference.predictor import Predictor
recs=load_dataset("../shared/data/svia-sample"); plan=SplitPlan.load("runs/shipped-plain-12k/lovo.json")
sz=(int(sys.argv[1]),int(sys.argv[2]))
folds=[]
for k in range(4):
    test=[r for r in recs if r.video_id in set(plan.folds[k].test)]
    p=Predictor(f"runs/shipped-plain-12k/fold{k}/last.pt",backend="torch",conf=0.001,imgsz=sz,threads=2)
    res=[ImageResult(r.boxes,r.labels,d.xyxy,d.conf,d.cls) for r,d in zip(test,(p(r.image) for r in test))]
    folds.append({"results":res,"names":p.names,"sperm":0,"t":count_threshold(res,0),"ap":evaluate_ap(res,p.names)["sperm"].ap})
m=sum(f["t"] for f in folds)/4
for k,f in enumerate(folds):
    o=sum(g["t"] for g in folds if g is not f)/3
    a=at_threshold(f,m); b=at_threshold(f,o)
    print(k,"ap %.3f t %.3f | at mean %.3f: bias %+.1f%% P %.3f R %.3f | at others' %.3f: %+.1f%%"%(f["ap"],f["t"],m,a["bias_pct"],a["precision"],a["recall"],o,b["bias_pct"]))
