#!/usr/bin/env bash
# Everything the speed work needs measured on a GPU, in one call that fits in 8 minutes on an
# H100/H200 (the device tool's timeout_s about 540 leaves a minute to spare; docs/speed.md):
#
#     bash benchmarks/gpu_session.sh
#
# Installs nothing. Writes $OUT/summary.md, a section per stage (its status, the time it took,
# its key lines), appended as it goes: a stage cut by its limit, or the whole call cut short,
# leaves the stages before it. Beside it at most four raw files, each far under 16 MiB:
# step_time.json, logging_overhead.json, memory_peak.json, and logs.tar.gz (every stage's full
# output, the fidelity runs' histories and final images), packed again after every stage.
#
# The stages, most wanted first, each with a time limit (seconds, at SIZE 512 or more). A stage
# may also use what the stages before it left unused: stage k ends by the sum of the limits up
# to k, counted from the start. Every program runs under `timeout -s INT` within what its stage
# has left: it stops cleanly and reports what it measured, or is killed GRACE (5) seconds later.
# So the call ends within the sum, 445 s, plus 5 s and the packing of the logs:
#
#   stage                                                                   limit
#   a  pre-flight (benchmarks/preflight.py): Python, PyTorch against           25
#      constraints.txt, GPU, driver, kernels, compilers, the optional
#      packages missing, the entry points' imports; if the project cannot
#      run there, the call stops here and says why in one line
#   b  the CUDA tests (pytest -k cuda over tests/), compiled ones last          60
#   c  the command line at 128x128, width 16: eager, graph, graph + resume,    85
#      bf16, the memory refusal, a forced out-of-memory, compile
#   d  step time at SIZE, WIDTH: the fast step against eager tf32 and fp32     60
#   e  logging overhead at SIZE, width 8: logged every 10 against every 200    45
#   f  fidelity: the default eager step twice (how far two runs of one step   135
#      differ: the floor) and the fast step, as many iterations each as d's
#      measured times allow within the stage, at most FIDELITY_ITERS
#   g  CUDA memory: measured peaks against recovery/memory.py's estimate       35
#                                                                     total   445
#
# Below SIZE 512 every limit is scaled by SIZE / 512, to 40% at least: the CPU rehearsal
# (tests/test_gpu_session.py: DEVICE=cpu SIZE=64 WIDTH=8) ends within 178 s and a little; its
# work, process start-ups mostly, is cut short where a busy CPU is slower than that. Off CUDA what
# needs CUDA (the CUDA tests, graphs, compiling, a device running out of memory) says "skipped:
# needs CUDA", and leaves its time to the stages after it.
#
# Every status comes from the program's exit status and its output: a Python traceback is "failed",
# with its last line. A stage that could not measure all it should says "partial" and why.
#
# Settings, from the environment: OUT (gpu_out), DEVICE (cuda; cuda:N, or cpu to rehearse),
# SIZE (512), WIDTH (128), DATA_DIR (data/denoising: the fidelity's F16.png, else the astronaut),
# FAST_FLAGS (--step graph --channels_last; off CUDA --channels_last), FIDELITY_ITERS (3000 at
# SIZE 512; below, (SIZE / 512)^2 as many, at least 200).
# Exit status 0 once every stage has had its turn, whatever it found (summary.md says); 1 when the
# pre-flight stops the call; 2 for a bad setting.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PROG=gpu_session.sh
refuse() { echo "$PROG: error: $*" >&2; exit 2; }
[ $# -eq 0 ] || refuse "takes no argument (settings are environment variables: OUT, DEVICE, SIZE, WIDTH, DATA_DIR, FAST_FLAGS, FIDELITY_ITERS), got: $*"
OUT=${OUT:-gpu_out}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-512}
WIDTH=${WIDTH:-128}
DATA_DIR=${DATA_DIR:-data/denoising}
FIDELITY_ITERS=${FIDELITY_ITERS:-}
[[ $SIZE =~ ^[0-9]+$ ]] && SIZE=$((10#$SIZE)) && [ "$SIZE" -ge 64 ] && [ $((SIZE % 32)) -eq 0 ] \
    || refuse "SIZE must be a multiple of 32 and at least 64, got '$SIZE'"
[[ $WIDTH =~ ^[0-9]+$ ]] && WIDTH=$((10#$WIDTH)) && [ "$WIDTH" -ge 1 ] || refuse "WIDTH must be at least 1, got '$WIDTH'"
# 3,000 iterations at 512x512, fewer on smaller problems, at least 200: (SIZE / 512)^2 as many
[ -n "$FIDELITY_ITERS" ] || FIDELITY_ITERS=$(( SIZE >= 512 ? 3000 : (3000 * SIZE * SIZE / 262144 > 200 ? 3000 * SIZE * SIZE / 262144 : 200) ))
[[ $FIDELITY_ITERS =~ ^[0-9]+$ ]] && FIDELITY_ITERS=$((10#$FIDELITY_ITERS)) && [ "$FIDELITY_ITERS" -ge 2 ] \
    || refuse "FIDELITY_ITERS must be at least 2, got '$FIDELITY_ITERS'"
[[ $DEVICE =~ ^(cpu|cuda|cuda:[0-9]+)$ ]] || refuse "DEVICE must be cuda, cuda:N or cpu, got '$DEVICE'"
ON_CUDA=no; [[ $DEVICE == cuda* ]] && ON_CUDA=yes
FAST_DEFAULT="--step graph --channels_last"; [ "$ON_CUDA" = yes ] || FAST_DEFAULT="--channels_last"  # graphs: CUDA only
read -r -a FAST <<< "${FAST_FLAGS:-$FAST_DEFAULT}"
command -v python3 > /dev/null || refuse "python3 is not on PATH"
mkdir -p "$OUT" 2> /dev/null && [ -w "$OUT" ] || refuse "OUT $OUT cannot be written"

declare -A LIMIT=([a]=25 [b]=60 [c]=85 [d]=60 [e]=45 [f]=135 [g]=35)  # the header's table
GRACE=5  # seconds between a program's SIGINT and its SIGKILL
SCALE=$(( SIZE >= 512 ? 100 : (SIZE * 100 / 512 > 40 ? SIZE * 100 / 512 : 40) ))  # percent
PLANNED=$SECONDS  # where the stages so far should have ended
TOTAL=0; for key in "${!LIMIT[@]}"; do TOTAL=$(( TOTAL + LIMIT[$key] * SCALE / 100 )); done
export PYTHONUNBUFFERED=1  # a program cut by its limit has written what it printed
WORK=$(mktemp -d)  # runs and logs; only the summary and a few raw files go to $OUT
trap 'rm -rf "$WORK"' EXIT
LOGS=$WORK/logs RUNS=$WORK/runs
mkdir -p "$LOGS" "$RUNS"
SUMMARY=$OUT/summary.md
rm -f "$SUMMARY" "$OUT"/{step_time,logging_overhead,memory_peak}.json "$OUT/logs.tar.gz"  # none from an earlier call

say() { printf '%s\n' "$@" >> "$SUMMARY"; }
codeblock() { say '```text'; cat "$@" >> "$SUMMARY" 2> /dev/null; say '```'; }
pack_logs() {  # after every stage: what a later stage's cut or the call's end leaves is packed
    tar -czf "$OUT/logs.tar.gz.partial" -C "$WORK" logs 2> /dev/null && mv "$OUT/logs.tar.gz.partial" "$OUT/logs.tar.gz"
}
begin_stage() {  # begin_stage KEY TITLE
    STAGE=$1 STAGE_START=$SECONDS
    PLANNED=$(( PLANNED + LIMIT[$1] * SCALE / 100 ))
    STAGE_END=$PLANNED STAGE_LIMIT=$(( PLANNED - SECONDS ))  # its limit and what the stages before left
    say "" "## $1. $2" "" "Started at +$SECONDS s."
}
end_stage() {  # end_stage STATUS: the status and time; the stage has written its key lines after it
    say "" "Status: $1" "" "Time: $((SECONDS - STAGE_START)) s of the $STAGE_LIMIT s it had (limit $(( LIMIT[$STAGE] * SCALE / 100 )) s)" ""
}
limited() {  # limited NAME CAP COMMAND...: COMMAND within what is left of the stage, and CAP:
    local name=$1 cap=$2 left  # CAP > 0: at most CAP s; 0: no more; < 0: leaving -CAP s of the stage
    shift 2
    left=$(( STAGE_END - SECONDS ))
    [ "$cap" -lt 0 ] && left=$(( left + cap ))
    [ "$cap" -gt 0 ] && [ "$cap" -lt "$left" ] && left=$cap
    if [ "$left" -lt 3 ]; then
        echo "not started: the stage's limit was reached" > "$LOGS/$name.err"; : > "$LOGS/$name.out"
        return 125
    fi
    timeout -k "$GRACE" -s INT "$left" "$@" > "$LOGS/$name.out" 2> "$LOGS/$name.err"
}
describe_status() {  # describe_status STATUS [WHAT_1_MEANS]
    case $1 in
    0) echo ok ;;
    124 | 137) echo "cut by its limit (what it measured until then is below)" ;;
    125) echo "not started: the stage's limit was reached" ;;
    1) echo "${2:-failed (exit 1)}" ;;
    *) echo "failed (exit $1)" ;;
    esac
}
error_line() {  # error_line NAME: the last line of a Python traceback in NAME's output, if it holds one
    grep -qs '^Traceback (most recent call last)' "$LOGS/$1.out" "$LOGS/$1.err" || return 0
    local last
    last=$(grep -hv '^[[:space:]]*$' "$LOGS/$1.err" | tail -n 1)
    [ "$last" = KeyboardInterrupt ] || echo "${last:-a traceback}"  # a cut by SIGINT is not a failure
}
status_of() {  # status_of NAME STATUS [WHAT_1_MEANS]: a program's status, from its exit status and output
    local line
    line=$(error_line "$1")
    if [ -n "$line" ]; then echo "failed (exit $2): $line"; else describe_status "$2" "${3:-}"; fi
}
cuda_missing() {  # the reason a CUDA stage cannot run, or nothing
    [ "$ON_CUDA" = yes ] || { echo "skipped: needs CUDA"; return; }
    [ "$CUDA_OK" = yes ] || echo "skipped: CUDA is not available (section a)"
}

say "# GPU session" "" \
    "DEVICE $DEVICE, SIZE $SIZE, WIDTH $WIDTH, FIDELITY_ITERS $FIDELITY_ITERS, fast flags \`${FAST[*]}\`;" \
    "limits at $SCALE% of the script's table, $TOTAL s in all; started $(date -u '+%Y-%m-%d %H:%M:%S') UTC;" \
    "checkout $(git rev-parse --short HEAD 2> /dev/null || echo '(not a git checkout)')."

# a. Pre-flight: what runs here, and whether the project can; if not, the call stops.
begin_stage a "Pre-flight"
{
    if command -v nvidia-smi > /dev/null; then
        nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/nvidia-smi: /'
    else
        echo "nvidia-smi: not found"
    fi
    echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 2^20}' /proc/meminfo)"
} > "$LOGS/a_machine.txt" 2>&1
limited a_preflight 0 python3 benchmarks/preflight.py --device "$DEVICE"
status=$?
cat "$LOGS/a_machine.txt" "$LOGS/a_preflight.out" "$LOGS/a_preflight.err" > "$LOGS/a_environment.txt"
CUDA_OK=no; grep -q 'cuda available: True' "$LOGS/a_preflight.out" && CUDA_OK=yes
if [ $status -eq 2 ] && [ -z "$(error_line a_preflight)" ]; then  # the project cannot run here: said in one line
    why=$(tail -n 1 "$LOGS/a_preflight.out")
    end_stage "stopped: $why"
    codeblock "$LOGS/a_environment.txt"
    say "" "## Done" "" "Stopped after the pre-flight in $SECONDS s: $why"
    pack_logs
    echo "$PROG: $why" >&2
    exit 1
fi
end_stage "$(status_of a_preflight $status)"
codeblock "$LOGS/a_environment.txt"
pack_logs

# b. The CUDA tests, the compiled ones last: compiling may take the stage's time.
begin_stage b "CUDA tests"
if reason=$(cuda_missing) && [ -n "$reason" ]; then
    end_stage "$reason"
else
    # A test module that cannot be collected is an error of its own, not the end of the others.
    pytest=(python3 -m pytest -v -rfEs -p no:cacheprovider --continue-on-collection-errors -m "slow or not slow" tests)
    limited b_cuda_tests 0 "${pytest[@]}" -k "cuda and not compiled"; first=$?
    limited b_cuda_tests_compiled 0 "${pytest[@]}" -k "cuda and compiled"; second=$?
    tests_status() {  # tests_status NAME STATUS: ok, or pytest's closing line
        local closing
        closing=$(grep -hE '^=+ .*(passed|failed|error|skipped|deselected|no tests ran).* in [0-9.]+s' "$LOGS/$1.out" \
            | tail -n 1 | sed -E 's/^=+ //; s/ =+$//')
        case $2 in
        0) echo "ok (${closing:-no closing line})" ;;
        5) echo "failed: no CUDA test was collected" ;;
        124 | 137 | 125) describe_status "$2" | sed 's/ (what.*//' ;;
        *) echo "failed (exit $2): ${closing:-$(status_of "$1" "$2")}" ;;
        esac
    }
    end_stage "$(tests_status b_cuda_tests $first); compiled ones: $(tests_status b_cuda_tests_compiled $second)"
    for part in b_cuda_tests b_cuda_tests_compiled; do
        grep -hE ' (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)|^(FAILED|ERROR|SKIPPED) |^=+ .*(passed|failed|error|skipped)' \
            "$LOGS/$part.out" > "$LOGS/$part.key"
        tail -n 3 "$LOGS/$part.err" >> "$LOGS/$part.key"
    done
    codeblock "$LOGS/b_cuda_tests.key" "$LOGS/b_cuda_tests_compiled.key"
fi
pack_logs

# c. The command line end to end, as a user runs it, each run checked.
begin_stage c "Command line end to end"
CLI_SIZE=$(( SIZE < 128 ? SIZE : 128 )) CLI_WIDTH=$(( WIDTH < 16 ? WIDTH : 16 ))
CLI=(python3 denoising.py --device "$DEVICE" --out_dir "$RUNS/cli" --no_progress)
SMALL=(--image astronaut --resize "$CLI_SIZE" --width "$CLI_WIDTH" --show_every 50)
HUGE=(--image astronaut --resize 2048 --width 1024 --num_iter 300)  # 2048x2048 at width 1024: about 290 GiB
RESUME_STEP=(--step graph); [ "$ON_CUDA" = yes ] || RESUME_STEP=()  # off CUDA the eager step resumes
ROWS=$LOGS/c_rows.md FAILED=0
declare -A WALL=()  # each run's wall time, s: the eager one's, less its loop, is a run's start-up (stage f)
: > "$ROWS"
row() {  # row RUN FLAGS RESULT PRINTED: a row of the table, its cells' | escaped
    local result=${3//|/\\|} printed=${4//|/\\|}
    echo "| $1 | ${2:+\`$2\`} | $result | $printed |" >> "$ROWS"
    [[ $3 == ok* || $3 == skipped* ]] || FAILED=$((FAILED + 1))
}
finished() {  # finished NAME STATUS: "ok" if the run ended with its done line, else why not
    if [ "$2" -eq 0 ] && grep -q '^done: ' "$LOGS/$1.out"; then echo ok; else status_of "$1" "$2" | sed 's/ (what.*//'; fi
}
outcome() {  # outcome NAME: its done (or error) line and its peak GPU memory line
    grep -hE '^(done|peak GPU memory|stopped by)' "$LOGS/$1.out" | tr '\n' ' '
    grep -hv '^$' "$LOGS/$1.err" | tail -n 1
}
one_line_failure() {  # one_line_failure NAME STATUS EXPECTED: a single error line, that status, no traceback
    local lines
    lines=$(grep -c . "$LOGS/$1.err")
    if [[ $2 =~ ^(124|125|137)$ ]]; then
        describe_status "$2" | sed 's/ (what.*//'
    elif [ "$2" -eq "$3" ] && [ "$lines" -eq 1 ] && grep -q '^denoising.py: error: ' "$LOGS/$1.err" \
        && ! grep -q Traceback "$LOGS/$1.out" "$LOGS/$1.err"; then
        echo "ok: exit $2, one line"
    else
        echo "FAILED: exit $2 (wanted $3), $lines lines on stderr$(grep -q Traceback "$LOGS/$1.err" && echo ', a traceback')"
    fi
}
cli_run() {  # cli_run NAME CAP NEEDS_CUDA FLAGS...: a run of 300 iterations, a row of the table
    local name=$1 cap=$2 needs=$3
    shift 3
    if [ "$needs" = cuda ] && reason=$(cuda_missing) && [ -n "$reason" ]; then row "$name" "$*" "$reason" ""; return; fi
    local start=$SECONDS
    limited "c_$name" "$cap" "${CLI[@]}" "${SMALL[@]}" --num_iter 300 --ckpt "$name" "$@"
    local status=$?
    WALL[$name]=$(( SECONDS - start ))
    row "$name" "$*" "$(finished "c_$name" $status)" "$(outcome "c_$name")"
}
cli_run eager 30 any
cli_run graph 30 cuda --step graph
# Resume: 150 iterations, then the same run on to 300, set against the uninterrupted run.
limited c_resume_150 30 "${CLI[@]}" "${SMALL[@]}" --num_iter 150 --ckpt resumed "${RESUME_STEP[@]}"
status=$?
row "resume: first 150" "--num_iter 150${RESUME_STEP[*]:+ ${RESUME_STEP[*]}}" "$(finished c_resume_150 $status)" "$(outcome c_resume_150)"
limited c_resume_300 30 "${CLI[@]}" --num_iter 300 --ckpt resumed --resume "${RESUME_STEP[@]}"
status=$?
whole=eager; [ "$ON_CUDA" = yes ] && whole=graph
check=$(grep -q '^resuming at iteration 150 of 300' "$LOGS/c_resume_300.out" && echo "resumed at 150;")
if [ -f "$RUNS/cli/${whole}_history.csv" ] && [ -f "$RUNS/cli/resumed_history.csv" ]; then
    limited c_resume_compare 20 python3 benchmarks/compare_histories.py --tolerance 0 \
        "$RUNS/cli/${whole}_history.csv" "$RUNS/cli/resumed_history.csv"
    check+=" against the uninterrupted $whole run: $(grep -h '^max |dPSNR|' "$LOGS/c_resume_compare.out" | sed 's/ (.*//')"
fi
row "resume: on to 300" "--resume --num_iter 300${RESUME_STEP[*]:+ ${RESUME_STEP[*]}}" "$(finished c_resume_300 $status)" \
    "$check; $(outcome c_resume_300)"
cli_run bf16 30 any --precision bf16
# Too large for any device: refused before it starts, in one line, and nothing written.
limited c_refused 30 "${CLI[@]}" "${HUGE[@]}" --ckpt refused
status=$?
check=$(one_line_failure c_refused $status 2)
compgen -G "$RUNS/cli/refused_*" > /dev/null && check="FAILED: it wrote files; $check"
row "memory refusal" "--resize 2048 --width 1024" "$check" "$(outcome c_refused)"
if reason=$(cuda_missing) && [ -n "$reason" ]; then
    row "forced out-of-memory" "--resize 2048 --width 1024 --no_memory_check" "$reason" ""
else
    limited c_oom 40 "${CLI[@]}" "${HUGE[@]}" --ckpt oom --no_memory_check
    status=$?
    row "forced out-of-memory" "--resize 2048 --width 1024 --no_memory_check" "$(one_line_failure c_oom $status 1)" \
        "$(outcome c_oom)"
fi
cli_run compile 0 cuda --compile  # last: compiling takes what is left of the stage
end_stage "$([ "$FAILED" -eq 0 ] && echo ok || echo "$FAILED of the runs below not ok")"
say "Astronaut at ${CLI_SIZE}x${CLI_SIZE}, width $CLI_WIDTH, 300 iterations logged every 50 unless said." ""
say "| run | flags | result | what it printed |" "| --- | --- | --- | --- |"
cat "$ROWS" >> "$SUMMARY"
pack_logs

# d. The step alone, the fast step against the eager step a user runs by default (tf32) and fp32.
begin_stage d "Step time"
limited d_step_time 0 python3 benchmarks/step_time.py --device "$DEVICE" --size "$SIZE" --width "$WIDTH" --iters 200 \
    --json "$OUT/step_time.json"
status=$?
unmeasured=$(grep -hE ': (FAILED|not measured)' "$LOGS/d_step_time.out" | sed 's/ (.*//' | paste -sd ',' - | sed 's/,/, /g')
end_stage "$(status_of d_step_time $status "partial: a speed-up unknown (${unmeasured:-a variant failed} not measured)")"
codeblock "$LOGS/d_step_time.out" "$LOGS/d_step_time.err"
pack_logs

# e. What a logged iteration costs, and the run's own seconds against the step alone.
begin_stage e "Logging overhead"
limited e_logging 0 python3 benchmarks/logging_overhead.py --device "$DEVICE" --size "$SIZE" \
    --width $(( WIDTH < 8 ? WIDTH : 8 )) --rounds 2 --json "$OUT/logging_overhead.json"
status=$?
end_stage "$(status_of e_logging $status)"
codeblock "$LOGS/e_logging.out" "$LOGS/e_logging.err"
pack_logs

# f. Fidelity: the default eager step twice, then the fast step, on the same seed and as many
# iterations each as stage d's times allow; the fast step's gap to eager is read against the gap
# between the two eager runs (on a GPU, two runs of one step differ: nondeterministic kernels).
begin_stage f "Fidelity of the fast step against the default eager step"
IMAGE=F16; [ -f "$DATA_DIR/F16.png" ] || IMAGE=astronaut
RESIZE=(); [ "$SIZE" -eq 512 ] || RESIZE=(--resize "$SIZE")  # F16 is 512x512: the paper's run is not resized
FIDELITY=(python3 denoising.py --image "$IMAGE" --data_dir "$DATA_DIR" --nlevel 0.5 --width "$WIDTH" --seed 0
          --device "$DEVICE" --out_dir "$RUNS/fidelity" --no_progress "${RESIZE[@]}")
COMPARE_S=15  # kept for the comparisons at the end of the stage
# A run's start-up: stage c's eager run, less its loop's own seconds (15 s where unknown).
STARTUP=$(awk -F, -v wall="${WALL[eager]:-0}" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") col = i }
    NR > 1 && col { seconds = $col } END { s = wall - seconds; print (wall > 0 && s > 0) ? int(s + 0.5) : 15 }' \
    "$RUNS/cli/eager_history.csv" 2> /dev/null || echo 15)
# ITERS, and each eager run's time limit, from stage d's ms per iteration (FIDELITY_ITERS where unknown).
read -r ITERS EAGER_CAP SIZING < <(python3 - "$OUT/step_time.json" "$STAGE_LIMIT" "$STARTUP" "$COMPARE_S" \
    "$FIDELITY_ITERS" <<'EOF'
import json, sys
path, left, startup, compare, most = sys.argv[1], *map(int, sys.argv[2:])
try:
    variants = json.load(open(path))["variants"]
    eager = next(v["ms"] for v in variants if not v["flags"] and v["precision"] in ("tf32", "fp32"))
    fast = next(v["ms"] for v in variants if v["label"].startswith("fast"))
    assert eager and fast
except Exception:  # no timing: the most asked for, each eager run a third of the stage
    print(most, max(3, (left - compare) // 3), "unsized (stage d measured no step time)")
    sys.exit()
# Three start-ups and the comparisons first; 80% of the rest for the steps (logging, checkpoints).
budget = 0.8 * (left - compare - 3 * 1.5 * startup)
iters = max(2, min(most, int(budget * 1000 / (2 * eager + fast))))
cap = int(1.5 * startup + 1.25 * iters * eager / 1000) + 5
print(iters, cap, f"{iters} iterations from stage d's {eager:.2f} ms (eager) and {fast:.2f} ms (fast) per "
      f"iteration and a start-up of {startup} s")
EOF
)
[[ ${ITERS:-} =~ ^[0-9]+$ && ${EAGER_CAP:-} =~ ^[0-9]+$ ]] \
    || { ITERS=$FIDELITY_ITERS EAGER_CAP=$(( STAGE_LIMIT / 3 )) SIZING="unsized (the sizing did not run)"; }
EVERY=$(( ITERS / 30 > 10 ? ITERS / 30 : 10 ))
limited f_eager "$EAGER_CAP" "${FIDELITY[@]}" --ckpt eager --num_iter "$ITERS" --show_every "$EVERY"
eager_status=$?
limited f_floor "$EAGER_CAP" "${FIDELITY[@]}" --ckpt floor --num_iter "$ITERS" --show_every "$EVERY"
floor_status=$?
limited f_fast -"$COMPARE_S" "${FIDELITY[@]}" --ckpt fast --num_iter "$ITERS" --show_every "$EVERY" "${FAST[@]}"
fast_status=$?
reached() {  # reached RUN: the iterations its history holds (its last logged one, plus one)
    awk -F, 'NR > 1 { last = $1 } END { print (NR > 1) ? last + 1 : 0 }' "$RUNS/fidelity/$1_history.csv" 2> /dev/null || echo 0
}
short=() failed=()
for run in eager floor fast; do
    for name in history.csv last.png; do cp "$RUNS/fidelity/${run}_$name" "$LOGS/f_${run}_$name" 2> /dev/null; done
    status_var=${run}_status
    [ "$(reached $run)" -ge "$ITERS" ] || short+=("$run reached $(reached $run) of $ITERS")
    result=$(status_of "f_$run" "${!status_var}")
    [[ $result == failed* ]] && failed+=("$run run $result")
done
compare_runs() {  # compare_runs NAME A B: max |dPSNR| of runs A and B, or why not
    if [ ! -f "$LOGS/f_$2_history.csv" ] || [ ! -f "$LOGS/f_$3_history.csv" ]; then echo "not compared (a run left no history)"; return; fi
    local images=()
    [ -f "$LOGS/f_$2_last.png" ] && [ -f "$LOGS/f_$3_last.png" ] && images=(--images "$LOGS/f_$2_last.png" "$LOGS/f_$3_last.png")
    limited "f_compare_$1" 0 python3 benchmarks/compare_histories.py "$LOGS/f_$2_history.csv" "$LOGS/f_$3_history.csv" "${images[@]}"
    local found
    found=$(grep -h '^max |dPSNR|' "$LOGS/f_compare_$1.out" | sed -E 's/^max \|dPSNR\|: ([0-9.]+ dB) over ([0-9]+) iterations \((within|OVER).*/\1 (\3 the 0.2 dB bar, \2 logged iterations)/')
    echo "${found:-$(status_of "f_compare_$1" 1 "no logged iteration in common")}"
}
gap=$(compare_runs gap eager fast)
floor=$(compare_runs floor eager floor)
{
    echo "$IMAGE ${SIZE}x${SIZE} at 50%, width $WIDTH, seed 0, $ITERS iterations logged every $EVERY; $SIZING"
    for run in eager floor fast; do
        status_var=${run}_status
        echo "$run: $(status_of "f_$run" "${!status_var}"); $(grep -hE '^(device|done|stopped by|peak GPU memory)' "$LOGS/f_$run.out" | tr '\n' ' ')"
    done
    echo "fast against eager: $gap"
    echo "eager against eager (the floor): $floor"
    for name in gap floor; do cat "$LOGS/f_compare_$name.out" "$LOGS/f_compare_$name.err" 2> /dev/null; done
} > "$LOGS/f_fidelity.txt"
if [ ${#failed[@]} -gt 0 ]; then
    verdict="failed: ${failed[0]}"
elif [ ${#short[@]} -gt 0 ]; then
    verdict="partial ($(IFS=';'; echo "${short[*]}" | sed 's/;/; /g')): fast against eager $gap; eager against eager $floor"
else
    verdict="ok: fast against eager $gap; eager against eager (the floor) $floor"
fi
end_stage "$verdict"
codeblock "$LOGS/f_fidelity.txt"
pack_logs

# g. The memory estimate against the measured peak; on CUDA this calibrates its CUDA terms.
begin_stage g "CUDA memory calibration"
if [ "$ON_CUDA" = yes ]; then
    # memory_peak.py names no GPU: cuda:N (N among the GPUs CUDA sees, as every other stage reads it)
    # is made the only one it sees through CUDA_VISIBLE_DEVICES, which numbers physical GPUs.
    visible=${CUDA_VISIBLE_DEVICES:-}
    if [[ $DEVICE == cuda:* ]]; then
        index=${DEVICE#cuda:}
        if [ -n "$visible" ]; then IFS=, read -r -a entries <<< "$visible"; visible=${entries[$index]:-$index}; else visible=$index; fi
    fi
    limited g_memory 0 env ${visible:+CUDA_VISIBLE_DEVICES=$visible} python3 benchmarks/memory_peak.py --device cuda \
        --sizes "$SIZE" $((2 * SIZE)) $((4 * SIZE)) --widths "$WIDTH" --json "$OUT/memory_peak.json"
else  # a rehearsal of the same path on the CPU, whose calibration is docs/memory.md's
    limited g_memory 0 python3 benchmarks/memory_peak.py --device cpu --sizes "$SIZE" --widths "$WIDTH" \
        --json "$OUT/memory_peak.json"
fi
status=$?
end_stage "$(status_of g_memory $status "a ratio outside 1 +- 0.25, or a run failed (exit 1)")$([ "$ON_CUDA" = yes ] || echo '; on the CPU: needs CUDA to calibrate')"
codeblock "$LOGS/g_memory.out" "$LOGS/g_memory.err"
pack_logs

RAW=()
for name in step_time.json logging_overhead.json memory_peak.json logs.tar.gz; do
    [ -f "$OUT/$name" ] && RAW+=("$name ($(stat -c %s "$OUT/$name") bytes)")
done
say "" "## Done" "" "All stages had their turn in $SECONDS s. Raw files beside this one: ${RAW[*]:-none}."
exit 0
