#!/usr/bin/env bash
# scripts/gpu-check.sh: the prepared GPU check (issue 16, item 8; docs/CUDA_TESTING.md,
# "The GPU check"). On a Linux x86-64 machine with an NVIDIA H100/H200, nvcc, cmake and
# Python's nvidia-cublas wheel (no Node.js, no network needed) it builds the CUDA library
# and the native harnesses, then runs, within a time budget (8 minutes in all by default):
#   (a) the CUDA backend against the CPU Session on test_cuda_forward's tiny checkpoints and
#       cases, with the real cuBLAS: exact GEMM mode token-exact, the 16-bit mode's
#       agreement with the CPU reported (gpucheck_cuda_forward);
#   (b) the kernel benchmark at LLaDA-8B shapes with CUDA events (bench_kernels_cuda);
#   (c) whole forwards at LLaDA-8B shapes on random weights, each beside its floor, with
#       the peak device memory (bench_forward).
# It writes one results file (markdown) and exits 1 when (a) fails in the exact mode (or
# cannot run), 2 on bad arguments, 0 otherwise. --emulate runs the CPU-side parts with the
# emulator stand-ins instead (no GPU, no nvcc): CI runs it (test/gpu-check.test.ts).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'EOF'
usage: scripts/gpu-check.sh [options]

Builds the CUDA backend and its native harnesses and runs, within the time budget:
  (a) the CUDA backend against the CPU Session (test_cuda_forward's models and cases) with
      the real cuBLAS: exact GEMM mode token for token, 16-bit GEMM mode agreement reported;
  (b) the CUDA kernel benchmark at LLaDA-8B shapes (CUDA events);
  (c) forwards at LLaDA-8B shapes on random weights (step 0, cached step, a batch of 8;
      prompts 512 and 2048; both GEMM modes) beside their floors, with peak device memory.
Writes one results file; exit status 1 if (a) fails in the exact mode or cannot run,
2 on bad arguments, else 0.

options:
  --out FILE         results file (default: gpu-check-results.md in the repository root;
                     gpu-check-emulate-results.md with --emulate)
  --emulate          no GPU: build the harnesses with the CPU emulator stand-ins (kernels
                     executed on the CPU, cuBLAS replaced by cublas_emu) and run them with
                     tiny shapes; (b) is skipped. Needs cmake and a C++17 compiler, no nvcc.
  --build-dir DIR    build directory (default: build/gpu-check; with --emulate,
                     build/native-tests when it is configured, else build/gpu-check-emu)
  --jobs N           parallel build jobs (default: nproc)
  --budget SECONDS   time for everything, build included (default 470)
  --nvcc PATH        the CUDA compiler to build with (default: nvcc on PATH). The library
                     links the CUDA runtime statically, so the driver must support that
                     toolkit's CUDA version (12.x: R525+, 13.x: R580+)
  --cublas-dir DIR   directory holding libcublas.so.* (default: the nvidia-cublas wheel
                     found by python3, else the system's)
  --bandwidth TB/s   memory bandwidth for the floors of (c) (default: from the device name)
  --filter NAME      (a): only the models whose name contains NAME
  -h, --help         this text

cuBLAS is opened at run time by cuda/cublas_loader.cpp: the script sets LD_LIBRARY_PATH
to the wheel's lib directory (for libcublasLt) and SDLLM_CUBLAS_LIBRARY to its
libcublas.so.N, which the loader tries first.
EOF
}

die_usage() {
  echo "gpu-check: $1 (see --help)" >&2
  exit 2
}

EMULATE=0
OUT=""
BUILD_DIR=""
JOBS=$(nproc 2>/dev/null || echo 2)
BUDGET=470
NVCC=""
CUBLAS_DIR=""
BANDWIDTH=""
FILTER=""

need_value() { [[ $# -ge 2 && -n "$2" ]] || die_usage "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --emulate) EMULATE=1; shift ;;
    --out) need_value "$@"; OUT=$2; shift 2 ;;
    --build-dir) need_value "$@"; BUILD_DIR=$2; shift 2 ;;
    --jobs) need_value "$@"; JOBS=$2; shift 2 ;;
    --budget) need_value "$@"; BUDGET=$2; shift 2 ;;
    --nvcc) need_value "$@"; NVCC=$2; shift 2 ;;
    --cublas-dir) need_value "$@"; CUBLAS_DIR=$2; shift 2 ;;
    --bandwidth) need_value "$@"; BANDWIDTH=$2; shift 2 ;;
    --filter) need_value "$@"; FILTER=$2; shift 2 ;;
    --out=* | --build-dir=* | --jobs=* | --budget=* | --nvcc=* | --cublas-dir=* | --bandwidth=* | --filter=*)
      die_usage "write '${1%%=*} VALUE', not '$1'" ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
done
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || die_usage "--jobs needs a positive integer, got '$JOBS'"
[[ $BUDGET =~ ^[1-9][0-9]*$ ]] || die_usage "--budget needs a positive number of seconds, got '$BUDGET'"
[[ -z $BANDWIDTH || $BANDWIDTH =~ ^[0-9]+([.][0-9]+)?$ ]] || die_usage "--bandwidth needs a number (TB/s), got '$BANDWIDTH'"
[[ -z $NVCC || -x $NVCC ]] || die_usage "--nvcc: '$NVCC' is not an executable"
[[ -z $CUBLAS_DIR || -d $CUBLAS_DIR ]] || die_usage "--cublas-dir: '$CUBLAS_DIR' is not a directory"
[[ $EMULATE == 0 || ( -z $NVCC && -z $CUBLAS_DIR && -z $BANDWIDTH ) ]] ||
  die_usage "--nvcc, --cublas-dir and --bandwidth are for the GPU run, not --emulate"
command -v cmake >/dev/null || { echo "gpu-check: cmake not found" >&2; exit 1; }
command -v timeout >/dev/null || { echo "gpu-check: the timeout command (coreutils) is needed" >&2; exit 1; }

if [[ -z $OUT ]]; then
  if [[ $EMULATE == 1 ]]; then OUT=$ROOT/gpu-check-emulate-results.md; else OUT=$ROOT/gpu-check-results.md; fi
fi
touch "$OUT" 2>/dev/null || { echo "gpu-check: cannot write the results file '$OUT'" >&2; exit 1; }
OUT=$(cd "$(dirname "$OUT")" && pwd)/$(basename "$OUT")

if [[ -z $BUILD_DIR ]]; then
  if [[ $EMULATE == 0 ]]; then BUILD_DIR=$ROOT/build/gpu-check
  elif [[ -f $ROOT/build/native-tests/CMakeCache.txt ]]; then BUILD_DIR=$ROOT/build/native-tests
  else BUILD_DIR=$ROOT/build/gpu-check-emu
  fi
fi
mkdir -p "$BUILD_DIR" || { echo "gpu-check: cannot create '$BUILD_DIR'" >&2; exit 1; }
BUILD_DIR=$(cd "$BUILD_DIR" && pwd -P)
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
trap 'rm -rf "$LOGS"' EXIT

START=$SECONDS
elapsed() { echo $((SECONDS - START)); }
log() { printf '[%4ss] %s\n' "$(elapsed)" "$*"; }

# ---- facts about the machine ---------------------------------------------------------

declare -A INFO STATUS SECS
KEYS=(build a_exact a_16bit b c)
declare -A TITLE=(
  [build]="Build"
  [a_exact]="(a) CUDA backend vs CPU Session, exact GEMM mode (token-exact)"
  [a_16bit]="(a) 16-bit GEMM mode vs CPU Session (agreement)"
  [b]="(b) kernel benchmark, LLaDA-8B shapes, CUDA events"
  [c]="(c) forwards at LLaDA-8B shapes, random weights"
)
for k in "${KEYS[@]}"; do STATUS[$k]="NOT RUN"; SECS[$k]=""; done

first_line() { head -n 1 | tr -d '\r'; }
INFO[date]=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
INFO[host]="$(uname -srm), $(nproc 2>/dev/null || echo '?') CPUs"
if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  INFO[commit]=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)
  [[ -n $(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null) ]] && INFO[commit]+=" (with uncommitted changes)"
else
  INFO[commit]="not a git checkout"
fi
INFO[cmake]=$(cmake --version | first_line)
INFO[cxx]=$( (${CXX:-c++} --version 2>/dev/null || g++ --version 2>/dev/null) | first_line)
[[ -n $NVCC ]] || NVCC=$(command -v nvcc || true)
if [[ -n $NVCC ]]; then
  INFO[toolkit]="$("$NVCC" --version | grep -i 'release' | first_line) ($NVCC)"
  TOOLKIT_MAJOR=$("$NVCC" --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | first_line)
else
  INFO[toolkit]="nvcc not found"
  TOOLKIT_MAJOR=""
fi
DRIVER_CUDA=""
if [[ $EMULATE == 1 ]]; then
  INFO[mode]="emulate: CPU emulator stand-ins, no GPU (tiny shapes; the figures are not a GPU's)"
  INFO[device]="none (kernels executed by test/native/cuda/cuda_emu)"
  INFO[driver]="n/a"
  INFO[cublas]="cublas_emu (CPU stand-in)"
else
  INFO[mode]="gpu"
  if command -v nvidia-smi >/dev/null; then
    INFO[device]=$(nvidia-smi --query-gpu=index,name,memory.total,pci.bus_id --format=csv,noheader 2>&1 | paste -sd ';' -)
    INFO[driver]=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>&1 | first_line)
    DRIVER_CUDA=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9.]*\).*/\1/p' | first_line)
    [[ -n $DRIVER_CUDA ]] && INFO[driver]+=" (supports CUDA up to $DRIVER_CUDA)"
  else
    INFO[device]="nvidia-smi not found"
    INFO[driver]=$( (first_line </proc/driver/nvidia/version) 2>/dev/null || echo "unknown (no /proc/driver/nvidia/version)")
  fi
fi

# cuBLAS: the nvidia-cublas wheel (nvidia/cublas/lib, or nvidia/cu13/lib for the CUDA 13
# wheels), else --cublas-dir, else whatever the system's loader finds.
find_cublas_dirs() {
  if command -v python3 >/dev/null; then
    python3 - <<'PY' 2>/dev/null
import glob, os, site
roots = []
try:
    import nvidia  # a namespace package in the newer wheels: use __path__, not __file__
    roots += list(nvidia.__path__)
except Exception:
    pass
try:
    sps = site.getsitepackages() + [site.getusersitepackages()]
except Exception:
    sps = []
roots += [os.path.join(p, "nvidia") for p in sps]
seen = set()
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, "*", "lib"))):
        if d not in seen and glob.glob(os.path.join(d, "libcublas.so.*")):
            seen.add(d)
            print(d)
PY
  fi
  # Without python3: the usual site-packages locations.
  local g
  for g in /usr/local/lib/python3*/*-packages/nvidia/*/lib /usr/lib/python3*/*-packages/nvidia/*/lib \
           "$HOME"/.local/lib/python3*/site-packages/nvidia/*/lib "${VIRTUAL_ENV:-/nonexistent}"/lib/python3*/site-packages/nvidia/*/lib; do
    compgen -G "$g/libcublas.so.*" >/dev/null && echo "$g"
  done
}
pick_cublas() {  # the libcublas.so.N of a directory, the toolkit's major first
  local dir=$1 f best=""
  for f in "$dir"/libcublas.so.[0-9] "$dir"/libcublas.so.[0-9][0-9]; do
    [[ -e $f ]] || continue
    [[ -z $best ]] && best=$f
    [[ -n $TOOLKIT_MAJOR && $f == *".so.$TOOLKIT_MAJOR" ]] && best=$f
  done
  echo "$best"
}
if [[ $EMULATE == 0 ]]; then
  CUBLAS_FILE=""
  if [[ -n $CUBLAS_DIR ]]; then
    CUBLAS_FILE=$(pick_cublas "$CUBLAS_DIR")
  else
    while IFS= read -r d; do
      [[ -n $d ]] || continue
      f=$(pick_cublas "$d")
      [[ -n $f ]] || continue
      if [[ -z $CUBLAS_FILE || ( -n $TOOLKIT_MAJOR && $f == *".so.$TOOLKIT_MAJOR" ) ]]; then CUBLAS_DIR=$d; CUBLAS_FILE=$f; fi
    done < <(find_cublas_dirs | awk '!seen[$0]++')
  fi
  if [[ -n $CUBLAS_FILE ]]; then
    export LD_LIBRARY_PATH="$CUBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export SDLLM_CUBLAS_LIBRARY=$CUBLAS_FILE
    INFO[cublas]="$CUBLAS_FILE (SDLLM_CUBLAS_LIBRARY; $CUBLAS_DIR prepended to LD_LIBRARY_PATH)"
  else
    sys=$( (ldconfig -p 2>/dev/null | grep -o '/[^ ]*libcublas\.so\.[0-9]*$' | first_line) || true)
    INFO[cublas]="no nvidia-cublas wheel found; the loader's own search (libcublas.so.13/.12 on the library path)${sys:+: $sys}"
  fi
  if [[ -n $TOOLKIT_MAJOR && -n $DRIVER_CUDA && ${DRIVER_CUDA%%.*} -lt $TOOLKIT_MAJOR ]]; then
    INFO[warning]="the driver supports CUDA $DRIVER_CUDA, older than the toolkit's $TOOLKIT_MAJOR.x that the library links statically: it will fail to initialise; rerun with --nvcc pointing at a CUDA ${DRIVER_CUDA%%.*}.x nvcc"
  fi
fi

# ---- the results file ----------------------------------------------------------------

section_file() { echo "$LOGS/$1.out"; }
write_results() {
  local k f
  {
    echo "# GPU check results"
    echo
    echo "Written by \`scripts/gpu-check.sh\` (docs/CUDA_TESTING.md, \"The GPU check\")."
    echo
    for f in mode date commit host device driver toolkit cublas cmake cxx warning; do
      [[ -n ${INFO[$f]:-} ]] && echo "- $f: ${INFO[$f]}"
    done
    echo "- build directory: $BUILD_DIR"
    echo "- time: $(elapsed) s of a budget of $BUDGET s"
    echo
    echo "## Summary"
    echo
    echo "| section | status | seconds |"
    echo "|---|---|---|"
    for k in "${KEYS[@]}"; do echo "| ${TITLE[$k]} | ${STATUS[$k]} | ${SECS[$k]} |"; done
    echo
    echo "Overall: $(overall_word) (exit status $(overall_rc))"
    for k in build a b c; do
      echo
      case $k in
        build) echo "## Build" ;;
        a) echo "## (a) CUDA backend vs CPU Session"; echo; echo "exact: ${STATUS[a_exact]}; 16-bit: ${STATUS[a_16bit]}" ;;
        b) echo "## ${TITLE[b]}"; echo; echo "status: ${STATUS[b]}" ;;
        c) echo "## ${TITLE[c]}"; echo; echo "status: ${STATUS[c]}" ;;
      esac
      [[ $k == build ]] && { echo; echo "status: ${STATUS[build]}"; }
      f=$(section_file "$k")
      if [[ -s $f ]]; then
        echo
        echo '```text'
        cat "$f"
        echo '```'
      fi
    done
  } >"$OUT.tmp" && mv "$OUT.tmp" "$OUT"
}
overall_rc() { [[ ${STATUS[a_exact]} == PASS* ]] && echo 0 || echo 1; }
overall_word() { [[ $(overall_rc) == 0 ]] && echo "PASS ((a) exact passed)" || echo "FAIL ((a) exact did not pass)"; }

# Runs "$@" with a timeout: min(cap, what the budget leaves after `reserve` seconds kept for
# the steps after this one). Sets RC and DUR; output goes to the file $1.
RC=0
DUR=0
run_timed() {
  local outfile=$1 cap=$2 reserve=$3
  shift 3
  local left=$((BUDGET - $(elapsed) - reserve))
  local t=$((left < cap ? left : cap))
  if ((t < 5)); then
    echo "(not run: the time budget is spent)" >>"$outfile"
    RC=125
    DUR=0
    return
  fi
  log "  timeout ${t}s: $*"
  echo "\$ $*" >>"$outfile"
  local t0=$SECONDS
  timeout -k 10 "$t" "$@" >>"$outfile" 2>&1
  RC=$?
  DUR=$((SECONDS - t0))
  ((RC == 124 || RC == 137)) && echo "(killed after ${t} s: timeout)" >>"$outfile"
}
status_of() {  # rc -> PASS / FAIL (rc N) / TIMEOUT / SKIPPED
  case $1 in
    0) echo PASS ;;
    124 | 137) echo "TIMEOUT" ;;
    125) echo "SKIPPED (out of time)" ;;
    *) echo "FAIL (exit $1)" ;;
  esac
}

# ---- build ----------------------------------------------------------------------------

log "gpu-check ($([[ $EMULATE == 1 ]] && echo emulate || echo gpu)): build in $BUILD_DIR, results to $OUT"
write_results
BUILD_LOG=$LOGS/build.log
: >"$BUILD_LOG"
if [[ $EMULATE == 1 ]]; then
  TARGETS=(test_cuda_forward bench_forward_emu)
  CONFIG=(-DCMAKE_BUILD_TYPE=Release -DSDLLM_BUILD_TESTS=ON -DSDLLM_CUDA=OFF)
  RESERVE=60
else
  # bench_kernels_cuda (which compiles every kernel a second time) is built in step (b), so
  # that a failure there does not stop (a).
  TARGETS=(sdllm_cuda gpucheck_cuda_forward bench_forward)
  CONFIG=(-DCMAKE_BUILD_TYPE=Release -DSDLLM_CUDA=ON -DSDLLM_BUILD_TESTS=ON -DSDLLM_BUILD_BENCH=ON
          -DCMAKE_CUDA_ARCHITECTURES=90 -DSDLLM_BENCH_CUDA_ARCHITECTURES=90)
  [[ -n $NVCC ]] && CONFIG+=("-DCMAKE_CUDA_COMPILER=$NVCC")
  RESERVE=200  # kept for (a), (b) and (c)
fi
build_t0=$SECONDS
RC=0
# The GPU run always configures (cheap when nothing changed; takes a new --nvcc); the
# emulated one only a directory that is not configured yet (build/native-tests keeps its options).
if [[ $EMULATE == 0 || ! -f $BUILD_DIR/CMakeCache.txt ]]; then
  log "configure"
  run_timed "$BUILD_LOG" 120 "$RESERVE" cmake -S "$ROOT" -B "$BUILD_DIR" "${CONFIG[@]}"
fi
if [[ $RC == 0 ]]; then
  log "build ${TARGETS[*]} (-j $JOBS)"
  run_timed "$BUILD_LOG" 360 "$RESERVE" cmake --build "$BUILD_DIR" -j "$JOBS" --target "${TARGETS[@]}"
fi
STATUS[build]=$(status_of "$RC")
SECS[build]=$((SECONDS - build_t0))
BUILD_OK=$RC
{
  echo "targets: ${TARGETS[*]}"
  if [[ $BUILD_OK == 0 ]]; then
    echo "(last lines of the build log)"
    tail -n 15 "$BUILD_LOG"
  else
    echo "(last lines of the build log)"
    tail -n 60 "$BUILD_LOG"
  fi
} >"$(section_file build)"
log "build: ${STATUS[build]} in ${SECS[build]} s"
write_results

find_exe() {  # the first executable named $1 under the build directory
  find "$BUILD_DIR" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1
}

# ---- (a) the CUDA backend against the CPU Session --------------------------------------

A_OUT=$(section_file a)
: >"$A_OUT"
if [[ $BUILD_OK != 0 ]]; then
  STATUS[a_exact]="NOT RUN (build failed)"
  STATUS[a_16bit]="NOT RUN (build failed)"
else
  if [[ $EMULATE == 1 ]]; then
    exe=$(find_exe test_cuda_forward)
    # A subset under the emulator: one exact model and the BF16 weight-dtype model (the
    # full set runs in test/native.test.ts).
    args=(--16bit-too "${FILTER:-bf16-bias-gqa4:2}")
    cap=60
    reserve=30
  else
    exe=$(find_exe gpucheck_cuda_forward)
    args=(--16bit-too)
    [[ -n $FILTER ]] && args+=("$FILTER")
    cap=120
    reserve=150
  fi
  if [[ -z $exe ]]; then
    echo "the harness was not found under $BUILD_DIR" >"$A_OUT"
    STATUS[a_exact]="FAIL (harness not built)"
    STATUS[a_16bit]="NOT RUN"
  else
    log "(a) $(basename "$exe") ${args[*]}"
    run_timed "$A_OUT" "$cap" "$reserve" "$exe" "${args[@]}"
    SECS[a_exact]=$DUR
    exact_line=$(grep -E '^cuda-forward exact: ' "$A_OUT" | tail -n 1)
    half_line=$(grep -E '^cuda-forward 16-bit gemm: ' "$A_OUT" | tail -n 1)
    if [[ $exact_line =~ exact:\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]] && ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] == 0)) &&
       [[ $RC != 124 && $RC != 137 ]]; then
      STATUS[a_exact]="PASS (${exact_line#cuda-forward exact: })"
    elif [[ -n $exact_line ]]; then
      STATUS[a_exact]="FAIL (${exact_line#cuda-forward exact: })"
    else
      STATUS[a_exact]="$(status_of "$RC") (no summary line: the harness did not finish)"
      [[ $RC == 0 ]] && STATUS[a_exact]="FAIL (no summary line)"
    fi
    if [[ -n $half_line ]]; then
      STATUS[a_16bit]="${half_line#cuda-forward 16-bit gemm: }"
    else
      STATUS[a_16bit]="no result"
    fi
    grep -E '^FAIL' "$A_OUT" | head -n 5 | sed 's/^/  /'
  fi
fi
log "(a) exact: ${STATUS[a_exact]}"
log "(a) 16-bit: ${STATUS[a_16bit]}"
write_results

# ---- (b) kernel benchmark -----------------------------------------------------------------

B_OUT=$(section_file b)
: >"$B_OUT"
if [[ $EMULATE == 1 ]]; then
  STATUS[b]="SKIPPED (emulate: bench_kernels.cu is CUDA source timed with CUDA events; it needs nvcc and a GPU)"
elif [[ $BUILD_OK != 0 ]]; then
  STATUS[b]="NOT RUN (build failed)"
else
  log "(b) build bench_kernels_cuda"
  b_t0=$SECONDS
  B_BUILD=$LOGS/build-b.log
  : >"$B_BUILD"
  run_timed "$B_BUILD" 240 130 cmake --build "$BUILD_DIR" -j "$JOBS" --target bench_kernels_cuda
  exe=$(find_exe bench_kernels_cuda)
  if [[ $RC != 0 || -z $exe ]]; then
    STATUS[b]="FAIL (build of bench_kernels_cuda: $(status_of "$RC"))"
    tail -n 60 "$B_BUILD" >"$B_OUT"
  else
    echo "(bench_kernels_cuda built in $((SECONDS - b_t0)) s)" >"$B_OUT"
    log "(b) bench_kernels_cuda"
    run_timed "$B_OUT" 100 100 "$exe" --rounds 5
    STATUS[b]=$(status_of "$RC")
  fi
  SECS[b]=$((SECONDS - b_t0))
fi
log "(b): ${STATUS[b]}"
write_results

# ---- (c) forwards at LLaDA-8B shapes --------------------------------------------------------

C_OUT=$(section_file c)
: >"$C_OUT"
if [[ $BUILD_OK != 0 ]]; then
  STATUS[c]="NOT RUN (build failed)"
else
  if [[ $EMULATE == 1 ]]; then
    exe=$(find_exe bench_forward_emu)
    args=(--tiny --reps 1 --warmup 0 --batch 8)
    cap=60
  else
    exe=$(find_exe bench_forward)
    args=(--reps 5 --warmup 1 --batch 8)
    [[ -n $BANDWIDTH ]] && args+=(--bandwidth "$BANDWIDTH")
    cap=240
  fi
  if [[ -z $exe ]]; then
    STATUS[c]="FAIL (not built)"
  else
    log "(c) $(basename "$exe") ${args[*]}"
    run_timed "$C_OUT" "$cap" 0 "$exe" "${args[@]}"
    STATUS[c]=$(status_of "$RC")
    SECS[c]=$DUR
    line=$(grep -E '^bench-forward: ' "$C_OUT" | tail -n 1)
    [[ -n $line ]] && STATUS[c]+=" (${line#bench-forward: })"
  fi
fi
log "(c): ${STATUS[c]}"
write_results
log "results: $OUT"
log "overall: $(overall_word)"
exit "$(overall_rc)"
