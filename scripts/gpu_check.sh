#!/usr/bin/env bash
# GPU check, run on a CUDA machine from the repo root: the CUDA tests, the selftest on the GPU, timings.
# Packages the machine lacks can be pre-installed from wheels in .whl/ (see the device notes).
set -uo pipefail
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site:$PWD || exit 1
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, langgraph; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
python3 -m pytest -q tests/test_gpu.py -p no:cacheprovider 2>&1 | tail -15
/usr/bin/time -v python3 -m graphs.cli.app selftest --device auto 2>/tmp/selftest.time | tail -22
grep -E "Elapsed|Maximum resident" /tmp/selftest.time
timeout 480 python3 scripts/bench_gpu.py | tee /tmp/bench_gpu.json
