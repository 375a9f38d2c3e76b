#!/usr/bin/env bash
# Everything the tests need, then every test. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# The workbench's end-to-end tests drive the real binary inside tmux, and send the Server
# tab's server a request with curl.
for tool in tmux curl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq "$tool" >/dev/null
    else
      echo "lmwb tests: $tool is needed for the workbench's end-to-end tests (apt-get install $tool)" >&2
      exit 1
    fi
  fi
done
bash scripts/fetch-models.sh
# The server's socket tests run the official openai Python SDK against `lmwb serve`.
if ! python3 -c "import openai" >/dev/null 2>&1; then
  python3 -m pip install --quiet openai
fi
# ... and schemathesis fuzzes them against the OpenAI description in tests/fixtures/specs.
if ! python3 -c "import schemathesis" >/dev/null 2>&1; then
  python3 -m pip install --quiet schemathesis
fi
cargo test
