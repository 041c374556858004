#!/usr/bin/env bash
# unigs set-up and entry point: creates (or reuses) ./.venv, then runs one job.
#   ./dev.sh demo    run the main job on the bundled default
#   ./dev.sh test    run the test suite (what CI runs)
#   ./dev.sh <cmd>   run any command inside the environment, e.g. ./dev.sh unigs --help
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv
STAMP=$VENV/.unigs-installed
if [ ! -f "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    echo "[dev.sh] preparing $VENV (first run takes a few minutes)" >&2
    "$PY" -c 'import sys; assert sys.version_info >= (3, 11), f"unigs needs Python >= 3.11, found {sys.version.split()[0]}"'
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    # torch first, from its pinned CPU build; the constraints file keeps every later install from replacing it.
    "$VENV/bin/python" -m pip install -q -c constraints.txt torch==2.13.0
    "$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
    echo "[dev.sh] compiling the colormap decoder's loops (once per machine, about a minute)" >&2
    "$VENV/bin/python" -c "from unigs.codec.dichotomy import warm_up; warm_up()"
    touch "$STAMP"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
case "${1:-}" in
    demo) shift; exec "$VENV/bin/unigs" demo "$@" ;;
    test) shift; exec "$VENV/bin/python" -m pytest "$@" ;;
    "") echo "usage: ./dev.sh demo | test | <command>" >&2; exit 2 ;;
    *) exec "$VENV/bin/$1" "${@:2}" ;;
esac
