#!/usr/bin/env bash
# Everything the speed work needs measured on one GPU, in one go (about 9 minutes on an H100/H200;
# see docs/speed.md). Installs nothing; writes logs and histories to $OUT (default ./gpu_out).
#
#   bash benchmarks/gpu_session.sh [DATA_DIR] [ITERATIONS]
#
# DATA_DIR holds F16.png (default data/denoising); without it the bundled astronaut is used.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
DATA_DIR=${1:-data/denoising}
ITERS=${2:-20000}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
IMAGE=F16
[ -f "$DATA_DIR/F16.png" ] || IMAGE=astronaut

# 1. Step time, every variant, 512x512, width 128.
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  python3 benchmarks/step_time.py --device cuda --size 512 --width 128 --iters 300; } 2>&1 | tee "$OUT/step_time.txt"

# 2. The CUDA tests (graph step equals eager; warm-up leaves no trace).
python3 -m pytest -q tests/test_fast_step.py 2>&1 | tail -5 | tee "$OUT/cuda_tests.txt"

# 3. Fidelity: the reference's eager step against the fast step, same seed, side by side on the GPU.
common=(--image "$IMAGE" --data_dir "$DATA_DIR" --nlevel 0.5 --width 128 --num_iter "$ITERS" --seed 0
        --device cuda --out_dir "$OUT/runs" --no_progress --overwrite)
python3 denoising.py "${common[@]}" --ckpt eager --step eager --precision tf32 > "$OUT/eager.log" 2>&1 &
python3 denoising.py "${common[@]}" --ckpt fast --step graph --precision tf32 --channels_last > "$OUT/fast.log" 2>&1 &
wait
cp "$OUT/runs/eager_history.csv" "$OUT/runs/fast_history.csv" "$OUT/runs/fast_last.png" "$OUT/" 2>/dev/null
tail -2 "$OUT/eager.log" "$OUT/fast.log"
python3 benchmarks/compare_histories.py "$OUT/eager_history.csv" "$OUT/fast_history.csv" | tee "$OUT/fidelity.txt"
rm -rf "$OUT/runs"
