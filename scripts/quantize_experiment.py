"""Int8 ONNX for the CPU: does static quantization keep accuracy, and how much faster is it?

For each leave-one-video-out fold given (a checkpoint trained without the test video), the
checkpoint is exported to ONNX (fp32), then quantized statically by ONNX Runtime's own tool
(``onnxruntime.quantization.quantize_static``, QDQ format, int8 weights per channel, uint8
activations) with activation ranges calibrated on frames of the fold's *training* videos only.
Both models then score the held-out video through the same predictor (ONNX backend, numpy
post-processing): sperm AP50, the count-unbiased threshold and the count bias at the fp32 model's
unbiased threshold. The network alone is timed side by side (round robin, batch 1) so that
background load hits both alike; the table gives the ratio.

    python scripts/quantize_experiment.py --fold 0 runs/shipped-plain-12k/fold0/last.pt \
        --split runs/shipped-plain-12k/lovo.json --out runs/quant

Quantization is ONNX Runtime's; nothing here reimplements it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


def calibration_batches(pred, records, n: int) -> list[np.ndarray]:
    """``n`` letterboxed input batches (batch 1) from ``records``, evenly spread."""
    from active.data.transforms import letterbox_batch

    idx = np.linspace(0, len(records) - 1, num=min(n, len(records))).round().astype(int)
    out = []
    for i in idx:
        img = records[i].image
        batch, _ = letterbox_batch([img], pred._input_for(img.shape))
        out.append(np.ascontiguousarray(batch, dtype=np.float32))
    return out


def quantize(fp32: Path, int8: Path, batches: list[np.ndarray], method: str,
             ops: list[str] | None = None) -> None:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self):
            b = next(self.it, None)
            return None if b is None else {"images": b}

    pre = int8.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    quantize_static(str(pre), str(int8), Reader(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8,
                    calibrate_method=getattr(CalibrationMethod, method),
                    op_types_to_quantize=ops)
    pre.unlink()
    # the predictor reads the model spec from the metadata: carry it over if the tool dropped it
    src = {p.key: p.value for p in onnx.load(str(fp32), load_external_data=False).metadata_props}
    model = onnx.load(str(int8))
    have = {p.key for p in model.metadata_props}
    if set(src) - have:
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                            **src})
        onnx.save(model, str(int8))


def time_networks(paths: dict[str, Path], x: np.ndarray, runs: int, threads: int) -> dict:
    import onnxruntime as ort

    sessions = {}
    for name, p in paths.items():
        o = ort.SessionOptions()
        o.intra_op_num_threads = threads
        o.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[name] = ort.InferenceSession(str(p), o, providers=["CPUExecutionProvider"])
    times: dict[str, list[float]] = {n: [] for n in sessions}
    for s in sessions.values():
        for _ in range(3):
            s.run(None, {"images": x})
    for _ in range(runs):
        for n, s in sessions.items():
            t = time.perf_counter()
            s.run(None, {"images": x})
            times[n].append((time.perf_counter() - t) * 1e3)
    return {n: {"median_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2)}
            for n, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("weights", type=Path, nargs="+", help="one checkpoint per --fold")
    ap.add_argument("--fold", type=int, nargs="+", required=True)
    ap.add_argument("--split", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/svia-sample")
    ap.add_argument("--out", type=Path, default=Path("runs/quant"))
    ap.add_argument("--calib", type=int, default=48, help="calibration frames per fold")
    ap.add_argument("--method", default="MinMax", choices=["MinMax", "Entropy", "Percentile"])
    ap.add_argument("--ops", nargs="+", default=None,
                    help="quantize only these op types (e.g. Conv); default: all ORT supports")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if len(args.weights) != len(args.fold):
        ap.error("give one checkpoint per --fold")

    from active.data.ap import ImageResult, evaluate_ap
    from active.data.dataset import load_dataset
    from active.data.splits import SplitPlan
    from active.evaluation.counting import count_bias, count_threshold
    from active.inference.predictor import Predictor
    from active.models.export import export_onnx

    records = load_dataset(args.data)
    plan = SplitPlan.load(args.split)
    args.out.mkdir(parents=True, exist_ok=True)
    tag = args.method.lower() + ("-" + "-".join(args.ops).lower() if args.ops else "")
    rows = []
    for k, weights in zip(args.fold, args.weights, strict=True):
        fold = plan.folds[k]
        train = [r for r in records if r.video_id in set(fold.train)]
        test = [r for r in records if r.video_id in set(fold.test)]
        fp32 = args.out / f"fold{k}-fp32.onnx"
        int8 = args.out / f"fold{k}-int8-{tag}.onnx"
        export_onnx(weights, fp32)
        pred = Predictor(fp32, backend="onnx", conf=0.001, threads=args.threads)
        if not int8.exists():
            quantize(fp32, int8, calibration_batches(pred, train, args.calib), args.method,
                     args.ops)
        x = calibration_batches(pred, test, 1)[0]
        timing = time_networks({"fp32": fp32, "int8": int8}, x, args.runs, args.threads)
        scores = {}
        for name, path in (("fp32", fp32), ("int8", int8)):
            p = Predictor(path, backend="onnx", conf=0.001, threads=args.threads)
            sperm = p.names.index("sperm")
            res = [ImageResult(r.boxes, r.labels, d.xyxy, d.conf, d.cls)
                   for r, d in zip(test, (p(r.image) for r in test), strict=True)]
            scores[name] = {"ap50": round(evaluate_ap(res, p.names)["sperm"].ap, 4),
                            "t_unbiased": round(count_threshold(res, sperm), 4), "res": res,
                            "sperm": sperm}
        t = scores["fp32"]["t_unbiased"]
        for name in scores:
            s = scores[name]
            s["bias_at_fp32_threshold"] = count_bias(s.pop("res"), s.pop("sperm"), t)
        row = {"fold": k, "video": ",".join(fold.test), "input": list(x.shape[2:]),
               "calib_frames": min(args.calib, len(train)), "method": args.method,
               "ops": args.ops or "all",
               "timing": timing, "scores": scores,
               "speedup": round(timing["fp32"]["median_ms"] / timing["int8"]["median_ms"], 3)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    from active.utils.io import write_json

    write_json(args.out / f"quant-{tag}.json",
               {"date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows})
    print("| fold | video | fp32 AP50 | int8 AP50 | fp32 t* | int8 t* | int8 bias at fp32 t* "
          "| fp32 ms | int8 ms | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, tm = r["scores"], r["timing"]
        bias = s["int8"]["bias_at_fp32_threshold"]["bias_pct"]
        print(f"| {r['fold']} | {r['video']} | {s['fp32']['ap50']:.3f} | {s['int8']['ap50']:.3f} "
              f"| {s['fp32']['t_unbiased']:.3f} | {s['int8']['t_unbiased']:.3f} | {bias} "
              f"| {tm['fp32']['median_ms']} | {tm['int8']['median_ms']} | {r['speedup']}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
