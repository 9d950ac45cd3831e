#!/usr/bin/env bash
# (device) the comparison, the branch ablation and pre-trained fine-tuning, 4 folds by video,
# as parallel `active cv` workers sharing the (model, fold) pairs. Results -> $OUT/results.tgz.
set -u
DEV=${DEV:-cuda}; BUDGET=${BUDGET:-470}; EXTRA=${EXTRA:-}; NCMP=${NCMP:-7}
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 YOLO_OFFLINE=1 MPLBACKEND=Agg
export YOLO_CONFIG_DIR=/tmp/ycfg
if [ "$DEV" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 2
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > $OUT/gpu.txt
fi
DATA=${DATA:-/tmp/svia}; [ -d $DATA/Subset-A ] || python3 .devdata/unpack.py $DATA || exit 2
R=${R:-runs/gpu}; mkdir -p $R/logs $R/compare $R/ft
cp .devdata/split.json $R/compare/split.json; cp .devdata/split.json $R/ft/split.json
M=${M:-"active-i yolov3 yolov4 faster-rcnn ssd efficientdet-d2 yolov8n"}
python3 .devdata/preflight.py $DEV $M 2>&1 | tee $R/logs/preflight.txt; [ ${PIPESTATUS[0]} = 0 ] || { cp $R/logs/preflight.txt $OUT/; exit 3; }
pack() { tar czf $OUT/partial.tgz --exclude='*.pt' $R 2>/dev/null && mv $OUT/partial.tgz $OUT/results.tgz; }
( while sleep 30; do pack; done ) & PACKER=$!
C="python3 -m active cv --config configs/svia-cpu.yaml --folds 4 --data $DATA --device $DEV --quiet --set data.workers=1 $EXTRA"
PIDS=()
for i in $(seq 1 $NCMP); do timeout -s INT $BUDGET $C --variant $M --out $R/compare > $R/logs/cmp$i.txt 2>&1 & PIDS+=($!); sleep 1; done
for i in 1 2; do timeout -s INT $BUDGET python3 -m active ablation --config configs/svia-cpu.yaml --folds 4 --data $DATA --device $DEV --quiet --set data.workers=1 $EXTRA --variant active-i --out $R/compare > $R/logs/abl$i.txt 2>&1 & PIDS+=($!); sleep 1; done
timeout -s INT $BUDGET python3 -m active cv --config configs/svia-finetune.yaml --folds 4 --data $DATA --device $DEV --quiet --set data.workers=1 --set init_weights=.devdata/pretrain.pt $EXTRA --out $R/ft > $R/logs/ft.txt 2>&1 & PIDS+=($!)
( while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; uptime; done ) > $R/logs/util.txt 2>&1 & MON=$!
wait "${PIDS[@]}"
kill $PACKER $MON 2>/dev/null; pack; ls -la $OUT; tail -n 3 $R/logs/*.txt
