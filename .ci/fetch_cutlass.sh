#!/usr/bin/env bash
# Fetch NVIDIA CUTLASS's C++ headers (cutlass/ and cute/) for the CUDA build of vganzoo._C (issue 18).
# Downloads the `nvidia-cutlass` wheel from the package registry (pip, no dependencies) and unpacks only
# cutlass_library/source/include into third_party/cutlass/include (ignored by git; sent along with the
# working tree to GPU machines, which have no network). Idempotent: a present, matching copy is kept.
# Usage: .ci/fetch_cutlass.sh          Env: CUTLASS_VERSION (default 4.2.0.0), PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${CUTLASS_VERSION:-4.2.0.0}"
PYTHON="${PYTHON:-python3}"
DEST="$ROOT/third_party/cutlass"
STAMP="$DEST/VERSION"
PREFIX="cutlass_library/source/include/"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" && -f "$DEST/include/cutlass/cutlass.h" ]]; then
  echo "CUTLASS $VERSION headers already in $DEST/include"
  exit 0
fi

WORK="$(mktemp -d /tmp/vganzoo-cutlass.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --dest "$WORK" "nvidia-cutlass==$VERSION"
WHEEL="$(ls "$WORK"/nvidia_cutlass-*.whl)"
# Unpack into a scratch folder first, then swap it in, so an interrupted run leaves no half copy.
"$PYTHON" - "$WHEEL" "$WORK/include" "$PREFIX" <<'PY'
import os
import sys
import zipfile

wheel, dest, prefix = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.startswith(prefix) and not m.endswith("/")]
    for member in members:
        target = os.path.join(dest, member[len(prefix):])
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive.open(member) as src, open(target, "wb") as out:
            out.write(src.read())
print(f"unpacked {len(members)} headers from {os.path.basename(wheel)}")
PY
test -f "$WORK/include/cutlass/cutlass.h" || { echo "FAIL: no cutlass/cutlass.h in the wheel" >&2; exit 1; }
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$WORK/include" "$DEST/include"
echo "$VERSION" > "$STAMP"
echo "CUTLASS $VERSION headers in $DEST/include ($(du -sh "$DEST/include" | cut -f1))"
