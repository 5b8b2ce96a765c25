#!/usr/bin/env bash
# Every check only a GPU can do, in one run (under 8 minutes on one H100), as one markdown table:
#
#     bench/gpu_check.sh OUT.md
#
# after the README's install (a CUDA machine: PyTorch's CUDA build, then pip install -e '.[gpu,plot]';
# the CUDA kernel tests also need pytest, from '.[test]'). The checks and their rows are in
# bench/gpu_check.py's docstring. With no GPU visible the GPU rows are skipped with the reason
# and the CPU rows still run. Exit status 1 when any row fails (marked **FAIL** in the table),
# 2 on wrong usage. PYTHON picks the interpreter (default: python3).
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: bench/gpu_check.sh OUT.md [--only ROW...]" >&2
    exit 2
fi
cd "$(dirname "$0")/.."
exec "${PYTHON:-python3}" bench/gpu_check.py "$@"
