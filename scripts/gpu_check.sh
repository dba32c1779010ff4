#!/usr/bin/env bash
# Full check on a machine with an NVIDIA GPU: build with the CUDA backend, run the C++ tests, the whole
# pytest suite including the CUDA tests, and the benchmarks.
#
#   scripts/gpu_check.sh LOG_DIR
#
# Run from anywhere; LOG_DIR is created. It receives one log per step, bench.json (pytest-benchmark),
# render_table.md and loop_table.md (the tables of bench/README.md's rendering and loop sections). Exits
# non-zero at the first step that fails, printing the end of its log.
#
# Python: the active virtual environment if there is one, else LOG_DIR/venv, created with
# --system-site-packages so that the CUDA build of torch already on the machine is used (pip never installs
# or replaces torch here). Missing pure-Python tools (scikit-build-core, pybind11, pytest, pytest-benchmark,
# neat-python) are installed with pip when an index is reachable; neat-python is optional (its benchmark is
# skipped without it). The system needs nvcc, cmake >= 3.18, a C++17 compiler and GoogleTest
# (Debian: libgtest-dev).
#
# FOOLING_CUDA_ARCHITECTURES overrides the CUDA architectures built (default: 80-real;90-real;90-virtual).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p "$1"
LOG_DIR=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
unset PYTHONPATH  # the tests must import the installed CUDA build, not python/fooling_ext

step() {  # step NAME COMMAND...: run COMMAND with its output in LOG_DIR/NAME.log
  local name=$1
  shift
  echo "== $name"
  if ! "$@" >"$LOG_DIR/$name.log" 2>&1; then
    tail -n 60 "$LOG_DIR/$name.log"
    echo "FAILED: $name (full log: $LOG_DIR/$name.log)"
    exit 1
  fi
}

ensure_module() {  # ensure_module MODULE REQUIREMENT [optional]
  python -c "import $1" 2>/dev/null && return 0
  if python -m pip install "$2" >>"$LOG_DIR/pip.log" 2>&1; then
    return 0
  fi
  if [[ ${3:-} == optional ]]; then
    echo "   ($2 could not be installed: its benchmark will be skipped)"
    return 0
  fi
  echo "FAILED: $1 is missing and '$2' could not be installed (see $LOG_DIR/pip.log)"
  exit 1
}

step nvidia-smi nvidia-smi

if [[ -z ${VIRTUAL_ENV:-} ]]; then
  step venv python3 -m venv --system-site-packages "$LOG_DIR/venv"
  # shellcheck disable=SC1091
  source "$LOG_DIR/venv/bin/activate"
fi
step torch-cuda python -c "import torch; print(torch.__version__, torch.version.cuda); \
assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.cuda.get_device_name())"
ensure_module scikit_build_core scikit-build-core
ensure_module pybind11 pybind11
ensure_module pytest pytest
ensure_module pytest_benchmark pytest-benchmark
ensure_module neat neat-python optional

# --no-deps: the dependencies are there already, and pip must not swap the machine's torch for another.
step install env FOOLING_CUDA=ON python -m pip install -v --no-build-isolation --no-deps "$REPO"
step cuda-backend python -c "import fooling_ext; print(fooling_ext.__file__); \
info = fooling_ext.build_info(); print(info); assert info['cuda_usable'], info['cuda_unusable_reason']"

CTEST_BUILD="$REPO/build/gpu-check"
cmake_args=(-S "$REPO" -B "$CTEST_BUILD" -DCMAKE_BUILD_TYPE=Release -DFOOLING_CUDA=ON
  -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF)
if [[ -n ${FOOLING_CUDA_ARCHITECTURES:-} ]]; then
  cmake_args+=("-DCMAKE_CUDA_ARCHITECTURES=$FOOLING_CUDA_ARCHITECTURES")
fi
if command -v ninja >/dev/null; then
  cmake_args+=(-G Ninja)
fi
step ctest-configure cmake "${cmake_args[@]}"
step ctest-build cmake --build "$CTEST_BUILD" --parallel
step ctest bash -c "cd '$CTEST_BUILD' && ctest --no-tests=error --output-on-failure"
tail -n 3 "$LOG_DIR/ctest.log"

step pytest python -m pytest -m "cuda or not cuda" -rs
tail -n 1 "$LOG_DIR/pytest.log"

step bench python -m pytest bench --benchmark-only --benchmark-json="$LOG_DIR/bench.json"
step render-table python bench/render_table.py "$LOG_DIR/bench.json"
cp "$LOG_DIR/render-table.log" "$LOG_DIR/render_table.md"
cat "$LOG_DIR/render_table.md"
step loop-table python bench/bench_loop.py "$LOG_DIR/bench.json"
cp "$LOG_DIR/loop-table.log" "$LOG_DIR/loop_table.md"
cat "$LOG_DIR/loop_table.md"
echo "All GPU checks passed; logs in $LOG_DIR"
