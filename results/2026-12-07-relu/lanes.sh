#!/bin/bash
# ReLU recipe (issue 31): after the pretrain, two lanes at one thread each:
# lane A: fold 0 at 704x544, then 512x384 folds 2, 3; lane B: 512x384 folds 0, 1 (then what's left).
cd /work/main
A=".venv/bin/python -m active"
R=runs/relu-12k
while pgrep -f "relu-12k/pretrain.yaml" > /dev/null; do sleep 10; done
[ "$(tail -1 $R/pretrain/log.csv | cut -d, -f1)" = "20" ] && touch $R/pretrain/done
[ -e $R/pretrain/done ] || { echo "pretrain not finished" >> $R/lanes.log; exit 1; }
EP=( "19 101" "14 74" "12 62" "13 69" )   # epochs per fold for 12k passes (as train_shipped_model)
job() {  # name config fold
  local out=$R/$1; [ -e $out/done ] && return 0
  mkdir $R/$1.claim 2>/dev/null || return 0   # the other lane has it
  local res=""; [ -e $out/last.pt ] && res="--resume"
  $A train --config $R/$2 --data ../shared/data/svia-sample --weights $R/pretrain/best.pt \
    --split $R/lovo.json --fold $3 --out $out --threads 1 --epochs ${EP[$3]} --quiet $res >> $R/$1.log 2>&1 \
    && touch $out/done && echo "$(date +%T) $1 done" >> $R/lanes.log
}
( job fold0 finetune-plain.yaml 0; job s512-fold2 finetune-512.yaml 2; job s512-fold3 finetune-512.yaml 3 ) &
( job s512-fold0 finetune-512.yaml 0; job s512-fold1 finetune-512.yaml 1; job s512-fold3 finetune-512.yaml 3 ) &
wait
echo "$(date +%T) ALLDONE" >> $R/lanes.log
