#!/usr/bin/env bash
# Build the Debian packages: alicorn, alicorn-worker-sync, alicorn-worker-gthread,
# alicorn-worker-uv and alicorn-dev (see cmake/AlicornPackaging.cmake).
#
#   scripts/package.sh                 -> build-deb/packages/*.deb, built for prefix /usr
#   BUILD_DIR=... OUT_DIR=... PREFIX=... scripts/package.sh
#
# A separate build folder configured for the distribution prefix (/usr, so GNUInstallDirs
# picks the multiarch libdir and the plugin folder compiled into the binary matches the
# packages), without tests. Needs dpkg-dev for dpkg-shlibdeps (Depends: on libpython3.x,
# libuv1, ... are computed from the binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-deb}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/packages}
PREFIX=${PREFIX:-/usr}

for tool in cmake ninja cpack dpkg-deb dpkg-shlibdeps; do
  if ! command -v "$tool" >/dev/null; then
    echo "package.sh: $tool not found (apt-get install cmake ninja-build dpkg-dev)" >&2
    exit 1
  fi
done

cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_INSTALL_PREFIX="$PREFIX" -DBUILD_TESTING=OFF -DALICORN_BUILD_TESTS=OFF
cmake --build "$BUILD_DIR"
mkdir -p "$OUT_DIR"
cpack --config "$BUILD_DIR/CPackConfig.cmake" -G DEB -B "$OUT_DIR"
rm -rf "$OUT_DIR/_CPack_Packages"

for deb in "$OUT_DIR"/*.deb; do
  echo "== $deb"
  dpkg-deb --field "$deb" Package Version Depends
done
