#!/bin/bash
# The sharp-edge predictor's device runs (the `device` tool, one H200): two variants side by side on the
# one GPU, each time-bounded; checkpoints (EMA fp32 + raw fp16, each under 16 MiB) and logs land in $OUT.
# Photos: .gpu/photos (training/sharpedge_data.py), carried with `carry: [".gpu"]`.
#   scratch  MIN: image loss only (se-img) and image + kernel loss 0.02 (se-ker), from scratch
#   finetune MIN: se-ker (copied to .gpu/se-ker.pt and .gpu/se-ker-raw.pt) fine-tuned on 384 px crops with
#                 kernel loss 0.05 (se-ker384) and on 256 px crops with kernel loss 0.1 (se-ker01)
# Stop 17 ran `scratch 7.3` (~8 min) then `finetune 3.8` (~4.3 min).
set -u
MODE=${1:-scratch}
MIN=${2:-7.3}
export PYTHONUNBUFFERED=1
nvidia-smi -L; python3 -c "import torch, cv2, scipy; print('torch', torch.__version__, torch.cuda.is_available())"
run() { python3 training/train_sharpedge.py --photos .gpu/photos --out "$OUT" --minutes "$MIN" --workers 6 \
        --log-every 500 "$@" > "/tmp/$2.out" 2>&1; }
case "$MODE" in
  scratch)
    run --name se-img --seed 0 --batch 32 --crop 256 & p1=$!
    run --name se-ker --seed 1 --batch 32 --crop 256 --kernel-loss 0.02 & p2=$! ;;
  finetune)
    ft="--init .gpu/se-ker.pt --lr 3e-4"
    run --name se-ker384 --seed 2 --batch 16 --crop 384 --kernel-loss 0.05 $ft & p1=$!
    run --name se-ker01 --seed 3 --batch 32 --crop 256 --kernel-loss 0.1 $ft & p2=$! ;;
  *) echo "mode: scratch or finetune"; exit 2 ;;
esac
wait $p1; echo "first rc $?"; wait $p2; echo "second rc $?"
tail -n 3 /tmp/se-*.out
ls -la "$OUT"
