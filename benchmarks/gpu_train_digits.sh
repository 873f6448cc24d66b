#!/usr/bin/env bash
# Train (or continue) the bundled digits weights' recipe on a lent GPU inside a fixed wall-time budget,
# and bring the checkpoints back. Meant to follow benchmarks/gpu_check.sh in the same device call:
#   MAX_TIME=300 benchmarks/gpu_train_digits.sh [RUN_DIR_TO_CONTINUE]
# RUN_DIR_TO_CONTINUE: a run folder (config.json + checkpoints/) carried along; its newest checkpoint is
# resumed (a CPU checkpoint resumes on the GPU and back). Without it, a fresh run starts.
# DEVICE (default cuda), WORKERS (6), STEPS (100000), MAX_TIME (seconds, 300) adjust it.
# Writes $OUT/train.log, $OUT/metrics.jsonl and the last two checkpoints gzipped (each < 16 MiB) to $OUT.
# On an H200 this recipe ran 21-23 iterations/s (2026-11-27), against ~1/s on one CPU core.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
OUT="${OUT:-/tmp/vganzoo_gpu_train}"; mkdir -p "$OUT"
RUN=/tmp/vganzoo-digits-run
rm -rf "$RUN"; mkdir -p "$RUN/checkpoints"
RESUME=()
if [[ $# -ge 1 ]]; then
  latest="$(ls "$1"/checkpoints/ckpt-*.safetensors | tail -n 1)"  # carry only the newest (16 MiB each)
  cp "$1/config.json" "$RUN/" && cp "$latest" "$RUN/checkpoints/" || exit 1
  RESUME=(--resume)
fi
# The recipe of vganzoo/weights/mocogan-rnn.digits (its card has the provenance): whole-frame image D with R1,
# categorical video D, instance noise 0.1, EMA 0.995, image batch 16, video batch 8, width 0.5, 32 px, 1 channel.
PYTHONUNBUFFERED=1 "$PY" -m vganzoo train mocogan-rnn --data moving-digits --resolution 32 --channels 1 \
  --num-classes 10 --width 0.5 --model-arg 'discriminators=["mocogan/image", "mocogan/categorical-video"]' \
  --seed 0 --model-arg noise_sigma=0.1 --set 'regularizers=[{"name":"r1","weight":1.0,"roles":["image"]}]' \
  --set discriminator_batch_size.image=16 --set discriminator_batch_size.video=8 --set ema.decay=0.995 \
  "${RESUME[@]}" --steps "${STEPS:-100000}" --max-time "${MAX_TIME:-300}" --device "${DEVICE:-cuda}" --workers "${WORKERS:-6}" \
  --checkpoint-every 500 --keep-checkpoints 3 --sample-every 0 --log-every 100 --no-progress \
  --out "$RUN" > "$OUT/train.log" 2>&1
status=$?
tail -n 3 "$OUT/train.log"
cp "$RUN/logs/metrics.jsonl" "$OUT/" 2>/dev/null
for f in $(ls "$RUN"/checkpoints/ckpt-*.safetensors 2>/dev/null | tail -n 2); do
  gzip -1 -c "$f" > "$OUT/$(basename "$f").gz"
done
ls -la "$OUT"
exit $status
