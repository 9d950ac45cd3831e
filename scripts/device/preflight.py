"""(device) every model builds on the device and takes 3 training steps; prints ms/step."""
import sys
import time

import torch
import ultralytics  # noqa: F401  (the extras are importable)

from active.models.build import build_model
from active.models.torchvision_models import TorchvisionLoss
from active.models.variants import ModelConfig
from active.training.loss import LossConfig, YoloCriterion

dev = sys.argv[1]
print(torch.__version__, torch.cuda.is_available(), flush=True)
t = torch.tensor([[0, 0, 10, 10, 22, 24], [1, 1, 40, 30, 70, 60]], dtype=torch.float32, device=dev)
for m in sys.argv[2:]:
    model = build_model(ModelConfig(variant=m, scale="n", imgsz=(544, 704))).to(dev).train()
    crit = (TorchvisionLoss() if getattr(model, "returns_detections", False)
            else YoloCriterion(model.anchors, model.strides, 2, LossConfig()).to(dev))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    for k in range(3):
        if k == 1:
            t0 = time.time()
        x = torch.rand(8, 3, 544, 704, device=dev)
        out = model(x, t) if getattr(model, "returns_detections", False) else model(x)
        loss, _ = crit(out, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if dev == "cuda":
        torch.cuda.synchronize()
    print(f"{m}: ok, {1e3 * (time.time() - t0) / 2:.0f} ms/step at batch 8", flush=True)
