#!/usr/bin/env bash
# Builds the libFuzzer targets (libFuzzer + ASan + UBSan, clang) and runs each for a bounded
# time, seeded from its corpus in the tree:
#   fuzz_request_parser   HTTP request parser          tests/fuzz/corpus/
#   fuzz_chunked          chunked transfer decoding    tests/fuzz/corpus_chunked/
#   fuzz_config_yaml      YAML configuration loader    tests/fuzz/corpus_config_yaml/
#   fuzz_proxy_protocol   PROXY protocol v1/v2 header  tests/fuzz/corpus_proxy_protocol/
# Installs clang and libFuzzer's runtime from Debian's archive if missing (idempotent, like
# scripts/install-deps.sh).
#   scripts/fuzz.sh                          every target for 60 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh         10 minutes each
#   FUZZ_TARGETS=fuzz_chunked scripts/fuzz.sh   only that one
#   FUZZ_JOBS=2 scripts/fuzz.sh              two fuzzing processes per target (libFuzzer -fork)
#   scripts/fuzz.sh -only_ascii=1            extra arguments go to every fuzzer
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_SECONDS (60), FUZZ_JOBS (1),
# FUZZ_MAX_LEN (8192), FUZZ_TARGETS (all four). Exit status: 0 when nothing was found;
# otherwise the first failing fuzzer's, with the crashing inputs in
# $FUZZ_BUILD_DIR/artifacts/<target>/ (replay one: <fuzzer> <file>). A crash that is fixed keeps
# its input in the target's corpus folder, so every later run (and CI) replays it first.
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCE_DIR=$PWD
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
FUZZ_JOBS=${FUZZ_JOBS:-1}
FUZZ_MAX_LEN=${FUZZ_MAX_LEN:-8192}
FUZZ_TARGETS=${FUZZ_TARGETS:-"fuzz_request_parser fuzz_chunked fuzz_config_yaml fuzz_proxy_protocol"}

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
# tests/fuzz configured on its own (it compiles the few core sources each target needs, all
# instrumented), so no sanitizer or clang setting leaks into a normal build.
export CC=clang CXX=clang++
cmake -S tests/fuzz -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" --target $FUZZ_TARGETS

# -- run --------------------------------------------------------------------------------------
# New inputs go to a working corpus in the build dir; the seeds in the source tree stay as they
# are (libFuzzer writes only to the first corpus folder).
corpus_of() {
  case "$1" in
    fuzz_request_parser) echo "$SOURCE_DIR/tests/fuzz/corpus" ;;
    *) echo "$SOURCE_DIR/tests/fuzz/corpus_${1#fuzz_}" ;;
  esac
}
status=0
for target in $FUZZ_TARGETS; do
  FUZZER=$BUILD_DIR/$target
  [ -x "$FUZZER" ] || { echo "fuzz: $FUZZER not built" >&2; exit 1; }
  CORPUS=$BUILD_DIR/corpus/$target
  ARTIFACTS=$BUILD_DIR/artifacts/$target
  mkdir -p "$CORPUS" "$ARTIFACTS"
  args=(-max_total_time="$FUZZ_SECONDS" -max_len="$FUZZ_MAX_LEN" -timeout=10 -rss_limit_mb=2048
        -artifact_prefix="$ARTIFACTS/" -print_final_stats=1)
  if [ "$FUZZ_JOBS" -gt 1 ]; then args+=(-fork="$FUZZ_JOBS"); fi
  echo "fuzz: running $target for ${FUZZ_SECONDS}s (seeds: $(corpus_of "$target"))"
  set +e
  "$FUZZER" "${args[@]}" "$@" "$CORPUS" "$(corpus_of "$target")" > "$BUILD_DIR/$target.log" 2>&1
  rc=$?
  set -e
  grep -E '^(stat::number_of_executed_units|stat::new_units_added)' "$BUILD_DIR/$target.log" \
    | sed "s/^/fuzz: $target: /" || true
  if [ $rc -ne 0 ]; then
    tail -n 60 "$BUILD_DIR/$target.log" >&2
    echo "fuzz: $target stopped with status $rc; crashing inputs:" >&2
    ls -1 "$ARTIFACTS" >&2 || true
    echo "fuzz: replay one with: $FUZZER $ARTIFACTS/<file>" >&2
    [ $status -ne 0 ] || status=$rc
  else
    echo "fuzz: $target: nothing found in ${FUZZ_SECONDS}s"
  fi
done
exit $status
