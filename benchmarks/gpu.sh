#!/usr/bin/env bash
# Every GPU benchmark of docs/performance.md with one command, on a machine with one CUDA GPU:
#
#     bash benchmarks/gpu.sh [OUTPUT_DIR]          # default runs/bench-gpu
#
# In order of what they check: the full training loop against the bare step, eager and compiled
# (ViT-B/16, 224 px, B = 256, bf16), the tiled loss at every precision, eager and compiled tiles,
# then the data path with its workers. Each writes its tables to OUTPUT_DIR/NAME.md as it goes, so
# an interrupted run keeps the ones that finished. Needs the project's dependencies importable
# (`pip install -e .`, or the wheels a machine without registry access is given, on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bench-gpu}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU")'
"$python" benchmarks/train_step.py --device cuda | tee "$out/train_step.md"
"$python" benchmarks/loss.py --device cuda --gpu | tee "$out/loss.md"
"$python" -W ignore benchmarks/data.py | tee "$out/data.md"
