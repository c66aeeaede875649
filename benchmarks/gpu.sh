#!/usr/bin/env bash
# Every GPU benchmark of docs/performance.md with one command, on a machine with one CUDA GPU:
#
#     bash benchmarks/gpu.sh [OUTPUT_DIR]          # default runs/bench-gpu
#
# In order of what they check: the full training loop against the bare step, eager and compiled
# (ViT-B/16, 224 px, B = 256, bf16), the tiled loss at every precision, eager and compiled tiles,
# then the data path with its workers. Each benchmark's tables go to OUTPUT_DIR/NAME.md once it
# has finished (NAME.md.partial while it runs). A table already there is never overwritten: its
# benchmark is skipped, so running the command again after an interruption continues it. Needs
# the project's dependencies importable (`pip install -e .`, or on a machine without registry
# access the wheels it lacks on PYTHONPATH).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/bench-gpu}
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA GPU")'

bench() {  # NAME COMMAND...: COMMAND's output to $out/NAME.md, skipped when that exists
    local name=$1
    shift
    if [[ -e "$out/$name.md" ]]; then
        echo "$out/$name.md exists: $name skipped"
        return
    fi
    if ! "$@" | tee "$out/$name.md.partial"; then
        echo "$name failed; its output so far is in $out/$name.md.partial" >&2
        return 1
    fi
    mv "$out/$name.md.partial" "$out/$name.md"
}

bench train_step "$python" benchmarks/train_step.py --device cuda
bench loss "$python" benchmarks/loss.py --device cuda --gpu
bench data "$python" -W ignore benchmarks/data.py
