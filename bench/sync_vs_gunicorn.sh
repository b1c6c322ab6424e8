#!/usr/bin/env bash
# Throughput of alicorn's sync worker against Debian's gunicorn sync worker, side by side.
#
# Both servers run examples/hello.py with the same worker count and class, on loopback, one
# after the other (never at the same time, so they do not compete for the 2 cores), and wrk
# drives each: a short warm-up, then the measured run. Prints a table with both req/s figures
# and the ratio alicorn/gunicorn. This is a benchmark, not a test: it fails only when a server
# cannot be started or does not answer "Hello, World!".
#
# Usage: bench/sync_vs_gunicorn.sh
# Environment (all optional):
#   ALICORN_BIN   alicorn binary (default: build/bin/alicorn in the source tree)
#   GUNICORN      gunicorn executable (default: /usr/bin/gunicorn)
#   WORKERS       worker processes for each server (default 2)
#   THREADS       wrk threads (default 2)
#   CONNECTIONS   wrk connections (default 64)
#   DURATION      measured wrk run (default 5s)
#   WARMUP        wrk warm-up run (default 1s)
#   RESULTS_DIR   where raw wrk output and server logs go (default bench/results/<timestamp>)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

ALICORN_BIN="${ALICORN_BIN:-$root/build/bin/alicorn}"
GUNICORN="${GUNICORN:-/usr/bin/gunicorn}"
WORKERS="${WORKERS:-2}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-1s}"
RESULTS_DIR="${RESULTS_DIR:-$here/results/$(date +%Y%m%d-%H%M%S)}"
PYTHON=/usr/bin/python3
APP_DIR="$root/examples"
APP=hello:app

die() { echo "sync_vs_gunicorn: $*" >&2; exit 1; }

[[ -x "$ALICORN_BIN" ]] || die "alicorn binary not found at $ALICORN_BIN (build it, or set ALICORN_BIN)"
[[ -x "$GUNICORN" ]] || die "gunicorn not found at $GUNICORN (apt-get install gunicorn)"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
mkdir -p "$RESULTS_DIR"

# Servers started by this script, killed (whole process group) on any exit.
server_pids=()
cleanup() {
  local pid
  for pid in "${server_pids[@]}"; do
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${server_pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done
  server_pids=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server NAME PORT CMD...: run CMD in its own process group, wait (bounded) until it
# answers Hello, World!, and leave its pid in $started_pid.
start_server() {
  local name="$1" port="$2"
  shift 2
  setsid "$@" >"$RESULTS_DIR/$name.stdout" 2>"$RESULTS_DIR/$name.log" </dev/null &
  started_pid=$!
  server_pids+=("$started_pid")
  local body
  for _ in $(seq 150); do
    if ! kill -0 "$started_pid" 2>/dev/null; then
      cat "$RESULTS_DIR/$name.log" >&2
      die "$name exited during startup"
    fi
    body="$(curl -s --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null || true)"
    if [[ "$body" == "Hello, World!" ]]; then
      return 0
    fi
    sleep 0.1
  done
  cat "$RESULTS_DIR/$name.log" >&2
  die "$name did not answer on port $port within 15s"
}

stop_server() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=()
  for p in "${server_pids[@]}"; do [[ "$p" == "$pid" ]] || kept+=("$p"); done
  server_pids=("${kept[@]+"${kept[@]}"}")
}

# bench NAME PORT: warm-up, measured run; prints req/s and leaves the raw output in a file.
bench() {
  local name="$1" port="$2" url="http://127.0.0.1:$2/"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$url" >"$RESULTS_DIR/$name.warmup.txt" 2>&1
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$url" \
    >"$RESULTS_DIR/$name.wrk.txt" 2>&1
  awk '/^Requests\/sec:/ { print $2 }' "$RESULTS_DIR/$name.wrk.txt"
}

# wrk's error lines (socket errors, non-2xx responses), or "-".
errors_of() {
  local errs
  errs="$(grep -E 'Socket errors|Non-2xx' "$RESULTS_DIR/$1.wrk.txt" | sed 's/^ *//' | paste -sd ';' -)"
  echo "${errs:--}"
}

p50_of() {
  awk '$1 == "50%" { print $2 }' "$RESULTS_DIR/$1.wrk.txt"
}

echo "alicorn:  $ALICORN_BIN ($("$ALICORN_BIN" --version 2>/dev/null || echo '?'))"
echo "gunicorn: $GUNICORN ($("$GUNICORN" --version 2>&1 | head -1))"
echo "app: examples/$APP, $WORKERS workers, -k sync; wrk -t$THREADS -c$CONNECTIONS -d$DURATION (warm-up $WARMUP)"
echo

alicorn_port="$(free_port)"
start_server alicorn "$alicorn_port" \
  "$ALICORN_BIN" -w "$WORKERS" -k sync -b "127.0.0.1:$alicorn_port" --chdir "$APP_DIR" "$APP"
alicorn_pid=$started_pid
alicorn_rps="$(bench alicorn "$alicorn_port")"
stop_server "$alicorn_pid"

gunicorn_port="$(free_port)"
start_server gunicorn "$gunicorn_port" \
  "$GUNICORN" -w "$WORKERS" -k sync -b "127.0.0.1:$gunicorn_port" --chdir "$APP_DIR" "$APP"
gunicorn_pid=$started_pid
gunicorn_rps="$(bench gunicorn "$gunicorn_port")"
stop_server "$gunicorn_pid"

[[ -n "$alicorn_rps" && -n "$gunicorn_rps" ]] || die "could not read req/s from wrk (see $RESULTS_DIR)"

printf '%-10s %8s %6s %12s %10s  %s\n' server workers class req/s p50 errors
printf '%-10s %8s %6s %12s %10s  %s\n' alicorn "$WORKERS" sync "$alicorn_rps" \
  "$(p50_of alicorn)" "$(errors_of alicorn)"
printf '%-10s %8s %6s %12s %10s  %s\n' gunicorn "$WORKERS" sync "$gunicorn_rps" \
  "$(p50_of gunicorn)" "$(errors_of gunicorn)"
awk -v a="$alicorn_rps" -v g="$gunicorn_rps" \
  'BEGIN { if (g > 0) printf "ratio alicorn/gunicorn: %.2fx\n", a / g; else print "ratio alicorn/gunicorn: n/a" }'
echo "raw output: $RESULTS_DIR"
