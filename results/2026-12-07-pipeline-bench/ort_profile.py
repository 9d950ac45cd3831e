import onnxruntime as ort, numpy as np, json, collections, glob, os
o=ort.SessionOptions(); o.enable_profiling=True; o.intra_op_num_threads=1
o.graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s=ort.InferenceSession("src/active/weights/active-i-n-svia.onnx",o,providers=["CPUExecutionProvider"])
i=s.get_inputs()[0]; print(i.name,i.shape)
x=np.random.rand(1,3,544,704).astype(np.float32)
for _ in range(30): s.run(None,{i.name:x})
f=s.end_profiling()
ev=json.load(open(f)); os.remove(f)
by=collections.Counter(); n=collections.Counter()
for e in ev:
    if e.get("cat")=="Node" and e["name"].endswith("_kernel_time"):
        op=e["args"]["op_name"]; by[op]+=e["dur"]; n[op]+=1
tot=sum(by.values())
for op,d in by.most_common(15): print(f"{op:24s} {d/30/1000:7.2f} ms/run {100*d/tot:5.1f}%  nodes {n[op]//30}")
print("total %.2f ms/run"%(tot/30/1000))
