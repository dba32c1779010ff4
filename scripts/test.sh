#!/usr/bin/env bash
# The test suite: C++ (GoogleTest through ctest, once optimised with the CUDA backend when nvcc is present,
# once under AddressSanitizer + UndefinedBehaviorSanitizer) and Python (pytest against the installed
# package). Run from anywhere, in an environment where `pip install ".[test]"` was done.
# CUDA tests skip, not fail, on machines without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== C++ tests (release)"
cmake -S . -B build/cpp-tests -DCMAKE_BUILD_TYPE=Release -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF >/dev/null
cmake --build build/cpp-tests -j "$jobs"
ctest --test-dir build/cpp-tests --no-tests=error --output-on-failure

echo "== C++ tests (ASan + UBSan)"
cmake -S . -B build/cpp-asan -DCMAKE_BUILD_TYPE=Debug -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF \
  -DFOOLING_SANITIZE=ON -DFOOLING_CUDA=OFF >/dev/null
cmake --build build/cpp-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/cpp-asan --no-tests=error --output-on-failure

echo "== Python tests"
python -m pytest "$@"
