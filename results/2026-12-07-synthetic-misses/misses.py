"""Which synthetic sperm heads does the bundled detector miss? (issue 29's concentration gap)

On the four tuning clips (seeds ``video_seed(8000, i)``, 300 frames; detections cached by
``scripts/bench_analysis.py`` at score >= 0.25 in ``runs/dev-track-cache``), each frame's true
sperm boxes are matched one-to-one to detected sperm boxes (Hungarian on IoU, IoU >= 0.5).
For each miss: is another true head overlapping it (crowding), is a detection near it (IoU
0.1-0.5: a poor box or a merge) or none at all (the detector did not fire)? The scene is
simulated again from the clip's seed (the generator is deterministic) to read each head's
look: length, darkness, focus, bright centre; the miss rate is given per group.

    python results/2026-12-07-synthetic-misses/misses.py [runs/dev-track-cache]
"""

from __future__ import annotations

import pickle
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from active.data.boxes import box_iou as iou
from active.data.synth.config import SynthConfig
from active.data.synth.dataset import video_seed
from active.data.synth.render import background, render_frame
from active.data.synth.scene import simulate


def groups(look) -> list[str]:
    return [f"length <= {int(np.ceil(look.length / 2) * 2)} px",
            f"darkness <= {np.ceil(look.head_darkness * 5) / 5:.1f}",
            "defocused" if look.defocus else "in focus",
            "bright centre" if look.bright_centre else "plain head"]


def clip(cache: Path, index: int, seed: int = 8000, conf: float = 0.25) -> dict:
    cfg = replace(SynthConfig(), frames=300)
    rng = np.random.default_rng(video_seed(seed, index))  # the order render_video draws in
    scene = simulate(cfg, rng, cfg.frames)
    base = background(cfg, rng)
    looks = {o.uid: o.look for o in scene.sperm}
    z = np.load(cache / f"BENCH_{seed}_{index:02d}_{cfg.frames}f.npz")
    truth = pickle.loads(z["truth"].tobytes())
    cuts = np.cumsum(z["counts"])[:-1]
    det = zip(np.split(z["boxes"], cuts), np.split(z["classes"], cuts), np.split(z["scores"], cuts),
              strict=True)
    order: dict[int, int] = {}
    n = {"true": 0, "missed": 0, "crowded": 0, "near": 0, "none": 0}
    per: dict[str, list[int]] = {}
    for t, (b, c, s) in enumerate(det):
        _, visible = render_frame(cfg, scene, t, base, rng)
        for v in sorted(visible, key=lambda v: v.uid):
            order.setdefault(v.uid, len(order) + 1)
        uids = [v.uid for v in sorted(visible, key=lambda v: order[v.uid]) if v.label == 0]
        gb, gl, _ = truth["gt"][t]
        g, d = gb[gl == 0], b[(c == 0) & (s >= conf)]
        assert len(g) == len(uids), "the scene does not match the cached clip"
        m = iou(g, d)
        hit = np.zeros(len(g), bool)
        if m.size:
            r, k = linear_sum_assignment(-m)
            hit[r[m[r, k] >= 0.5]] = True
        own = iou(g, g)
        np.fill_diagonal(own, 0)
        best = m.max(1) if m.size else np.zeros(len(g))
        for i, u in enumerate(uids):
            n["true"] += 1
            for key in groups(looks[u]):
                per.setdefault(key, [0, 0])[0] += 1
                per[key][1] += int(not hit[i])
            if hit[i]:
                continue
            n["missed"] += 1
            n["crowded"] += int(own[i].max(initial=0) > 0.3)
            n["near"] += int(0.1 < best[i] < 0.5)
            n["none"] += int(best[i] <= 0.1)
    return {"clip": index, **n, "groups": per}


def main() -> None:
    cache = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/dev-track-cache")
    rows = [clip(cache, i) for i in range(4)]
    print("| clip | heads/frame | missed | another head IoU > 0.3 | a detection IoU 0.1-0.5 "
          "| no detection near |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        m = max(r["missed"], 1)
        print(f"| {r['clip']} | {r['true'] / 300:.1f} | {r['missed'] / r['true']:.1%} "
              f"| {r['crowded'] / m:.0%} | {r['near'] / m:.0%} | {r['none'] / m:.0%} |")
    keys = sorted({k for r in rows for k in r["groups"]})
    print("\n| head | " + " | ".join(f"clip {r['clip']}" for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for k in keys:
        cells = []
        for r in rows:
            n, miss = r["groups"].get(k, (0, 0))
            cells.append(f"{miss / n:.0%} of {n}" if n else "-")
        print(f"| {k} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
