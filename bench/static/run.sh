#!/usr/bin/env bash
# Static site benchmark, one run on this machine, side by side:
#   `orchestra up` serving a directory through its proxy (route.static) | nginx serving the same files
# with wrk (keep-alive, saturated) on a small file (~1 KiB) and a ~100 KiB file, and CPU per
# request of each server's own processes. Rounds interleave the servers, so load from other work
# on a shared machine falls on both alike; each figure is the median over the rounds.
# All traffic stays on 127.0.0.1; every process is started here and stopped by its own PID.
#
#   bash bench/static/run.sh
#   ROUNDS=5 DURATION=10 bash bench/static/run.sh
#   SKIP_BUILD=1 BIN_DIR=/path/to/release bash bench/static/run.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"             # interleaved rounds; figures are medians
DURATION="${DURATION:-8}"         # seconds of each measured wrk run
WARMUP="${WARMUP:-1}"             # seconds of wrk before each measured run
CONNS="${CONNS:-64}"              # wrk connections
WRK_THREADS="${WRK_THREADS:-2}"
CORES="$(nproc)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="${BIN_DIR:-$TARGET_DIR/release}"

# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"

# --- tools ------------------------------------------------------------------------------------
need_debian wrk nginx
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [ -z "${SKIP_BUILD:-}" ]; then
  log "building orchestra (release)"
  (cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p orchestra)
fi
ORCH="$BIN/orchestra"
[ -x "$ORCH" ] || { log "no orchestra binary at $ORCH"; exit 1; }

# --- processes --------------------------------------------------------------------------------
TMP="$(mktemp -d)"
PIDS=()
ORCH_PID=""
cleanup() {
  # The daemon stops its services and its proxy on `down`; its PID is checked after.
  if [ -n "$ORCH_PID" ]; then
    (cd "$TMP/project" && "$ORCH" down >/dev/null 2>&1) || true
    for _ in $(seq 1 100); do kill -0 "$ORCH_PID" 2>/dev/null || break; sleep 0.05; done
    kill "$ORCH_PID" 2>/dev/null || true
  fi
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# --- the site ---------------------------------------------------------------------------------
SMALL="assets/index-3f2a9c1b.js"
LARGE="assets/vendor-8c2e1f0a.js"
mkdir -p "$TMP/project/dist/assets"
# nginx's workers run as an unprivileged user: they must reach the files.
chmod 755 "$TMP"
DIST="$TMP/project/dist"
head -c 700 /dev/urandom | base64 -w 0 >"$DIST/$SMALL"                  # 936 bytes
head -c 76800 /dev/urandom | base64 -w 0 >"$DIST/$LARGE"                # 102,400 bytes
printf '<!doctype html><title>bench</title><script src="/%s"></script>\n' "$SMALL" >"$DIST/index.html"
SMALL_BYTES="$(stat -c %s "$DIST/$SMALL")"
LARGE_BYTES="$(stat -c %s "$DIST/$LARGE")"

declare -A PORT PIDOF
ORDER=()
add_target() { ORDER+=("$1"); PORT[$1]="$2"; PIDOF[$1]="$3"; }

log "$CORES cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

port="$(free_port)"
cat >"$TMP/project/orchestra.yaml" <<YAML
name: static-bench
services:
  web:
    route: { path: /, static: ./dist, spa: true }
YAML
(cd "$TMP/project" && "$ORCH" up -d --proxy "127.0.0.1:$port" --admin off >"$TMP/up.log" 2>&1) ||
  { cat "$TMP/up.log" >&2; exit 1; }
ORCH_PID="$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select daemon_pid from runs order by id desc limit 1").fetchone()[0])' \
  "$TMP/project/.orchestra/state.db")"
add_target orchestra "$port" "$ORCH_PID"
wait_port "$port"

port="$(free_port)"
dir="$TMP/nginx"
mkdir -p "$dir"
# A common static-hosting configuration: a worker per core, sendfile, no access log.
cat >"$dir/nginx.conf" <<CONF
worker_processes $CORES;
daemon off;
master_process on;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  include /etc/nginx/mime.types;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $dir/body;
  server {
    listen 127.0.0.1:$port;
    root $DIST;
    location / { try_files \$uri \$uri/ /index.html; }
    location /assets/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
  }
}
CONF
"$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
PIDS+=("$!")
add_target nginx "$port" "$!"
wait_port "$port"

# Both serve the same bytes.
for label in "${ORDER[@]}"; do
  for f in "$SMALL" "$LARGE"; do
    got="$(curl -fsS "http://127.0.0.1:${PORT[$label]}/$f" | cmp - "$DIST/$f" && echo same || echo different)"
    [ "$got" = same ] || { log "$label does not serve $f as it is on disk"; exit 1; }
  done
done

# --- measurements -----------------------------------------------------------------------------
# CPU ticks (user + system) of a process and its children (nginx's workers), all its threads.
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
median() {
  tr -s ' \n' '\n' | grep -v '^$' | sort -n |
    awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
median1() {
  tr -s ' \n' '\n' | grep -v '^$' | sort -n |
    awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

declare -A RPS_RUNS CPU_RUNS MBS_RUNS ERRS
round() { # label file key
  local label="$1" url="http://127.0.0.1:${PORT[$1]}/$2" key="$1/$3" pid="${PIDOF[$1]}" out before after rps bad mbs
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
  before="$(cpu_ticks "$pid")"
  out="$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" "$url")"
  after="$(cpu_ticks "$pid")"
  rps="$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")"
  mbs="$(awk '/^Transfer\/sec/ {v = $2; u = substr(v, length(v) - 1); n = v + 0;
    if (u == "GB") n *= 1024; else if (u == "KB") n /= 1024; printf "%.0f", n}' <<<"$out")"
  bad="$(awk '/Non-2xx/ {s += $NF} /Socket errors/ {gsub(",", ""); s += $4 + $6 + $8 + $10} END {print s + 0}' <<<"$out")"
  RPS_RUNS[$key]+="$rps "
  MBS_RUNS[$key]+="$mbs "
  CPU_RUNS[$key]+="$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v r="$rps" -v d="$DURATION" \
    'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}') "
  ERRS[$key]=$((${ERRS[$key]:-0} + bad))
  log "  $key: $rps req/s, $mbs MB/s"
}

for r in $(seq 1 "$ROUNDS"); do
  log "round $r/$ROUNDS (wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s each)"
  for label in "${ORDER[@]}"; do
    round "$label" "$SMALL" small
    round "$label" "$LARGE" large
  done
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -----------------------------------------------------------------------------------
echo
echo "Static site benchmark: $CORES shared cores, medians of $ROUNDS interleaved rounds"
echo "  wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, keep-alive; small = $SMALL_BYTES bytes, large = $LARGE_BYTES bytes"
echo "  orchestra: \`orchestra up\` (release), route { path: /, static: ./dist, spa: true }, served from its snapshot"
echo "  $("$NGINX" -v 2>&1 | head -1), worker_processes $CORES, sendfile on, access_log off, the same dist/"
echo "  cpu µs/req: user + system CPU of the server's processes (orchestra: the daemon; nginx: master and workers)"
printf '\n%-6s %-10s %10s %8s %11s %8s\n' "file" "server" "req/s" "MB/s" "cpu µs/req" "errors"
for size in small large; do
  for label in "${ORDER[@]}"; do
    key="$label/$size"
    printf '%-6s %-10s %10s %8s %11s %8s\n' "$size" "$label" "$(median <<<"${RPS_RUNS[$key]}")" \
      "$(median <<<"${MBS_RUNS[$key]}")" "$(median1 <<<"${CPU_RUNS[$key]}")" "${ERRS[$key]}"
  done
done
echo
echo "orchestra / nginx (req/s):"
for size in small large; do
  o="$(median <<<"${RPS_RUNS[orchestra/$size]}")"
  n="$(median <<<"${RPS_RUNS[nginx/$size]}")"
  echo "  $size: $(awk -v a="$o" -v b="$n" 'BEGIN {printf "%.0f%%", 100 * a / b}')"
done
echo
echo "per round (req/s):"
for key in orchestra/small nginx/small orchestra/large nginx/large; do
  printf '  %-16s %s\n' "$key" "${RPS_RUNS[$key]}"
done
