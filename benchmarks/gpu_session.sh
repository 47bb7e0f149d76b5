#!/usr/bin/env bash
# What the speed work needs measured on one GPU, in two calls of at most about 5 and 7.5 minutes
# on an H100/H200 (docs/speed.md gives the device tool calls). Installs nothing; writes what comes
# back to $OUT (default ./gpu_out), at most 7 files per phase, also when a stage runs out of time.
#
#   bash benchmarks/gpu_session.sh bench
#       the step time of every variant at 512x512, width 128 (step_time.txt, step_time.json), the
#       CUDA tests of tests/test_cuda_graph.py and tests/test_problem.py (cuda_tests.txt), and the kernels of the compiled
#       channels-last step ranked by GPU time (profile.txt)
#   bash benchmarks/gpu_session.sh fidelity [DATA_DIR] [ITERATIONS] [FAST_FLAGS]
#       F16 at 50%, width 128: the eager step and the fast step (FAST_FLAGS, default
#       "--step graph --channels_last") side by side on one seed for ITERATIONS (default 20000),
#       then their PSNR trajectories compared against the 0.2 dB bar, and their final images
#       with each other (fidelity.txt)
#
# DATA_DIR holds F16.png (default data/denoising); without it the bundled astronaut is used.
# DEVICE, SIZE and WIDTH (default cuda, 512, 128) exist to rehearse the script on a CPU;
# FIDELITY_SECONDS (default 430) stops both fidelity runs cleanly (as Ctrl-C does) at that time.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-512}
WIDTH=${WIDTH:-128}
PHASE=${1:-}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

case "$PHASE" in
bench)
    # Most wanted first, each stage with its own time limit (under 5 minutes in all):
    # whatever a limit cuts, what came before it is in $OUT.
    { nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
      python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
      timeout -k 15 -s INT 120 python3 benchmarks/step_time.py --device "$DEVICE" --size "$SIZE" --width "$WIDTH" \
          --iters 300 --json "$OUT/step_time.json"; } 2>&1 | tee "$OUT/step_time.txt"
    timeout 90 python3 -m pytest -q -rs -k cuda tests/test_cuda_graph.py tests/test_problem.py 2>&1 | tee "$OUT/cuda_tests.txt"
    # The kernels left once launches are gone (the reference's own profile is in the specification).
    timeout 60 python3 benchmarks/profile_step.py --device "$DEVICE" --size "$SIZE" --width "$WIDTH" \
        --channels_last --compile > "$OUT/profile.txt" 2>&1 || echo "profile_step.py: stopped, status $?" >> "$OUT/profile.txt"
    ;;
fidelity)
    DATA_DIR=${2:-data/denoising}
    ITERS=${3:-20000}
    read -r -a FAST <<< "${4:---step graph --channels_last}"
    IMAGE=F16
    [ -f "$DATA_DIR/F16.png" ] || IMAGE=astronaut
    RESIZE=()
    [ "$SIZE" = 512 ] || RESIZE=(--resize "$SIZE")
    THREADS=$(( $(nproc) / 2 ))  # two runs share the CPU: oversubscribed, both crawl (docs/speed.md)
    [ "$THREADS" -ge 1 ] || THREADS=1
    RUNS=$(mktemp -d)  # the runs' checkpoints and images stay here: $OUT takes few files
    common=(--image "$IMAGE" --data_dir "$DATA_DIR" --nlevel 0.5 --width "$WIDTH" --num_iter "$ITERS" --seed 0
            --device "$DEVICE" --threads "$THREADS" --out_dir "$RUNS" --no_progress "${RESIZE[@]}")
    limit=(timeout -s INT "${FIDELITY_SECONDS:-430}")
    "${limit[@]}" python3 denoising.py "${common[@]}" --ckpt eager --step eager > "$OUT/eager.log" 2>&1 &
    eager=$!
    "${limit[@]}" python3 denoising.py "${common[@]}" --ckpt fast "${FAST[@]}" > "$OUT/fast.log" 2>&1 &
    fast=$!
    wait $eager; echo "eager run: exit status $? (124: stopped cleanly at the time limit)" >> "$OUT/eager.log"
    wait $fast; echo "fast run: exit status $? (124: stopped cleanly at the time limit)" >> "$OUT/fast.log"
    for name in eager_history.csv fast_history.csv eager_last.png fast_last.png; do
        cp "$RUNS/$name" "$OUT/" || echo "missing: $name"
    done
    tail -n 3 "$OUT/eager.log" "$OUT/fast.log"
    IMAGES=()
    [ -f "$OUT/eager_last.png" ] && [ -f "$OUT/fast_last.png" ] && IMAGES=(--images "$OUT/eager_last.png" "$OUT/fast_last.png")
    { echo "$IMAGE ${SIZE}x${SIZE} width $WIDTH; eager: the eager tf32 step; fast: ${FAST[*]}"
      python3 benchmarks/compare_histories.py "$OUT/eager_history.csv" "$OUT/fast_history.csv" "${IMAGES[@]}"; } | tee "$OUT/fidelity.txt"
    rm -rf "$RUNS"
    ;;
*)
    echo "usage: gpu_session.sh bench | fidelity [DATA_DIR] [ITERATIONS] [FAST_FLAGS]" >&2
    exit 2
    ;;
esac
