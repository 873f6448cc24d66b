#!/usr/bin/env bash
# Compile-check the CUDA part of vganzoo on a machine without a GPU (nothing is run).
#   1. a fresh virtual environment (local disk) with the CUDA build of torch;
#   2. FORCE_CUDA=1 build of vganzoo._C and vganzoo._C_cuda in a scratch copy of the tree (compile + link
#      only), with the CUTLASS kernels required (VGANZOO_REQUIRE_CUTLASS=1; .ci/fetch_cutlass.sh fills
#      third_party/cutlass first where it is absent), then checks that the CUDA and CUTLASS kernels are in
#      _C_cuda, that _C links no CUDA library and that both load without a GPU, and the build's wall time;
#   3. where bare nvcc exists, `nvcc -Xptxas -v` on the torch-free .cuh kernels (register/spill report),
#      failing if any kernel spills.
# Usage: .ci/cuda_check.sh [VENV_DIR]   (default: /tmp/vganzoo-cuda-venv; reused if present)
# Env: PYTHON (default python3), TORCH_CUDA_SPEC (default torch==2.14.1), TORCH_CUDA_ARCH_LIST (default 9.0).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-/tmp/vganzoo-cuda-venv}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_CUDA_SPEC:-torch==2.14.1}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
if [[ -z "${CUDA_HOME:-}" && -d /usr/local/cuda ]]; then export CUDA_HOME=/usr/local/cuda; fi
NVCC="${CUDA_HOME:+$CUDA_HOME/bin/}nvcc"
SCRATCH="$(mktemp -d /tmp/vganzoo-cuda-check.XXXXXX)"
trap 'rm -rf "$SCRATCH"' EXIT
# The extension's nvcc flags (setup.py + torch's defaults), so the ptxas report matches what ships.
HARNESS_FLAGS="--use_fast_math -lineinfo --expt-relaxed-constexpr -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__"
step() { printf '\n== %s\n' "$*"; }

step "virtual environment $VENV ($TORCH_SPEC)"
if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
if "$VENV/bin/python" -c 'import torch, ninja, numpy, setuptools, wheel; assert torch.version.cuda' 2>/dev/null; then
  echo "already provisioned (CUDA torch, ninja, numpy, setuptools, wheel): not reinstalling"
else
  "$VENV/bin/python" -m pip install --quiet "$TORCH_SPEC" ninja numpy setuptools wheel pybind11
fi
"$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda); assert torch.version.cuda, "not a CUDA build of torch"'

if [[ -z "${CUTLASS_HOME:-}" && ! -f "$ROOT/third_party/cutlass/include/cutlass/cutlass.h" ]]; then
  step "CUTLASS headers (third_party/cutlass is absent)"
  PYTHON="$VENV/bin/python" bash "$ROOT/.ci/fetch_cutlass.sh"
fi

step "FORCE_CUDA=1 build of vganzoo._C and _C_cuda (compile + link only; arch $TORCH_CUDA_ARCH_LIST, CUDA_HOME ${CUDA_HOME:-unset}, MAX_JOBS ${MAX_JOBS:-2}, load $(cut -d' ' -f1-3 /proc/loadavg))"
# A scratch copy so the developer's in-place CPU build is not clobbered.
tar -C "$ROOT" --exclude=.git --exclude='build' --exclude='*.so' --exclude='.venv*' -cf - . | tar -C "$SCRATCH" -xf -
BUILD_START=$SECONDS
(cd "$SCRATCH" && FORCE_CUDA=1 VGANZOO_REQUIRE_CUTLASS=1 MAX_JOBS="${MAX_JOBS:-2}" "$VENV/bin/python" setup.py \
   build_ext --inplace --build-temp "$SCRATCH/build-temp" 2>&1 | grep -Ev '^\s*$' | tail -n 20)
echo "build took $((SECONDS - BUILD_START)) s with MAX_JOBS=${MAX_JOBS:-2} on $(nproc) cores (load now $(cut -d' ' -f1-3 /proc/loadavg))"
SO="$(ls "$SCRATCH"/vganzoo/_C_cuda.*.so)"
CPU_SO="$(ls "$SCRATCH"/vganzoo/_C.*.so)"
echo "built $CPU_SO and $SO"
if ! nm -C "$SO" | grep 'conv3d_igemm_wmma_kernel' >/dev/null; then  # no -q: SIGPIPE + pipefail
  echo "FAIL: the CUDA kernels are missing from $SO" >&2
  exit 1
fi
if readelf -d "$CPU_SO" | grep NEEDED | grep -E 'cuda'; then  # its own links (ldd adds torch's)
  echo "FAIL: $CPU_SO (the CPU operators) links CUDA libraries (above): it must not need them" >&2
  exit 1
fi
echo "CUDA kernels present in vganzoo._C_cuda; vganzoo._C links no CUDA library"
# One CUTLASS implicit-GEMM kernel per family and dtype (csrc/cuda/cutlass/*.cu): fprop, dgrad (unit stride,
# strided), wgrad x bfloat16, float16, TF32.
# (nvcc gives the kernel stubs internal linkage, _ZN7cutlassL6Kernel..., which c++filt leaves mangled)
CUTLASS_KERNELS="$(nm "$SO" | grep -c '_ZN7cutlassL\?6KernelINS_4conv6kernel23ImplicitGemmConvolution' || true)"
CUTLASS_TABLE="$(nm -C "$SO" | grep -c 'vganzoo::cutlass_conv3d::k\(Fprop\|DgradUnitStride\|DgradStrided\|Wgrad\)' || true)"
echo "CUTLASS: $CUTLASS_KERNELS kernel symbols, $CUTLASS_TABLE of 12 kernel entries"
if [[ "$CUTLASS_KERNELS" -lt 12 || "$CUTLASS_TABLE" -lt 12 ]]; then
  echo "FAIL: the CUTLASS kernels are missing from $SO" >&2
  exit 1
fi
# Loading both without a GPU resolves every symbol (a shared library links with undefined ones: a CUDA
# source calling code that only _C compiles would fail here, not at link time) and registers the kernels.
"$VENV/bin/python" - "$CPU_SO" "$SO" <<'PY'
import sys, torch
for library in sys.argv[1:]:
    torch.ops.load_library(library)
has = torch._C._dispatch_has_kernel_for_dispatch_key
assert has("vganzoo::conv3d_bias_act", "CPU") and has("vganzoo::conv3d_bias_act", "CUDA"), "kernels not registered"
print("both libraries load without a GPU; CPU and CUDA kernels registered")
PY

if command -v "$NVCC" >/dev/null 2>&1; then
  step "nvcc -Xptxas -v on the .cuh kernels (sm_${TORCH_CUDA_ARCH_LIST%%[ ;]*})"
  ARCH="sm_$(echo "${TORCH_CUDA_ARCH_LIST%%[ ;]*}" | tr -d '.' | sed 's/+PTX//')"
  "$NVCC" -std=c++17 -O3 -arch="$ARCH" $HARNESS_FLAGS -I"$ROOT/csrc/cuda" -Xptxas -v -o "$SCRATCH/kernels_check" \
    "$ROOT/csrc/cuda/harness/kernels_check.cu" 2>&1 | tee "$SCRATCH/ptxas.log" | grep -E 'Compiling|Used|spill'
  if grep -E '[1-9][0-9]* bytes spill (stores|loads)' "$SCRATCH/ptxas.log"; then
    echo "FAIL: register spills in the kernels" >&2
    exit 1
  fi
  "$SCRATCH/kernels_check"
else
  echo "(no bare nvcc found: skipping the ptxas report)"
fi
step "CUDA compile check passed"
