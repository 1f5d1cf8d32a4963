#!/usr/bin/env bash
# The GPU checks of the cuda_graphs executor in one run, for a bare machine with a CUDA GPU, python3 and pip.
#
#   OUT=/some/folder bash benchmarks/run_gpu.sh
#
# Run from anywhere (it changes to the repository root). Where python3 already
# has torch with a CUDA device and pytest (a GPU image, often offline), it uses
# that python3 and this checkout as they are. Otherwise it makes a virtual
# environment outside the checkout, installs torch from the default index (a
# CUDA build on Linux) and the project with its `all` and `dev` extras. It runs
# the tests marked `cuda`, then the `cuda_graphs` benchmark case. Everything
# goes to $OUT (default: benchmarks/results/gpu): machine.log, install.log,
# tests.log, bench.log (tables and progress), cuda_graphs.json, cuda_graphs.png
# and summary.txt with both exit codes. The benchmarks run even when tests fail.
# The whole run is meant to end within about 9 minutes (BUDGET_S, default 530 s
# after the start): the tests get at most TESTS_S seconds (default 150), the
# benchmark whatever is left. BENCH_ARGS replaces the benchmark's round options
# (default: --rounds 10); SYMGRAPH_BENCH_COMPILE=0 leaves the torch.compile
# variants out, which take most of the benchmark's set-up time. SKIP_INSTALL=1
# with VENV=... reuses an environment made by an earlier run (on a machine
# still warm), skipping the installation.
set -euo pipefail

START=$(date +%s)
BUDGET_S=${BUDGET_S:-530}
TESTS_S=${TESTS_S:-150}
BENCH_ARGS=${BENCH_ARGS:---rounds 10}
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/benchmarks/results/gpu}
VENV=${VENV:-${TMPDIR:-/tmp}/symgraph-gpu-venv}
mkdir -p "$OUT"
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_PROGRESS_BAR=off PIP_NO_INPUT=1
export PYTHONUNBUFFERED=1

elapsed() { echo $(($(date +%s) - START)); }
left() { echo $((BUDGET_S - $(elapsed))); }
log() { echo "[$(elapsed) s] $*" | tee -a "$OUT/summary.txt"; }

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "python3: $(command -v python3) $(python3 --version 2>&1)"
    echo "C compiler (triton, used by torch.compile, needs one): $(command -v cc || command -v gcc || echo none)"
    nvidia-smi || echo "nvidia-smi: not found"
} >"$OUT/machine.log" 2>&1

trap 'log "stopped: line $LINENO failed (see the logs in $OUT)"' ERR

PY="$VENV/bin/python"
if [[ ${SKIP_INSTALL:-0} != 1 ]] && python3 -c 'import torch, pytest; assert torch.cuda.is_available()' 2>/dev/null; then
    # A GPU image with torch and pytest already (and, often, no network): use its
    # python3 and this checkout as it is, with the entry points registered if pip
    # can do it offline, and PYTHONPATH in any case.
    PY=$(command -v python3)
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
    "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . >>"$OUT/install.log" 2>&1 ||
        log "pip could not register the package offline; running from PYTHONPATH"
    log "using the image's $PY (torch with CUDA found): no virtual environment"
elif [[ ${SKIP_INSTALL:-0} == 1 ]]; then
    log "SKIP_INSTALL=1: using $PY as it is"
else
    log "making the virtual environment $VENV"
    if ! python3 -m venv "$VENV" >>"$OUT/install.log" 2>&1; then
        # Some system pythons ship without ensurepip; virtualenv brings its own pip.
        log "python3 -m venv failed; trying virtualenv"
        python3 -m pip install --user virtualenv >>"$OUT/install.log" 2>&1 ||
            python3 -m pip install --user --break-system-packages virtualenv >>"$OUT/install.log" 2>&1
        python3 -m virtualenv "$VENV" >>"$OUT/install.log" 2>&1
    fi
    log "installing torch (default index), the project with [all], and requirements-dev.txt"
    "$PY" -m pip install -q --upgrade pip >>"$OUT/install.log" 2>&1 || log "pip could not upgrade itself; going on"
    "$PY" -m pip install -q torch >>"$OUT/install.log" 2>&1
    "$PY" -m pip install -q -e '.[all]' -r requirements-dev.txt >>"$OUT/install.log" 2>&1
    "$PY" -m pip freeze >>"$OUT/install.log" 2>&1
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda,
    "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' \
    2>&1 | tee -a "$OUT/machine.log"
log "environment ready"

log "tests marked cuda (at most $TESTS_S s)"
tests_rc=0
timeout "$TESTS_S" "$PY" -m pytest -m cuda -q -p no:cacheprovider 2>&1 | tee "$OUT/tests.log" || tests_rc=$?
log "tests: exit status $tests_rc"

bench_s=$(left)
if ((bench_s < 60)); then
    bench_s=60
fi
log "benchmark case cuda_graphs (at most $bench_s s): $BENCH_ARGS"
bench_rc=0
# shellcheck disable=SC2086 # BENCH_ARGS is a list of options
timeout "$bench_s" "$PY" -m benchmarks --cases cuda_graphs $BENCH_ARGS \
    --json "$OUT/cuda_graphs.json" --plot "$OUT/cuda_graphs.png" 2>&1 | tee "$OUT/bench.log" || bench_rc=$?
log "benchmarks: exit status $bench_rc"

log "done in $(elapsed) s: tests_rc=$tests_rc bench_rc=$bench_rc"
if ((tests_rc != 0)); then
    exit "$tests_rc"
fi
exit "$bench_rc"
