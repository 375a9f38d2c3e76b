#!/usr/bin/env bash
# The aarch64 (NEON) kernels' tests on an x86-64 Linux machine: the library's unit tests
# cross-compiled for aarch64 and run under qemu's user-mode emulator (`-cpu max`, which
# has the dot-product instructions the NEON kernels need). Installs what it needs:
# gcc-aarch64-linux-gnu and qemu-user with apt-get (as root), the Rust target with rustup.
#
#   scripts/test-aarch64.sh [TEST FILTER...]     (default: kernels attention norm expf)
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "test-aarch64: $*" >&2; }
if ! command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || ! command -v qemu-aarch64 >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing gcc-aarch64-linux-gnu and qemu-user with apt-get"
    apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null; }
  else
    say "error: needs aarch64-linux-gnu-gcc and qemu-aarch64 (apt-get install gcc-aarch64-linux-gnu qemu-user)"
    exit 2
  fi
fi
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  say "adding the aarch64-unknown-linux-gnu target with rustup"
  rustup target add aarch64-unknown-linux-gnu >&2
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max"
filters=("$@")
[ ${#filters[@]} -gt 0 ] || filters=(kernels attention norm expf)
for f in "${filters[@]}"; do
  cargo test --target aarch64-unknown-linux-gnu --lib -- "$f"
done
