#!/usr/bin/env bash
# The code checks, all of them, in one command (CONTRIBUTING.md): ruff's lint and layout of the Python code, mypy's
# types of the package, clang-format's layout of the C++ and CUDA code, clang-tidy on the C++ code. Exits non-zero
# when any fails, after running them all, and prints each one's time.
#
#   scripts/check.sh
#
# Needs ruff and mypy (`pip install ".[dev]"`, which also brings pybind11 for clang-tidy's view of the bindings),
# clang-format and clang-tidy (Debian: `apt-get install clang-format clang-tidy`), GoogleTest's headers
# (libgtest-dev) and CMake. RUFF, CLANG_FORMAT and CLANG_TIDY name other binaries. clang-tidy reads the compile
# commands of a CMake configure without CUDA in build/check (configured here, nothing compiled); the .cu files
# are checked by clang-format only. mypy runs as `python -m mypy` of the environment the package is installed in
# (settings: [tool.mypy] in pyproject.toml), where it finds the types torch and numpy ship.
set -uo pipefail
cd "$(dirname "$0")/.."
RUFF=${RUFF:-ruff}
CLANG_FORMAT=${CLANG_FORMAT:-clang-format}
CLANG_TIDY=${CLANG_TIDY:-clang-tidy}
jobs=$(nproc 2>/dev/null || echo 2)
python_dirs=(python tests bench scripts)
failed=()

check() {  # check NAME COMMAND...: run COMMAND, report its time, remember a failure
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  if "$@"; then
    echo "   ($name: ok, $((SECONDS - start)) s)"
  else
    echo "   ($name: FAILED, $((SECONDS - start)) s)"
    failed+=("$name")
  fi
}

tidy_one() {  # clang-tidy on one file; its output only when it finds something (it always counts warnings)
  local out
  if ! out=$("$CLANG_TIDY" -p build/check --quiet "$1" 2>&1); then
    grep -v ' warnings\? generated\.$' <<<"$out"
    return 1
  fi
}

clang_tidy() {
  local pybind11_dir
  pybind11_dir=$(python -m pybind11 --cmakedir) || {
    echo "pybind11 is not installed (pip install \".[dev]\")"
    return 1
  }
  cmake -S . -B build/check -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DFOOLING_CUDA=OFF -DFOOLING_BUILD_TESTS=ON \
    -DFOOLING_BUILD_PYTHON=ON -DFOOLING_CCACHE=OFF -Dpybind11_DIR="$pybind11_dir" \
    -DPython_EXECUTABLE="$(command -v python)" >build/check.log 2>&1 || {
    cat build/check.log
    return 1
  }
  export -f tidy_one
  export CLANG_TIDY
  git ls-files 'cpp/*.cpp' 'tests/cpp/*.cpp' | xargs -P "$jobs" -n 1 bash -c 'tidy_one "$0"'
}

version() { "$1" --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n 1; }
echo "ruff $(version "$RUFF"), mypy $(python -m mypy --version 2>/dev/null | grep -o '[0-9][0-9.]*' | head -n 1)," \
  "clang-format $(version "$CLANG_FORMAT"), clang-tidy $(version "$CLANG_TIDY")"
check "ruff check" "$RUFF" check "${python_dirs[@]}"
check "ruff format" "$RUFF" format --check --output-format concise "${python_dirs[@]}"
check "mypy" python -m mypy
mapfile -t cxx_files < <(git ls-files 'cpp/*.cpp' 'cpp/*.h' 'cpp/*.cu' 'cpp/*.cuh' 'tests/cpp/*.cpp' 'tests/cpp/*.h')
check "clang-format" "$CLANG_FORMAT" --dry-run -Werror "${cxx_files[@]}"
mkdir -p build
check "clang-tidy" clang_tidy

if [[ ${#failed[@]} -gt 0 ]]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all checks passed"
