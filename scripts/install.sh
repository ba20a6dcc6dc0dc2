#!/usr/bin/env bash
# Install proactivebench with every extra into the active Python environment.
# torch comes pinned: a bare `torch` would pull GBs of CUDA wheels; this pair builds every VLM processor.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -e ".[build,eval,serve,train,dev]"
