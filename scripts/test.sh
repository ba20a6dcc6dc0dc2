#!/usr/bin/env bash
# The test suite, offline (sets up .venv the first time).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false FIFTYONE_DO_NOT_TRACK=true
exec .venv/bin/python -m pytest -p no:cacheprovider -rs "$@"
