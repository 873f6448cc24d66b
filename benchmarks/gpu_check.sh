#!/usr/bin/env bash
# One-shot GPU verification for vganzoo's CUDA ops (see /work/shared/GPU.md). Ends within GPU_CHECK_BUDGET_S
# (default 540 s) whatever happens: every step's timeout is cut to what is left, and steps that no longer fit
# are skipped (RESULT <step> SKIPPED), so the tables are always printed at the end.
#   1. environment report; 2. in-place build for the card, with the CUDA tests' and benchmarks' CUTLASS
#      kernels from the carried third_party/cutlass (the GPU machine has no network: fill it here with
#      .ci/fetch_cutlass.sh and send it along, carry=["third_party/cutlass"]); 3. kernel smoke test + ptxas
#      report; 4. every `cuda`-marked test (tests/ops/test_ops_cutlass.py included); 5. op benchmarks
#      (batch 16 and 64, fp32 and bf16; ours = the default dispatch, plus each forced CUDA path: our
#      implicit-GEMM kernel / cuDNN + our fused epilogue / CUTLASS) and a whole video discriminator fwd+bwd;
#      6. per-layer forward + backward, bf16 batch 16 (CUTLASS dgrad + wgrad vs cuDNN's backward); 7. batch 16
#      fp32 with TF32 allowed; 8. per-model sampling + training iteration (bench_models); 9. the same with
#      --amp (bf16) and CUDA graphs (bench_models --amp --cuda-graphs, batch 16); 10. torch.compile baseline
#      (bf16, batch 16). Benchmarks print their rows as they go; markdown tables go to $OUT (gpu_bench.md,
#      gpu_bench_bwd.md, gpu_bench_tf32.md, gpu_models.md, gpu_models_graphs.md, gpu_compile.md) when OUT is
#      set, and are printed last; a line "RESULT <step> ok|FAIL|SKIPPED" per step makes the log easy to scan.
# GPU_CHECK_STEPS="bench_models_graphs cuda_tests" runs only those measured steps (after the environment,
# the build and the smoke test), e.g. for a rerun that measures what the first run had no time left for.
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
DEADLINE=$((SECONDS + ${GPU_CHECK_BUDGET_S:-540}))
RESERVE_S=15  # kept for printing the tables at the end
result() { if [[ "$2" == 0 ]]; then echo "RESULT $1 ok"; else echo "RESULT $1 FAIL (rc $2)"; STATUS=1; fi; }
# budget CAP: seconds a step may take: CAP, or what is left before the deadline if that is less.
budget() {
  local left=$((DEADLINE - SECONDS - RESERVE_S))
  if ((left < CAP_MIN_S)); then echo 0; elif ((left < $1)); then echo "$left"; else echo "$1"; fi
}
CAP_MIN_S=20
# timed NAME CAP LOG CMD...: run CMD under `timeout` (CAP, or less near the deadline), printing its output as
# it goes and keeping it in LOG; SKIPPED when no time is left.
timed() {
  local name="$1" cap="$2" log="$3"; shift 3
  if [[ -n "${GPU_CHECK_STEPS:-}" && " $GPU_CHECK_STEPS " != *" $name "* ]]; then
    echo "RESULT $name SKIPPED (not in GPU_CHECK_STEPS)"; return
  fi
  local limit; limit="$(budget "$cap")"
  if [[ "$limit" == 0 ]]; then echo "RESULT $name SKIPPED (deadline: $((DEADLINE - SECONDS)) s left)"; return; fi
  timeout "$limit" "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  [[ $rc == 124 ]] && echo "(stopped after $limit s: the step's cap or the script's deadline)"
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
if [[ -f third_party/cutlass/include/cutlass/cutlass.h || -n "${CUTLASS_HOME:-}" ]]; then
  export VGANZOO_REQUIRE_CUTLASS=1
  echo "CUTLASS headers: ${CUTLASS_HOME:-third_party/cutlass} ($(cat third_party/cutlass/VERSION 2>/dev/null || echo '?'))"
else
  echo "WARNING: no third_party/cutlass (run .ci/fetch_cutlass.sh before, carry it along): building without CUTLASS"
fi
BUILD_START=$SECONDS
if ! timeout "$(budget 240)" "$PY" setup.py build_ext --inplace > /tmp/vganzoo_build.log 2>&1; then
  tail -n 40 /tmp/vganzoo_build.log
  echo "BUILD FAILED"; exit 1
fi
tail -n 3 /tmp/vganzoo_build.log
echo "build took $((SECONDS - BUILD_START)) s (MAX_JOBS=$MAX_JOBS)"
PYTHONPATH="$ROOT" "$PY" -c 'from vganzoo import ops; assert ops.extension_available("cuda"), "no CUDA kernels in vganzoo._C"; print("CUDA kernels registered")' || exit 1

step "kernel smoke test and ptxas report"
NVCC="${CUDA_HOME:+$CUDA_HOME/bin/}nvcc"
if command -v "$NVCC" >/dev/null 2>&1; then
  ARCH="sm_$(echo "${TORCH_CUDA_ARCH_LIST%%[ ;]*}" | tr -d '.' | sed 's/+PTX//')"
  timeout "$(budget 60)" "$NVCC" -std=c++17 -O3 -arch="$ARCH" $HARNESS_FLAGS -Icsrc/cuda -Xptxas -v \
    -o /tmp/vganzoo_kernels_check csrc/cuda/harness/kernels_check.cu 2>&1 | grep -E 'Used|spill' || true
  timeout 30 /tmp/vganzoo_kernels_check --run; result harness $?
fi

step "cuda tests (every test marked cuda)"
timed cuda_tests 170 /tmp/vganzoo_cuda_tests.log env PYTHONPATH="$ROOT" "$PY" -m pytest -q -m cuda tests \
  -p no:cacheprovider -W ignore::DeprecationWarning

step "GPU op benchmarks (ours = default dispatch; igemm / aten / cutlass = forced paths)"
timed bench_ops 150 /tmp/vganzoo_bench.log env PYTHONPATH="$ROOT" "$PY" benchmarks/bench_ops.py \
  --device cuda --batch 16 64 --dtype float32 bfloat16 --strategies igemm aten cutlass --model --reps 15 --warmup 3 \
  --out "$TABLE"

step "GPU op benchmarks, forward + backward per layer (bfloat16, batch 16)"
timed bench_ops_bwd 80 /tmp/vganzoo_bench_bwd.log env PYTHONPATH="$ROOT" "$PY" benchmarks/bench_ops.py \
  --device cuda --batch 16 --dtype bfloat16 --backward --strategies aten cutlass --reps 10 --warmup 2 \
  --out "$DEST/gpu_bench_bwd.md"

step "GPU op benchmarks, float32 with TF32 allowed (torch's default for convolutions)"
timed bench_ops_tf32 80 /tmp/vganzoo_bench_tf32.log env PYTHONPATH="$ROOT" VGANZOO_CUDA_TF32=1 "$PY" \
  benchmarks/bench_ops.py --device cuda --batch 16 --dtype tf32 --strategies igemm aten cutlass --model --reps 15 \
  --warmup 3 --out "$DEST/gpu_bench_tf32.md"

step "GPU model benchmarks (sampling + one training iteration, default ops vs reference)"
timed bench_models 100 "$DEST/gpu_models.md" env PYTHONPATH="$ROOT" "$PY" benchmarks/bench_models.py \
  --device cuda --batch 16 --repeat 7

step "GPU model benchmarks, bf16 autocast, eager vs CUDA graphs (batch 16; the first calls record)"
timed bench_models_graphs 120 "$DEST/gpu_models_graphs.md" env PYTHONPATH="$ROOT" "$PY" \
  benchmarks/bench_models.py --device cuda --batch 16 --repeat 7 --amp --cuda-graphs \
  --models 'mocogan-rnn,tgan,vgan,dvdgan'

step "torch.compile baseline (bfloat16, batch 16)"
timed bench_compile 90 /tmp/vganzoo_compile.log env PYTHONPATH="$ROOT" "$PY" benchmarks/bench_ops.py \
  --device cuda --batch 16 --dtype bfloat16 --compile --reps 10 --warmup 3 --out "$DEST/gpu_compile.md"

step "results (status $STATUS, $((DEADLINE - SECONDS)) s before the deadline)"
for f in "$TABLE" "$DEST/gpu_bench_bwd.md" "$DEST/gpu_bench_tf32.md" "$DEST/gpu_models.md" \
  "$DEST/gpu_models_graphs.md" "$DEST/gpu_compile.md"; do
  echo "--- $f"; cat "$f" 2>/dev/null || echo "(not written: the rows printed above are what was measured)"
done
exit $STATUS
