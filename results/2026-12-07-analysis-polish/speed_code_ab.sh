clip=/work/main/runs/bench-analysis-cache/speed_7000_30s.mp4
for i in 1 2 3; do
 for tree in /work/main /tmp/headtree; do
  out=$(mktemp -d)
  s=$(date +%s.%N)
  PYTHONPATH=$tree/src /work/main/.venv/bin/python -m active analyze $clip --um-per-px 0.35 --chamber-depth 20 --conf 0.25 --out $out --quiet > /dev/null
  e=$(date +%s.%N)
  python3 -c "import json;d=json.load(open('$out/summary.json'))['videos'][0]['seconds'];print('$tree', round($e-$s,1), {k:round(v,1) for k,v in d.items()})"
  rm -rf $out
 done
done
