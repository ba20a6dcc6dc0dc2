#!/usr/bin/env bash
# Create .venv (once) and install the project into it; re-installs when pyproject.toml or install.sh changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.proactivebench-installed
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/install.sh -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    PATH="$PWD/.venv/bin:$PATH" bash scripts/install.sh
    touch "$stamp"
fi
