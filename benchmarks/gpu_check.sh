#!/usr/bin/env bash
# One-shot GPU verification for vganzoo's CUDA ops (see /work/shared/GPU.md). Under 5 minutes:
#   1. environment report; 2. in-place build for the card; 3. kernel smoke test + ptxas report;
#   4. every `cuda`-marked test; 5. op benchmarks (batch 16 and 64, fp32 and bf16; then batch 16 fp32 with
#      TF32 allowed; ours = the default dispatch, plus each forced CUDA path: our implicit-GEMM kernel /
#      cuDNN + our fused epilogue) and a whole video discriminator fwd+bwd; 6. per-model sampling + training
#      iteration (bench_models); 7. torch.compile baseline (bf16, batch 16). Markdown tables go to $OUT
#      (gpu_bench.md, gpu_bench_tf32.md, gpu_models.md, gpu_compile.md) when OUT is set, and are printed last; a line
#      "RESULT <step> ok|FAIL" per step makes the log easy to scan.
# Run from anywhere: benchmarks/gpu_check.sh   (uses $PYTHON, else python3; installs nothing, no network)
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-$(command -v python3 || command -v python)}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
export MAX_JOBS="${MAX_JOBS:-16}"
if [[ -z "${CUDA_HOME:-}" && -d /usr/local/cuda ]]; then export CUDA_HOME=/usr/local/cuda; fi
DEST="${OUT:-/tmp}"
TABLE="$DEST/gpu_bench.md"
STATUS=0
result() { if [[ "$2" == 0 ]]; then echo "RESULT $1 ok"; else echo "RESULT $1 FAIL"; STATUS=1; fi; }
# logged NAME LOG CMD...: run CMD with its output in LOG; on failure show the log's tail, then the RESULT line.
logged() {
  local name="$1" log="$2"; shift 2
  "$@" > "$log" 2>&1
  local rc=$?
  [[ $rc == 0 ]] || tail -n 30 "$log"
  result "$name" "$rc"
}
# The extension's nvcc flags (setup.py + torch's defaults), so the ptxas report matches what ships.
HARNESS_FLAGS="--use_fast_math -lineinfo --expt-relaxed-constexpr -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__"
step() { printf '\n== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || nvidia-smi || true
"$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.is_available() and torch.cuda.get_device_name())'
echo "nvcc: $(command -v nvcc || echo none)  CUDA_HOME=${CUDA_HOME:-unset}  TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"

step "build vganzoo._C in place for the card (no dependency install)"
rm -f vganzoo/_C*.so
if ! timeout 240 "$PY" setup.py build_ext --inplace > /tmp/vganzoo_build.log 2>&1; then
  tail -n 40 /tmp/vganzoo_build.log
  echo "BUILD FAILED"; exit 1
fi
tail -n 3 /tmp/vganzoo_build.log
PYTHONPATH="$ROOT" "$PY" -c 'from vganzoo import ops; assert ops.extension_available("cuda"), "no CUDA kernels in vganzoo._C"; print("CUDA kernels registered")' || exit 1

step "kernel smoke test and ptxas report"
NVCC="${CUDA_HOME:+$CUDA_HOME/bin/}nvcc"
if command -v "$NVCC" >/dev/null 2>&1; then
  ARCH="sm_$(echo "${TORCH_CUDA_ARCH_LIST%%[ ;]*}" | tr -d '.' | sed 's/+PTX//')"
  "$NVCC" -std=c++17 -O3 -arch="$ARCH" $HARNESS_FLAGS -Icsrc/cuda -Xptxas -v -o /tmp/vganzoo_kernels_check \
    csrc/cuda/harness/kernels_check.cu 2>&1 | grep -E 'Used|spill' || true
  /tmp/vganzoo_kernels_check --run; result harness $?
fi

step "cuda tests (every test marked cuda)"
PYTHONPATH="$ROOT" timeout 180 "$PY" -m pytest -q -m cuda tests -p no:cacheprovider -W ignore::DeprecationWarning
result cuda_tests $?

step "GPU op benchmarks (ours = default dispatch; igemm / aten = forced paths)"
logged bench_ops /tmp/vganzoo_bench.log env PYTHONPATH="$ROOT" timeout 150 "$PY" benchmarks/bench_ops.py \
  --device cuda --batch 16 64 --dtype float32 bfloat16 --strategies igemm aten --model --reps 20 --warmup 3 --out "$TABLE"

step "GPU op benchmarks, float32 with TF32 allowed (torch's default for convolutions)"
logged bench_ops_tf32 /tmp/vganzoo_bench_tf32.log env PYTHONPATH="$ROOT" VGANZOO_CUDA_TF32=1 timeout 90 "$PY" benchmarks/bench_ops.py \
  --device cuda --batch 16 --dtype tf32 --strategies igemm aten --model --reps 20 --warmup 3 --out "$DEST/gpu_bench_tf32.md"

step "GPU model benchmarks (sampling + one training iteration, default ops vs reference)"
logged bench_models "$DEST/gpu_models.md" env PYTHONPATH="$ROOT" timeout 120 "$PY" benchmarks/bench_models.py \
  --device cuda --batch 16 --repeat 7

step "torch.compile baseline (bfloat16, batch 16)"
logged bench_compile /tmp/vganzoo_compile.log env PYTHONPATH="$ROOT" timeout 120 "$PY" benchmarks/bench_ops.py \
  --device cuda --batch 16 --dtype bfloat16 --compile --reps 10 --warmup 3 --out "$DEST/gpu_compile.md"

step "results (status $STATUS)"
for f in "$TABLE" "$DEST/gpu_bench_tf32.md" "$DEST/gpu_models.md" "$DEST/gpu_compile.md"; do
  echo "--- $f"; cat "$f" 2>/dev/null || echo "(not written)"
done
exit $STATUS
