#!/usr/bin/env bash
# User-space instructions per proxied request, counted by valgrind (callgrind): a figure that
# does not move with the load on a shared machine, for comparing builds of the proxy.
#
#   bench/proxy/instructions.sh [PROXY_BINARY...]     (default: examples/proxy, built here)
#
# Each binary runs under callgrind with one worker in front of examples/upstream; `hey` sends
# N requests (default 20,000) over 8 keep-alive connections; the total instruction count of
# the proxy process (startup and shutdown included, a few hundred thousand) is divided by N.
# Needs valgrind and hey (installed from Debian if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
N="${N:-20000}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples"

missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v hey >/dev/null || missing+=(hey)
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p orchestra-proxy \
  --example upstream --example proxy)
PROXIES=("$@")
((${#PROXIES[@]})) || PROXIES=("$BIN/proxy")

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

"$BIN/upstream" --port 0 --threads 1 >"$TMP/upstream.log" 2>&1 &
PIDS+=($!)
wait_line() { # file pattern -> the line, within 30 s
  for _ in $(seq 300); do
    if grep -q "$2" "$1" 2>/dev/null; then grep -m1 "$2" "$1"; return; fi
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  exit 1
}
UP="$(wait_line "$TMP/upstream.log" 'listening on' | awk '{print $NF}')"

printf '%-40s %14s %12s\n' proxy instructions per-request
for p in "${PROXIES[@]}"; do
  out="$TMP/callgrind.out"
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$p" --listen 127.0.0.1:0 --upstream "$UP" --workers 1 >"$TMP/proxy.log" 2>"$TMP/valgrind.log" &
  pid=$!
  PIDS+=("$pid")
  addr="$(wait_line "$TMP/proxy.log" 'listening on' | awk '{print $NF}')"
  hey -n "$N" -c 8 "http://$addr/" >"$TMP/hey.txt"
  grep -q "\[200\].*$N responses" "$TMP/hey.txt" || { cat "$TMP/hey.txt"; exit 1; }
  kill -INT "$pid"
  wait "$pid" 2>/dev/null || true
  total="$(grep -E '^(summary|totals):' "$out" | head -1 | awk '{print $2}')"
  printf '%-40s %14s %12s\n' "$(basename "$p")" "$total" "$((total / N))"
done
