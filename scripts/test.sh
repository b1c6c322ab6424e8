#!/usr/bin/env bash
# Install dependencies (Debian packages), build, and run the whole test suite (ctest: GoogleTest
# units and integration tests against the real binary). This is the README's test command and
# what CI runs.
#   scripts/test.sh [ctest args]              the whole suite, in build/
#   scripts/test.sh --sanitize [ctest args]   the whole suite built with ASan + UBSan, in
#                                             build-sanitize/ (slower; see README, "Tests")
#   scripts/test.sh --sanitize-fast           the CI subset under ASan + UBSan: the unit tests
#                                             and a fast set of integration tests
# A sanitizer report aborts the process that met it, so it fails the test (a worker's report
# shows in the test's failure output with the server log).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=normal
case "${1:-}" in
  --sanitize) mode=sanitize; shift ;;
  --sanitize-fast) mode=sanitize-fast; shift ;;
esac
./scripts/install-deps.sh

launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR=$PWD
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi

if [ "$mode" = normal ]; then
  BUILD_DIR=${BUILD_DIR:-build}
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${launcher[@]}"
  cmake --build "$BUILD_DIR"
  exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@"
fi

# -- ASan + UBSan -------------------------------------------------------------------------------
BUILD_DIR=${SANITIZE_BUILD_DIR:-build-sanitize}
# -O1 keeps the build and the run quick while ASan still sees every access.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -g" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DALICORN_SANITIZE=address,undefined "${launcher[@]}"
# Only what the tests run (the docs generators and packaging helpers are not needed).
cmake --build "$BUILD_DIR" --target alicorn alicorn-worker-sync alicorn-worker-gthread \
  alicorn-worker-uv alicorn_unit_tests alicorn_test_plugins
SUPP=$PWD/tests/sanitizers
# The embedded CPython allocates with pymalloc unless told otherwise, which hides its buffers
# from ASan: PYTHONMALLOC=malloc routes every allocation through malloc, so an overflow of a
# Python-owned buffer by our code is caught. The suppression file lists only what CPython
# itself leaks on purpose at exit (see the file); nothing of alicorn's is suppressed.
export PYTHONMALLOC=malloc
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_init_order=1:detect_stack_use_after_return=0:print_summary=1"
export LSAN_OPTIONS="suppressions=$SUPP/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:abort_on_error=1"
if [ "$mode" = sanitize ]; then
  exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 "$@"
fi
# The CI subset: every unit test, then integration tests that cover the request path (parser,
# sessions, WSGI, each worker class, keep-alive, pipelining, graceful stops, gthread keep-alive
# expiry), workers forked while the master's ops thread is busy (test_fork_safety: the
# allocator-lock hang of issue 17 showed only here) and running out of descriptors or disk, in
# about two and a half minutes. (test_gthread_worker stays out: its keep-alive timer tests
# measure seconds, which the slower sanitized build can miss under -j2; --sanitize runs it.)
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j2 \
  -R '^([A-Z][A-Za-z0-9_/]*\.|integration\.(test_serve|test_pep3333|test_workers|test_uv_worker|test_plugin_abi|test_zero_loss_gthread|test_fork_safety|test_resource_limits|test_gthread_expiry)$)' "$@"
