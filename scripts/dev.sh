#!/usr/bin/env bash
# Set up the environment (idempotent) and run one task:
#   bash scripts/dev.sh train [overrides...]   train the default agent (or with Hydra overrides)
#   bash scripts/dev.sh test  [pytest args...] ruff + the test suite (this is what CI runs)
#
# Setup: uses the active virtualenv if there is one, else creates .venv in the repository; installs
# torch FIRST (TORCH_SPEC, default torch==2.13.0; an unpinned torch drags in GBs of CUDA packages),
# then this package in editable mode with its dev extra. Re-runs skip what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

task="${1:-}"
case "$task" in
  train|test) shift ;;
  *) echo "usage: bash scripts/dev.sh {train|test} [args...]" >&2; exit 2 ;;
esac

if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
  fi
  PY=.venv/bin/python
else
  PY=python
fi

stamp=".venv-installed.$(sha256sum pyproject.toml | cut -c1-12)"
if [ ! -f "$("$PY" -c 'import sys; print(sys.prefix)')/$stamp" ]; then
  if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  fi
  "$PY" -m pip install -q -e ".[dev]"
  touch "$("$PY" -c 'import sys; print(sys.prefix)')/$stamp"
fi

export MUJOCO_GL="${MUJOCO_GL:-egl}"
case "$task" in
  train) exec "$PY" -m jepa_agents.cli train "$@" ;;
  test)
    "$PY" -m ruff check jepa_agents envs tests scripts
    exec "$PY" -m pytest -q "$@" ;;
esac
