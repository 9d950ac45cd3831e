#!/usr/bin/env bash
# The recipe of the bundled default model (src/active/weights/, model card: docs/model-card.md).
# Synthetic pre-training, then freeze training on the shared SVIA sample (videos S_0002 + S_0005;
# S_0001 validates, S_0004 is held out and scores the model), then a stripped checkpoint.
#   bash scripts/train_default_model.sh [SVIA_ROOT]        (about 1 h on 2 CPU cores)
# Each finished step is skipped when the script is run again.
set -euo pipefail
DATA=${1:-../shared/data/svia-sample}
OUT=${OUT:-runs/default}
mkdir -p "$OUT"
[ -f "$OUT/synth/synth.json" ] || active synth --videos 6 --frames 30 --seed 100 --out "$OUT/synth"
[ -f "$OUT/pretrain/done" ] || {
  active train --config configs/pretrain-synth.yaml --data "$OUT/synth" --out "$OUT/pretrain" \
    $( [ -f "$OUT/pretrain/last.pt" ] && echo --resume )
  touch "$OUT/pretrain/done"; }
[ -f "$OUT/lovo.json" ] || active data split "$DATA" --folds 4 --out "$OUT/lovo.json"
[ -f "$OUT/finetune/done" ] || {
  active train --config configs/svia-finetune.yaml --data "$DATA" \
    --weights "$OUT/pretrain/best.pt" --split "$OUT/lovo.json" --fold 0 --out "$OUT/finetune" \
    $( [ -f "$OUT/finetune/last.pt" ] && echo --resume )
  touch "$OUT/finetune/done"; }
active eval --weights "$OUT/finetune/best.pt" --data "$DATA" --split "$OUT/lovo.json" --fold 0 \
  --part test --out "$OUT/eval" --overwrite
active export "$OUT/finetune/best.pt" --format pt --eval "$OUT/eval/report.json" \
  --out src/active/weights/active-i-n-svia.pt
