#!/usr/bin/env bash
# Installs everything alicorn needs to build, test and benchmark, from Debian's archive only.
# Idempotent: safe to run again; apt-get skips what is already installed.
#   scripts/install-deps.sh          build + test dependencies
#   scripts/install-deps.sh --bench  also the peer servers and load tools used by bench/
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential cmake ninja-build pkg-config git
  libuv1-dev node-llhttp
  python3 python3-dev libpython3.11-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libcli11-dev libsystemd-dev libssl-dev
  python3-flask python3-django curl procps
  python3-pastedeploy python3-prometheus-client
  nginx-light haproxy openssl   # the real proxies the edge tests start (test_edge_proxies.py)
)
if [ "${1:-}" = "--bench" ]; then
  packages+=(wrk gunicorn python3-gevent uwsgi uwsgi-plugin-python3 python3-waitress nginx-light linux-perf slowhttptest)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
