#!/usr/bin/env bash
# The whole pipeline on the bundled sample data (sets up .venv the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export FIFTYONE_DO_NOT_TRACK=true TOKENIZERS_PARALLELISM=false
exec .venv/bin/proactivebench demo "$@"
