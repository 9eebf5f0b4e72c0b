#!/usr/bin/env bash
# Reverse proxy benchmark, one run on this machine, side by side:
#   direct to a trivial upstream | Orchestra's proxy | nginx (1 and 2 workers) | haproxy
# (1) saturated keep-alive throughput with wrk, its ratio to direct, and CPU per request;
# (2) the same over https (TLS terminated by Orchestra's proxy and by nginx, one self-signed
#     certificate made here with openssl);
# (3) latency at a fixed request rate (open loop, examples/loadgen.rs) and what each proxy adds.
# All targets run side by side and rounds interleave them, so load from other work on a shared
# machine falls on all of them alike; each figure is the median over the rounds.
# All traffic stays on 127.0.0.1; every process is started here and stopped by its own PID.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROUNDS="${ROUNDS:-3}"                 # interleaved rounds; figures are medians
DURATION="${DURATION:-8}"             # seconds of each saturated wrk run
WARMUP="${WARMUP:-1}"                 # seconds of wrk before each measured run
CONNS="${CONNS:-64}"                  # wrk connections
WRK_THREADS="${WRK_THREADS:-2}"
RATE="${RATE:-5000}"                  # fixed-rate phase, requests/s
RATE_DURATION="${RATE_DURATION:-5}"   # seconds per fixed-rate run
RATE_CONNS="${RATE_CONNS:-50}"
TLS="${TLS:-1}"                       # 0: leave out the https phase
CORES="$(nproc)"
PROXY_WORKERS="${PROXY_WORKERS:-$CORES}"
UPSTREAM_THREADS="${UPSTREAM_THREADS:-$CORES}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples"

# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"

# --- tools ------------------------------------------------------------------------------------
need_debian wrk nginx haproxy
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"

log "building orchestra, the upstream, the example proxy and the load generator (release)"
(cd "$ROOT" && CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p orchestra-proxy \
  --example upstream --example proxy --example loadgen &&
  CARGO_TARGET_DIR="$TARGET_DIR" cargo build --release -q -p orchestra --bin orchestra)
ORCHESTRA="$TARGET_DIR/release/orchestra"

# --- processes --------------------------------------------------------------------------------
TMP="$(mktemp -d)"
PIDS=()
PLATFORM=""
cleanup() {
  # The platform first: `down` stops the daemon and its upstream by their own records.
  [ -n "$PLATFORM" ] && "$ORCHESTRA" -f "$PLATFORM/orchestra.yaml" down >/dev/null 2>&1 || true
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


declare -A PORT PIDOF SCHEME
ORDER=()
TLS_ORDER=()
add_target() { ORDER+=("$1"); PORT[$1]="$2"; PIDOF[$1]="$3"; SCHEME[$1]=http; }
# The https side of a target already running (same process, its TLS port).
add_tls_target() { TLS_ORDER+=("$1"); PORT[$1]="$2"; PIDOF[$1]="$3"; SCHEME[$1]=https; }

# One certificate for every TLS target: ECDSA P-256, as certificate authorities issue by default.
CERT="$TMP/tls/cert.pem"
KEY="$TMP/tls/key.pem"
if [ "$TLS" = 1 ]; then
  mkdir -p "$TMP/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$KEY" -out "$CERT" 2>/dev/null
fi

log "$CORES cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

# "orchestra" is what users run: `orchestra up` with the upstream as its one routed service,
# through the daemon's own proxy (proxy.workers = cores). Every other target is put in front
# of the replica it started, so all of them proxy to the same process.
PLATFORM="$TMP/platform"
mkdir -p "$PLATFORM"
port="$(free_port)"
tls_block=""
if [ "$TLS" = 1 ]; then
  tls_port="$(free_port)"
  tls_block="  tls: { listen: \"127.0.0.1:$tls_port\", cert: \"$CERT\", key: \"$KEY\" }"
fi
cat >"$PLATFORM/orchestra.yaml" <<YAML
name: proxy-bench
proxy:
  listen: "127.0.0.1:$port"
  workers: $PROXY_WORKERS
$tls_block
services:
  upstream:
    command: ["$BIN/upstream", --port, "\${PORT}", --threads, "$UPSTREAM_THREADS"]
    route: /
    healthcheck: { tcp: true }
YAML
"$ORCHESTRA" -f "$PLATFORM/orchestra.yaml" up -d --admin off >"$TMP/up.log" 2>&1 || {
  cat "$TMP/up.log" >&2
  exit 1
}
read -r UP_PORT UP_PID < <("$ORCHESTRA" -f "$PLATFORM/orchestra.yaml" ps --json |
  python3 -c 'import json, sys; r = json.load(sys.stdin)[0]["replicas"][0]; print(r["port"], r["pid"])')
DAEMON_PID="$(python3 -c 'import json, socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(b"GET /v1/daemon HTTP/1.0\r\nHost: x\r\n\r\n")
data = b""
while chunk := s.recv(65536): data += chunk
print(json.loads(data.split(b"\r\n\r\n", 1)[1])["pid"])' "$PLATFORM/.orchestra/orchestra.sock")"
add_target direct "$UP_PORT" "$UP_PID"
add_target orchestra "$port" "$DAEMON_PID"
wait_port "$port"
if [ "$TLS" = 1 ]; then
  add_tls_target "orch-tls" "$tls_port" "$DAEMON_PID"
  wait_port "$tls_port"
fi

# A second row, labelled as such: the proxy crate alone (examples/proxy.rs), same workers, and
# with one worker for comparison with nginx's one-worker figure.
for spec in "example:$PROXY_WORKERS" "example-1w:1"; do
  port="$(free_port)"
  "$BIN/proxy" --listen "127.0.0.1:$port" --upstream "127.0.0.1:$UP_PORT" --workers "${spec#*:}" \
    >"$TMP/${spec%%:*}.log" 2>&1 &
  PIDS+=("$!")
  add_target "${spec%%:*}" "$port" "$!"
  wait_port "$port"
done

nginx_conf() { # workers port dir [tls-port]
  cat <<CONF
worker_processes $1;
daemon off;
master_process on;
pid $3/nginx.pid;
error_log $3/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $3/body;
  proxy_temp_path $3/proxy;
  keepalive_requests 1000000;
  upstream backend {
    server 127.0.0.1:$UP_PORT;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$2;
    ${4:+listen 127.0.0.1:$4 ssl;}
    ${4:+ssl_certificate $CERT;}
    ${4:+ssl_certificate_key $KEY;}
    ${4:+ssl_protocols TLSv1.2 TLSv1.3;}
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
}
for workers in 1 2; do
  port="$(free_port)"
  tls_port=""
  [ "$TLS" = 1 ] && tls_port="$(free_port)"
  dir="$TMP/nginx-$workers"
  mkdir -p "$dir"
  nginx_conf "$workers" "$port" "$dir" "$tls_port" >"$dir/nginx.conf"
  "$NGINX" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
  PIDS+=("$!")
  add_target "nginx-${workers}w" "$port" "$!"
  wait_port "$port"
  if [ -n "$tls_port" ]; then
    add_tls_target "nginx-${workers}w-tls" "$tls_port" "$!"
    wait_port "$tls_port"
  fi
done

port="$(free_port)"
cat >"$TMP/haproxy.cfg" <<CONF
global
  maxconn 4000
  nbthread $CORES
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend fe
  bind 127.0.0.1:$port
  default_backend be
backend be
  server s1 127.0.0.1:$UP_PORT
CONF
"$HAPROXY" -f "$TMP/haproxy.cfg" -db >"$TMP/haproxy.log" 2>&1 &
PIDS+=("$!")
add_target haproxy "$port" "$!"
wait_port "$port"

# --- measurements -----------------------------------------------------------------------------
# CPU ticks (user + system) of a process and its children (nginx's workers).
cpu_ticks() {
  local total=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
median() { # numbers on stdin, any whitespace; integer median
  tr -s ' \n' '\n' | grep -v '^$' | sort -n |
    awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.0f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}
median1() { # one decimal
  tr -s ' \n' '\n' | grep -v '^$' | sort -n |
    awk '{a[NR] = $1} END {if (NR % 2) print a[(NR + 1) / 2]; else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

declare -A RPS_RUNS CPU_RUNS P50_RUNS P99_RUNS ERRS
throughput_round() { # label
  local label="$1" url="${SCHEME[$1]}://127.0.0.1:${PORT[$1]}/" pid="${PIDOF[$1]}" out before after rps bad
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" "$url" >/dev/null
  before="$(cpu_ticks "$pid")"
  out="$(wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" "$url")"
  after="$(cpu_ticks "$pid")"
  rps="$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")"
  bad="$(awk '/Non-2xx/ {s += $NF} /Socket errors/ {gsub(",", ""); s += $4 + $6 + $8 + $10} END {print s + 0}' <<<"$out")"
  RPS_RUNS[$label]+="$rps "
  CPU_RUNS[$label]+="$(awk -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" -v r="$rps" -v d="$DURATION" \
    'BEGIN {printf "%.1f", t / hz * 1e6 / (r * d)}') "
  ERRS[$label]=$((${ERRS[$label]:-0} + bad))
  log "  $label: $rps req/s"
}
latency_round() { # label
  local label="$1" lat
  lat="$("$BIN/loadgen" --addr "127.0.0.1:${PORT[$label]}" --rate "$RATE" --duration "$RATE_DURATION" \
    --connections "$RATE_CONNS")"
  P50_RUNS[$label]+="$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$lat") "
  P99_RUNS[$label]+="$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$lat") "
  ERRS[$label]=$((${ERRS[$label]:-0} + $(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$lat")))
  log "  $label: $lat"
}

for round in $(seq 1 "$ROUNDS"); do
  log "throughput round $round/$ROUNDS (wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s each)"
  for label in "${ORDER[@]}"; do throughput_round "$label"; done
done
for round in $(seq 1 "$ROUNDS"); do
  ((${#TLS_ORDER[@]})) || break
  log "https throughput round $round/$ROUNDS (wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s each)"
  for label in "${TLS_ORDER[@]}"; do throughput_round "$label"; done
done
for round in $(seq 1 "$ROUNDS"); do
  log "latency round $round/$ROUNDS ($RATE req/s for ${RATE_DURATION}s each)"
  for label in "${ORDER[@]}"; do latency_round "$label"; done
done
log "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- report -----------------------------------------------------------------------------------
declare -A RPS CPU P50 P99
for label in "${TLS_ORDER[@]}"; do
  RPS[$label]="$(median <<<"${RPS_RUNS[$label]}")"
  CPU[$label]="$(median1 <<<"${CPU_RUNS[$label]}")"
done
for label in "${ORDER[@]}"; do
  RPS[$label]="$(median <<<"${RPS_RUNS[$label]}")"
  CPU[$label]="$(median1 <<<"${CPU_RUNS[$label]}")"
  P50[$label]="$(median <<<"${P50_RUNS[$label]}")"
  P99[$label]="$(median <<<"${P99_RUNS[$label]}")"
done
D="direct"
echo
echo "Proxy benchmark: $CORES shared cores, medians of $ROUNDS interleaved rounds"
echo "  throughput: wrk -t$WRK_THREADS -c$CONNS -d${DURATION}s, keep-alive, 12-byte body"
echo "  latency:    $RATE req/s open loop over $RATE_CONNS connections, ${RATE_DURATION}s per round (examples/loadgen.rs)"
echo "  upstream: examples/upstream ($UPSTREAM_THREADS threads), started by orchestra up as its one routed service"
echo "  orchestra: orchestra up's proxy (proxy.workers $PROXY_WORKERS; cpu: the daemon's); example*: examples/proxy alone"
echo "  $("$NGINX" -v 2>&1 | head -1); $("$HAPROXY" -v 2>&1 | head -1 | cut -d' ' -f1-3) (nbthread $CORES)"
echo "  cpu µs/req: user + system CPU of the proxy's processes per request in the wrk runs (direct: the upstream's)"
printf '\n%-10s %9s %9s %10s %8s %8s %10s %10s %7s\n' \
  "target" "req/s" "vs direct" "cpu µs/req" "p50 µs" "p99 µs" "p50 added" "p99 added" "errors"
for label in "${ORDER[@]}"; do
  ratio="$(awk -v a="${RPS[$label]}" -v b="${RPS[$D]}" 'BEGIN {printf "%.0f%%", 100 * a / b}')"
  printf '%-10s %9s %9s %10s %8s %8s %10s %10s %7s\n' "$label" "${RPS[$label]}" "$ratio" "${CPU[$label]}" \
    "${P50[$label]}" "${P99[$label]}" "$((P50[$label] - P50[$D]))" "$((P99[$label] - P99[$D]))" "${ERRS[$label]}"
done
if ((${#TLS_ORDER[@]})); then
  best_tls=$((RPS[nginx-1w-tls] > RPS[nginx-2w-tls] ? RPS[nginx-1w-tls] : RPS[nginx-2w-tls]))
  echo
  echo "https (TLS terminated by the proxy; wrk keep-alive, same self-signed ECDSA P-256 certificate):"
  for label in "${TLS_ORDER[@]}"; do
    printf '  %-14s %s\n' "$label" "$(openssl s_client -connect "127.0.0.1:${PORT[$label]}" -servername localhost \
      </dev/null 2>/dev/null | awk '/^New, / {print $2, $NF; exit}')"
  done
  printf '\n%-14s %9s %9s %10s %12s %7s\n' "target" "req/s" "vs direct" "vs nginx" "cpu µs/req" "errors"
  for label in "${TLS_ORDER[@]}"; do
    printf '%-14s %9s %9s %10s %12s %7s\n' "$label" "${RPS[$label]}" \
      "$(awk -v a="${RPS[$label]}" -v b="${RPS[$D]}" 'BEGIN {printf "%.0f%%", 100 * a / b}')" \
      "$(awk -v a="${RPS[$label]}" -v b="$best_tls" 'BEGIN {printf "%.0f%%", 100 * a / b}')" \
      "${CPU[$label]}" "${ERRS[$label]}"
  done
fi
echo
echo "per round (req/s | p99 µs):"
for label in "${ORDER[@]}"; do
  printf '  %-10s %s| %s\n' "$label" "${RPS_RUNS[$label]}" "${P99_RUNS[$label]}"
done
for label in "${TLS_ORDER[@]}"; do
  printf '  %-12s %s\n' "$label" "${RPS_RUNS[$label]}"
done

best_nginx_rps=$((RPS[nginx-1w] > RPS[nginx-2w] ? RPS[nginx-1w] : RPS[nginx-2w]))
nginx1_p99_added=$((P99[nginx-1w] - P99[$D]))
nginx2_p99_added=$((P99[nginx-2w] - P99[$D]))
best_nginx_p99_added=$((nginx1_p99_added < nginx2_p99_added ? nginx1_p99_added : nginx2_p99_added))
orch_p99_added=$((P99[orchestra] - P99[$D]))
verdict() { if [ "$1" = 1 ]; then echo "MET   "; else echo "MISSED"; fi; }
echo
echo "targets for orchestra up's proxy (against the better of nginx 1w/2w):"
echo "  throughput >= 110% nginx    $(verdict $((RPS[orchestra] * 100 >= best_nginx_rps * 110)))  ${RPS[orchestra]} vs $best_nginx_rps req/s"
echo "  throughput >= 110% haproxy  $(verdict $((RPS[orchestra] * 100 >= RPS[haproxy] * 110)))  ${RPS[orchestra]} vs ${RPS[haproxy]} req/s"
echo "  p99 added <= 1 ms      $(verdict $((orch_p99_added <= 1000)))  ${orch_p99_added} µs"
echo "  p99 added <= nginx's   $(verdict $((orch_p99_added <= best_nginx_p99_added)))  ${orch_p99_added} vs ${best_nginx_p99_added} µs"
if ((${#TLS_ORDER[@]})); then
  echo "  https >= nginx https   $(verdict $((RPS[orch-tls] >= best_tls)))  ${RPS[orch-tls]} vs $best_tls req/s"
fi
