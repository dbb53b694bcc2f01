#!/usr/bin/env bash
# Set up on a fresh machine (build the wheel, install it into .venv) and run the master on the
# example task module with its embedded spool directory (examples/spool). Ctrl-C stops it.
# Extra arguments go to the master, e.g. `bash scripts/run-example.sh --spooler-processes 2`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/uwsgidecorators ] || [ -n "$(find src python Cargo.toml -newer .venv/.built 2>/dev/null | head -1)" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  # maturin from PATH if there is one, else into .venv (and called from there: .venv is not on PATH)
  MATURIN="$(command -v maturin || true)"
  if [ -z "$MATURIN" ]; then
    [ -x .venv/bin/maturin ] || .venv/bin/pip install -q 'maturin>=1.9.4,<2'
    MATURIN=.venv/bin/maturin
  fi
  rm -rf dist/example && mkdir -p dist/example
  "$MATURIN" build --release -q -o dist/example --interpreter .venv/bin/python >/dev/null
  .venv/bin/pip install -q --force-reinstall --no-deps dist/example/*.whl
  touch .venv/.built
fi
exec .venv/bin/uwsgidecorators --ini examples/app.ini "$@"
