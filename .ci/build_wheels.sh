#!/usr/bin/env bash
# Build vganzoo's wheels, the compiled extensions inside, and a find-links index of them:
#   cpu:  vganzoo._C (CPU kernels) against torch 2.13.0 (CPU build)          -> vganzoo-X+torch2.13.cpu-*.whl
#   cuda: vganzoo._C + vganzoo._C_cuda against torch 2.14.1 (CUDA 13.0),
#         sm_80 and sm_90 cubins + compute_90 PTX (compile and link only)   -> vganzoo-X+torch2.14.cu130-*.whl
# torch's C++ ABI ties an extension to one torch minor release and CUDA version, so each wheel's local
# version names them (README, "Prebuilt wheels"); users pick theirs with pip's --find-links.
#
# Usage: bash .ci/build_wheels.sh OUT_DIR
#   OUT_DIR gets the wheels, the find-links pages (index.html: all; torch2.13.cpu.html, ...: one torch and
#   CUDA each) and logs/ (each build's output). Wheels already in OUT_DIR stay listed.
# Env: BUILDS ("cpu cuda"), PYTHON (python3), CPU_TORCH (torch==2.13.0), CUDA_TORCH (torch==2.14.1),
#   CUDA_ARCHS ("8.0;9.0+PTX"), CUDA_HOME (/usr/local/cuda), MAX_JOBS (2), VENVS (/tmp/vganzoo-wheel-venvs:
#   one build venv per wheel, kept and reused), VGANZOO_WHEEL_INDEX (where the wheels will be published:
#   recorded in each wheel, so its mismatch message names it; default: OUT_DIR).
# Each wheel is built from a clean copy of the tree (the files git tracks or would track), so nothing
# built or cached here (build/, *.so, _build_info.py, __pycache__) leaks into a wheel; the compiled
# extensions are still reused from build/vganzoo-ext/ when the sources and torch are unchanged.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: bash .ci/build_wheels.sh OUT_DIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "$1")"
BUILDS="${BUILDS:-cpu cuda}"
PYTHON="${PYTHON:-python3}"
CPU_TORCH="${CPU_TORCH:-torch==2.13.0}"
CUDA_TORCH="${CUDA_TORCH:-torch==2.14.1}"
CUDA_ARCHS="${CUDA_ARCHS:-8.0;9.0+PTX}"
VENVS="${VENVS:-/tmp/vganzoo-wheel-venvs}"
export MAX_JOBS="${MAX_JOBS:-2}"
export VGANZOO_WHEEL_INDEX="${VGANZOO_WHEEL_INDEX:-$OUT}"
export VGANZOO_LOCAL_VERSION=auto  # setup.py: +torch2.13.cpu / +torch2.14.cu130
export PIP_DISABLE_PIP_VERSION_CHECK=1
mkdir -p "$OUT/logs" "$ROOT/build/vganzoo-ext"
step() { printf '\n== %s\n' "$*"; }

# A build venv: the torch the wheel is for, and setup.py's build requirements (pyproject.toml).
provision() {
  local venv="$1" torch_spec="$2"
  if [[ ! -x "$venv/bin/python" ]]; then
    "$PYTHON" -m venv "$venv"
  fi
  local want="${torch_spec#torch==}"
  if "$venv/bin/python" -c "import sys, torch, ninja, setuptools, wheel; sys.exit(torch.__version__.split('+')[0] != '$want')" 2>/dev/null; then
    echo "$venv: already has torch $want and the build requirements"
  else
    "$venv/bin/python" -m pip install --quiet "$torch_spec" "setuptools>=77" wheel ninja pybind11 numpy
  fi
  "$venv/bin/python" -c 'import torch; print("torch", torch.__version__, "| CUDA", torch.version.cuda)'
}

# What a wheel must hold and must not: the extensions and their build record; no build tree, tests, caches.
check_contents() {
  local wheel="$1" kind="$2" listing
  listing="$(unzip -Z1 "$wheel")"
  local required=('^vganzoo/_C\.[^/]*\.so$' '^vganzoo/_build_info\.py$' '^vganzoo/weights/mocogan-rnn\.digits/')
  [[ "$kind" == cuda ]] && required+=('^vganzoo/_C_cuda\.[^/]*\.so$')
  local pattern bad=0
  for pattern in "${required[@]}"; do
    if ! grep -Eq "$pattern" <<<"$listing"; then
      echo "FAIL: $wheel lacks $pattern" >&2
      bad=1
    fi
  done
  if [[ "$kind" == cpu ]] && grep -E '_C_cuda' <<<"$listing"; then
    echo "FAIL: CUDA code in the CPU wheel" >&2
    bad=1
  fi
  if grep -E '(^|/)(build|tests?|__pycache__|\.pytest_cache|\.ruff_cache|csrc)/|\.pyc$|\.o$|build\.ninja' <<<"$listing"; then
    echo "FAIL: $wheel holds build files, tests or caches (above)" >&2
    bad=1
  fi
  return "$bad"
}

build() {
  local kind="$1" torch_spec="$2"
  shift 2  # the rest: VAR=value settings for this build
  local venv="$VENVS/$kind" log="$OUT/logs/$kind.log" src
  step "$kind wheel: $torch_spec $(printf '%s ' "$@" | grep -oE '(FORCE_CUDA|TORCH_CUDA_ARCH_LIST|CUDA_HOME)=[^ ]*' | tr '\n' ' ')"
  local t0 t1 t2
  t0=$(date +%s)
  provision "$venv" "$torch_spec"
  t1=$(date +%s)
  src="$(mktemp -d "/tmp/vganzoo-wheel-src.XXXXXX")"
  # the files git tracks or would track: what a clean clone of this working tree holds
  (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null -T - --ignore-failed-read -cf -) \
    | tar -C "$src" -xf -
  mkdir -p "$src/build"
  ln -s "$ROOT/build/vganzoo-ext" "$src/build/vganzoo-ext"  # compiled extensions kept between builds
  echo "building (log: $log)"
  if ! (cd "$src" && env "$@" nice -n 10 "$venv/bin/python" -m pip wheel --no-build-isolation --no-deps \
      --wheel-dir "$src/dist" . >"$log" 2>&1); then
    tail -n 40 "$log" >&2
    echo "FAIL: the $kind wheel did not build (whole output: $log)" >&2
    exit 1
  fi
  t2=$(date +%s)
  if [[ "$kind" == cuda ]]; then  # the architectures nvcc compiled for (torch's build file for this build)
    local targets
    targets="$(grep -ohE 'arch=compute_[0-9]+,code=(sm|compute)_[0-9]+' "$src"/build/temp.*/build.ninja 2>/dev/null \
      | sort -u | tr '\n' ' ' || true)"
    echo "nvcc targets: ${targets:-(none compiled: reused from build/vganzoo-ext)}"
  fi
  local wheel
  wheel="$(ls "$src"/dist/vganzoo-*.whl)"
  check_contents "$wheel" "$kind"
  mv "$wheel" "$OUT/"
  rm -rf "$src"
  wheel="$OUT/$(basename "$wheel")"
  echo "built $(basename "$wheel"): $(du -h "$wheel" | cut -f1) ($(stat -c %s "$wheel") bytes);" \
    "venv $((t1 - t0)) s, wheel build $((t2 - t1)) s (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  unzip -l "$wheel" | grep -E '\.so$|_build_info' || true
}

for kind in $BUILDS; do
  case "$kind" in
    cpu) build cpu "$CPU_TORCH" ;;
    cuda)
      CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
      # the CUTLASS kernels are part of the CUDA wheel: their headers first (as .ci/cuda_check.sh does)
      if [[ -z "${CUTLASS_HOME:-}" && ! -f "$ROOT/third_party/cutlass/include/cutlass/cutlass.h" ]]; then
        provision "$VENVS/cuda" "$CUDA_TORCH" >/dev/null
        PYTHON="$VENVS/cuda/bin/python" bash "$ROOT/.ci/fetch_cutlass.sh"
      fi
      build cuda "$CUDA_TORCH" FORCE_CUDA=1 VGANZOO_REQUIRE_CUTLASS=1 TORCH_CUDA_ARCH_LIST="$CUDA_ARCHS" \
        CUDA_HOME="$CUDA_HOME" CUTLASS_HOME="${CUTLASS_HOME:-$ROOT/third_party/cutlass}" PATH="$CUDA_HOME/bin:$PATH"
      ;;
    *) echo "unknown build $kind (cpu, cuda)" >&2; exit 2 ;;
  esac
done

# index.html lists every wheel; torchX.Y.{cpu,cuNNN}.html only the wheels for that torch and CUDA, so that
# `pip install vganzoo -f OUT_DIR/torch2.13.cpu.html` picks the right one without naming the version
# (pip would otherwise take the highest local version, whatever torch is installed), as PyG's index does.
page() {
  local title="$1"
  shift
  echo "<!DOCTYPE html><html><head><title>$title</title></head><body><h1>$title</h1>"
  local wheel name
  for wheel in "$@"; do
    name="$(basename "$wheel")"
    echo "<a href=\"$name#sha256=$(sha256sum "$wheel" | cut -d' ' -f1)\">$name</a><br>"
  done
  echo "</body></html>"
}
step "find-links index: $OUT/index.html and one page per torch and CUDA"
shopt -s nullglob
wheels=("$OUT"/vganzoo-*.whl)
page "vganzoo wheels" "${wheels[@]}" >"$OUT/index.html"
for tag in $(printf '%s\n' "${wheels[@]##*/}" | sed -nE 's/^vganzoo-[^+]*\+([^-]+)-.*/\1/p' | sort -u); do
  page "vganzoo wheels for $tag" "$OUT"/vganzoo-*+"$tag"-*.whl >"$OUT/$tag.html"
  echo "$OUT/$tag.html"
done
ls -l "$OUT"/*.whl
