#!/usr/bin/env bash
# README.md's "Installing the server", on this checkout's wheel, in a fresh virtual environment
# outside the checkout; then `doctor` and `complete` with tiny-moe. Run by `make test`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CODER_LSP_CACHE_DIR="${CODER_LSP_CACHE_DIR:-$repo/.cache/coder-lsp}"  # the tests' models

cd "$repo"
python3 -m pip wheel -q --no-deps -w "$work/dist" .
cd "$work"
python3 -m venv venv
venv/bin/pip install -q "$(ls dist/coder_lsp-*.whl)[cpu]"
venv/bin/pip uninstall -y -q torchvision torchaudio torchcodec || true

venv/bin/coder-lsp doctor --profile tiny-moe > doctor.txt
grep -q "ok: nothing missing" doctor.txt || { cat doctor.txt; exit 1; }
printf 'def add(a, b):\n    return \n' > a.py
venv/bin/coder-lsp complete a.py:2:12 --profile tiny-moe > completion.txt 2> complete.log \
  || { tail -20 complete.log; exit 1; }
test -s completion.txt || { echo "no completion"; tail -20 complete.log; exit 1; }
echo "install check: the wheel installs, doctor is clean, complete answers"
