#!/usr/bin/env bash
# Install dependencies (Debian packages), build, and serve examples/hello.py on
# http://127.0.0.1:8000 with two sync workers. This is the README's run command.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
./scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build "$BUILD_DIR"
exec "$BUILD_DIR/bin/alicorn" -w 2 -k sync -b 127.0.0.1:8000 --chdir examples hello:app "$@"
