#!/usr/bin/env bash
# Train (or continue) a digits recipe on a lent GPU inside a fixed wall-time budget, and bring the
# checkpoints back. Meant to follow benchmarks/gpu_check.sh in the same device call:
#   MAX_TIME=300 [FAMILY=mocogan|tgan|vgan] benchmarks/gpu_train_digits.sh [RUN_DIR_TO_CONTINUE]
# RUN_DIR_TO_CONTINUE: a run folder (config.json + checkpoints/) carried along; its newest checkpoint is
# resumed with the run's own model, recipe and data (a CPU checkpoint resumes on the GPU and back).
# Without it a fresh run of FAMILY's recipe starts (default mocogan: the bundled weights' recipe; tgan and
# vgan: the R1 recipes of benchmarks/RESULTS.md's "digits weights for tgan and vgan" section).
# DEVICE (default cuda), WORKERS (6), STEPS (100000), MAX_TIME (seconds, 300) adjust it.
# Writes $OUT/train.log, $OUT/metrics.jsonl and the last two checkpoints gzipped, in parts under 16 MiB.
# Carry a folder holding only config.json and the newest checkpoint (the working tree travels up to 64 MiB).
# On an H200 the mocogan recipe ran 21-23 iterations/s (2026-11-27), against ~1/s on one CPU core.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
OUT="${OUT:-/tmp/vganzoo_gpu_train}"; mkdir -p "$OUT"
RUN=/tmp/vganzoo-digits-run
rm -rf "$RUN"; mkdir -p "$RUN/checkpoints"
COMMON=(--steps "${STEPS:-100000}" --max-time "${MAX_TIME:-300}" --device "${DEVICE:-cuda}" --workers "${WORKERS:-6}"
  --checkpoint-every 500 --keep-checkpoints 3 --sample-every 0 --log-every 100 --no-progress --out "$RUN")
ADAM='{"name":"adam","lr":0.0002,"betas":[0.5,0.999]}'
if [[ $# -ge 1 ]]; then
  latest="$(ls "$1"/checkpoints/ckpt-*.safetensors | tail -n 1)"  # carry only the newest (16 MiB each)
  cp "$1/config.json" "$RUN/" && cp "$latest" "$RUN/checkpoints/" || exit 1
  MODEL="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["model"]["model"])' "$RUN/config.json")" || exit 1
  ARGS=("$MODEL" --resume)  # the run's own recipe, overrides and data
elif [[ "${FAMILY:-mocogan}" == mocogan ]]; then
  # The recipe of vganzoo/weights/mocogan-rnn.digits (its card has the provenance): whole-frame image D with
  # R1, categorical video D, instance noise 0.1, EMA 0.995, image batch 16, video batch 8, width 0.5, 32 px.
  ARGS=(mocogan-rnn --data moving-digits --resolution 32 --channels 1 --num-classes 10 --width 0.5 --seed 0
    --model-arg 'discriminators=["mocogan/image", "mocogan/categorical-video"]' --model-arg noise_sigma=0.1
    --set 'regularizers=[{"name":"r1","weight":1.0,"roles":["image"]}]' --set discriminator_batch_size.image=16
    --set discriminator_batch_size.video=8 --set ema.decay=0.995)
elif [[ "$FAMILY" == tgan ]]; then
  ARGS=(tgan --data moving-digits --resolution 32 --channels 1 --width 0.5 --seed 0 --recipe alternate
    --set adversarial_loss=bce --set 'regularizers=[{"name":"r1","weight":1.0,"every":2}]'
    --set "optimizers.generator=$ADAM" --set "optimizers.discriminators=$ADAM" --set batch_size=16
    --set 'ema={"decay":0.999}')
elif [[ "$FAMILY" == vgan ]]; then
  ARGS=(vgan --data moving-digits --resolution 32 --frames 16 --channels 1 --width 0.5 --num-classes 0 --seed 0
    --set batch_size=32 --set 'regularizers=[{"name":"mask_l1","weight":0.1},{"name":"r1","weight":1.0,"every":2}]'
    --set 'ema={"decay":0.999}')
else
  echo "FAMILY must be mocogan, tgan or vgan, got '$FAMILY'" >&2; exit 2
fi
PYTHONUNBUFFERED=1 "$PY" -m vganzoo train "${ARGS[@]}" "${COMMON[@]}" > "$OUT/train.log" 2>&1
status=$?
tail -n 3 "$OUT/train.log"
cp "$RUN/logs/metrics.jsonl" "$OUT/" 2>/dev/null
# The device returns files of at most 16 MiB: each gzipped checkpoint comes back in 15 MiB parts
# (a width-0.5 VGAN checkpoint with its Adam state is 28 MB gzipped). Here: cat NAME.gz.part-* | gunzip > NAME
for f in $(ls "$RUN"/checkpoints/ckpt-*.safetensors 2>/dev/null | tail -n 2); do
  gzip -1 -c "$f" | split -b 15M -d -a 1 - "$OUT/$(basename "$f").gz.part-"
done
ls -la "$OUT"
exit $status
