#!/usr/bin/env bash
# Builds the HTTP request parser fuzzer (libFuzzer + ASan + UBSan, clang) and runs it for a
# bounded time, seeded from tests/fuzz/corpus/. Installs clang and libFuzzer's runtime from
# Debian's archive if missing (idempotent, like scripts/install-deps.sh).
#   scripts/fuzz.sh                      fuzz for 60 s
#   FUZZ_SECONDS=600 scripts/fuzz.sh     fuzz for 10 minutes
#   FUZZ_JOBS=2 scripts/fuzz.sh          two fuzzing processes (libFuzzer -fork)
#   scripts/fuzz.sh -only_ascii=1        extra arguments go to the fuzzer
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_SECONDS (60), FUZZ_JOBS (1),
# FUZZ_MAX_LEN (8192). Exit status: 0 when nothing was found; otherwise the fuzzer's, with the
# crashing inputs in $FUZZ_BUILD_DIR/artifacts/ (replay one: <fuzzer> <file>).
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE_DIR=$PWD
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-8192}

# -- toolchain --------------------------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
packages=(clang libclang-rt-14-dev cmake ninja-build node-llhttp)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "fuzz: all ${#packages[@]} packages already installed"
else
  echo "fuzz: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# -- build ------------------------------------------------------------------------------------
# The whole project with -DALICORN_FUZZ=ON (tests/CMakeLists.txt adds tests/fuzz), building only
# the fuzz target. If this tree does not wire tests/fuzz in, configure that folder on its own.
export CC=clang CXX=clang++
FUZZER=""
mkdir -p "$BUILD_DIR"
if cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DALICORN_FUZZ=ON \
     > "$BUILD_DIR/configure.log" 2>&1 \
   && cmake --build "$BUILD_DIR" --target help 2>/dev/null | grep '^fuzz_request_parser:' >/dev/null; then
  cmake --build "$BUILD_DIR" --target fuzz_request_parser
  FUZZER=$(find "$BUILD_DIR" -type f -name fuzz_request_parser -perm -u+x | head -n1)
  rm -f "$BUILD_DIR/configure.log"
else
  echo "fuzz: the top-level project has no fuzz_request_parser target (see $BUILD_DIR/configure.log);"
  echo "fuzz: configuring tests/fuzz on its own in $BUILD_DIR/standalone"
  cmake -S tests/fuzz -B "$BUILD_DIR/standalone" -G Ninja -DALICORN_FUZZ=ON
  cmake --build "$BUILD_DIR/standalone"
  FUZZER=$BUILD_DIR/standalone/fuzz_request_parser
fi
[ -x "$FUZZER" ] || { echo "fuzz: fuzzer binary not found" >&2; exit 1; }

# -- run --------------------------------------------------------------------------------------
# New inputs go to the working corpus in the build dir; the seeds in the source tree stay as
# they are (libFuzzer writes only to the first corpus folder).
CORPUS=$BUILD_DIR/corpus
ARTIFACTS=$BUILD_DIR/artifacts
mkdir -p "$CORPUS" "$ARTIFACTS"
args=(-max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -timeout=10 -rss_limit_mb=2048
      -artifact_prefix="$ARTIFACTS/" -print_final_stats=1)
if [ "$FUZZ_JOBS" -gt 1 ]; then args+=(-fork="$FUZZ_JOBS"); fi
echo "fuzz: running $FUZZER for ${FUZZ_SECONDS}s (seeds: tests/fuzz/corpus, corpus: $CORPUS)"
set +e
"$FUZZER" "${args[@]}" "$@" "$CORPUS" "$SOURCE_DIR/tests/fuzz/corpus"
status=$?
set -e
if [ $status -ne 0 ]; then
  echo "fuzz: the fuzzer stopped with status $status; crashing inputs:" >&2
  ls -1 "$ARTIFACTS" >&2 || true
  echo "fuzz: replay one with: $FUZZER $ARTIFACTS/<file>" >&2
  exit $status
fi
echo "fuzz: nothing found in ${FUZZ_SECONDS}s"
