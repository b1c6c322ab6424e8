#!/usr/bin/env bash
# Install dependencies (Debian packages), build, and run the whole test suite (ctest: GoogleTest
# units and integration tests against the real binary). This is the README's test command and
# what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
./scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD_DIR"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@"
