#!/usr/bin/env bash
# The test suite: C++ (GoogleTest through ctest, once optimised, once under AddressSanitizer +
# UndefinedBehaviorSanitizer), the renderer's speed ratios (bench/check_ratios.py) and Python (pytest against
# the installed package). Run from anywhere, after `pip install ".[test,imagenet,ray]"` (README.md); arguments
# go to pytest. CUDA tests skip, not fail, on machines without a GPU.
#
# The optimised C++ tests are built in the folder `pip install .` built the package in (build/<wheel tag>,
# pyproject.toml's build-dir): the core library, CUDA kernels included, is compiled once, by pip, and only
# the test files are compiled here. Without that folder (no pip build from this checkout) they get their
# own, build/cpp-tests. The sanitizer build needs its own flags and always has its own folder.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
SECONDS=0
python -c "import fooling_ext, json; print('installed:', json.dumps(fooling_ext.build_info()))" ||
  echo "fooling_ext is not installed: the Python tests will fail (pip install \".[test,imagenet,ray]\")"

wheel_dir=build/$(python -c 'import sys, sysconfig
v = f"{sys.version_info[0]}{sys.version_info[1]}"
print(f"cp{v}-cp{v}-" + sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
release_args=(-DCMAKE_BUILD_TYPE=Release -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF)
if [[ -f $wheel_dir/CMakeCache.txt && -f $wheel_dir/build.ninja ]] && command -v ninja >/dev/null; then
  # pip's build may have used a ninja from its temporary build environment: point the folder at this one.
  release_dir=$wheel_dir
  release_args+=(-DCMAKE_MAKE_PROGRAM="$(command -v ninja)")
  echo "== C++ tests (release, reusing the core compiled by pip in $release_dir)"
else
  release_dir=build/cpp-tests
  echo "== C++ tests (release, $release_dir)"
fi
cmake -S . -B "$release_dir" "${release_args[@]}" >/dev/null
cmake --build "$release_dir" --target fooling_cpp_tests -j "$jobs"
ctest --test-dir "$release_dir" --no-tests=error --output-on-failure
echo "   (C++ release tests: ${SECONDS} s)"

SECONDS=0
echo "== C++ tests (ASan + UBSan)"
cmake -S . -B build/cpp-asan -DCMAKE_BUILD_TYPE=Debug -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF \
  -DFOOLING_SANITIZE=ON -DFOOLING_CUDA=OFF >/dev/null
cmake --build build/cpp-asan -j "$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build/cpp-asan --no-tests=error --output-on-failure
echo "   (C++ sanitizer tests: ${SECONDS} s)"

SECONDS=0
echo "== Rendering speed against its targets (bench/check_ratios.py: ratios, not times)"
python bench/check_ratios.py
echo "   (speed ratios: ${SECONDS} s)"

echo "== Python tests"
python -m pytest "$@"
