#!/usr/bin/env bash
# Deploy benchmark: 100 consecutive deploys and rollbacks of a routed service
# under steady load through Orchestra's proxy, then bad canaries, then 20
# kill -9 cycles of the daemon in the middle of a canary.
# Prints: failed requests (target 0), switch time, warm rollback time
# (target <= 1 s, aim 100 ms), time to catch a bad canary (target <= 10 s).
#
#   bash bench/deploy/run.sh            # CYCLES=50 (x2 = 100 operations), RATE=200 req/s, KILLS=20
#   SKIP_BUILD=1 BIN_DIR=target/release bash bench/deploy/run.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
CYCLES=${CYCLES:-50}
RATE=${RATE:-200}
BAD=${BAD:-5}
KILLS=${KILLS:-20}
ROTATIONS=${ROTATIONS:-20}
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p orchestra -p demo-service
fi
# Absolute: the platform runs in a temp dir.
BIN_DIR=$(cd "${BIN_DIR:-$root/target/release}" && pwd)
command -v hey >/dev/null || { apt-get install -y -qq hey >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq hey; }; }
export PATH="$BIN_DIR:$PATH"

work=$(mktemp -d)
# The platform's own age identity, not the user's.
export ORCHESTRA_AGE_KEY_FILE="$work/age.key"
cleanup() { (cd "$work" && orchestra down >/dev/null 2>&1) || true; [ -n "${hey_pid:-}" ] && kill "$hey_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cat >"$work/orchestra.yaml" <<'YAML'
name: deploy-bench
services:
  api:
    command: [demo-service, --port, "${PORT}", --name, api, --version, "${DEMO_VERSION:-v1}", --fail-rate, "${DEMO_FAIL_RATE:-0}"]
    route: { path: /api, strip_prefix: true }
    secrets: [MODEL_TOKEN]
    healthcheck: { http: /health, interval: 1s, start_period: 10s }
    readiness: { http: /ready, interval: 1s }
    deploy:
      strategy: blue-green
      keep_warm: 10m
      drain_timeout: 5s
      steps: [50]
      step_interval: 10s
      verify: { max_error_rate: 2%, min_requests: 20 }
YAML
cd "$work"
printf %s token-0 | orchestra secrets set MODEL_TOKEN >/dev/null
# hey's report as "total non-200 transport-errors".
hey_counts() {
  python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
codes = text.split("Status code distribution:")[-1].split("Error distribution:")[0]
errors = text.split("Error distribution:")[-1] if "Error distribution:" in text else ""
by_code = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", codes)}
errs = sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", errors, re.M))
print(sum(by_code.values()) + errs, sum(n for c, n in by_code.items() if c != 200), errs)
PY
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
out=$(orchestra up -d --admin off --proxy 127.0.0.1:0)
proxy=$(echo "$out" | sed -n 's/.*proxy http:\/\/\([0-9.:]*\).*/\1/p')
echo "platform up; proxy $proxy; load ${RATE} req/s (hey, 8 connections)"

duration=$(( CYCLES * 3 + 60 ))
hey -z "${duration}s" -c 8 -q $(( RATE / 8 )) "http://$proxy/api/" >"$work/hey.txt" 2>&1 &
hey_pid=$!
# Long-lived streams across the switches: 3 s SSE streams back to back; each
# must deliver all 30 events.
( ok=0; bad=0
  while [ ! -f "$work/stop-streams" ]; do
    n=$(curl -sN --max-time 20 "http://$proxy/api/stream?n=30&interval=100ms" | grep -c '^data:' || true)
    if [ "$n" = 30 ]; then ok=$((ok+1)); else bad=$((bad+1)); fi
  done
  echo "$ok $bad" >"$work/streams.txt" ) &
streams_pid=$!
sleep 1

version() { curl -s "http://$proxy/api/" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'; }
declare -a deploy_ms rollback_ms visible_ms switch_ms
for i in $(seq 1 "$CYCLES"); do
  t=$(date +%s%N)
  DEMO_VERSION=v2 orchestra deploy api --wait >/dev/null
  deploy_ms+=("$(ms "$t")")
  sw=$(orchestra history api --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(next((x["figures"].get("switch_ms",0) for x in r if x["strategy"]=="blue-green"),0))')
  switch_ms+=("$sw")
  t=$(date +%s%N)
  orchestra rollback api >/dev/null
  rollback_ms+=("$(ms "$t")")
  while [ "$(version)" != v1 ]; do :; done
  visible_ms+=("$(ms "$t")")
done
echo "cycles done"
touch "$work/stop-streams"
wait "$streams_pid" 2>/dev/null || true
read -r streams_ok streams_bad <"$work/streams.txt"
kill -INT "$hey_pid" 2>/dev/null || true
wait "$hey_pid" 2>/dev/null || true
hey_pid=

catch_ms=()
for i in $(seq 1 "$BAD"); do
  t=$(date +%s%N)
  DEMO_VERSION="bad$i" DEMO_FAIL_RATE=0.3 orchestra deploy api --strategy canary --wait >/dev/null 2>&1 &
  dpid=$!
  # Traffic for the verifier: 100 requests/s while the canary runs.
  hey -n 2000 -c 4 -q 25 "http://$proxy/api/" >/dev/null 2>&1 &
  lpid=$!
  wait "$dpid" || true
  catch_ms+=("$(ms "$t")")
  kill "$lpid" 2>/dev/null || true; wait "$lpid" 2>/dev/null || true
done

# kill -9 of the daemon mid-canary: requests failed per cycle while it is
# down (the proxy lives in the daemon for now), and the time from the restart
# to serving the revision state.db, `ps` and `history` agree on.
daemon_pid() { python3 -c 'import sqlite3; print(sqlite3.connect(".orchestra/state.db").execute("select daemon_pid from runs order by id desc limit 1").fetchone()[0])'; }
kill_failed=()
restore_ms=()
for i in $(seq 1 "$KILLS"); do
  DEMO_VERSION="k$i" orchestra deploy api --strategy canary >/dev/null
  until orchestra history api --json | python3 -c 'import json,sys; r=json.load(sys.stdin)[0]; sys.exit(0 if r["status"]=="in-progress" and "step" in r["figures"] else 1)'; do sleep 0.05; done
  hey -z 3s -c 4 -q 25 "http://$proxy/api/" >"$work/kill-hey.txt" 2>&1 &
  lpid=$!
  sleep 0.5
  kill -9 "$(daemon_pid)"
  while orchestra ps >/dev/null 2>&1; do sleep 0.01; done
  t=$(date +%s%N)
  orchestra up -d --admin off --proxy "$proxy" >/dev/null
  want=$(orchestra ps --json | python3 -c 'import json,sys; print(next(s["revision"] for s in json.load(sys.stdin) if s["name"]=="api"))')
  until [ "$(curl -s "http://$proxy/api/" | sed -n 's/.*"version":"\([^"]*\)".*/\1/p')" = v1 ]; do :; done
  restore_ms+=("$(ms "$t")")
  wait "$lpid" 2>/dev/null || true
  kill_failed+=("$(hey_counts "$work/kill-hey.txt" | awk '{print $2 + $3}')")
  agreed=$(orchestra history api --json | python3 -c 'import json,sys; r=json.load(sys.stdin); print("yes" if all(x["status"] not in ("in-progress","live") for x in r) else "no")')
  [ "$agreed" = yes ] || { echo "cycle $i: a release is still open after the restart" >&2; exit 1; }
  [ -n "$want" ] || exit 1
done

# Secret rotations under load: each a verified blue-green deploy of the api.
rot_failed=0
rot_total=0
rot_ms=()
if [ "$ROTATIONS" -gt 0 ]; then
  hey -z "$(( ROTATIONS * 2 + 10 ))s" -c 8 -q $(( RATE / 8 )) "http://$proxy/api/" >"$work/rot-hey.txt" 2>&1 &
  rpid=$!
  sleep 1
  for i in $(seq 1 "$ROTATIONS"); do
    t=$(date +%s%N)
    printf %s "token-$i" | orchestra secrets rotate MODEL_TOKEN --wait >/dev/null
    rot_ms+=("$(ms "$t")")
  done
  kill -INT "$rpid" 2>/dev/null || true
  wait "$rpid" 2>/dev/null || true
  read -r rot_total rot_bad rot_errs < <(hey_counts "$work/rot-hey.txt")
  rot_failed=$((rot_bad + rot_errs))
fi
orchestra down >/dev/null 2>&1 || true

# Time 10 secrets add to a start: `up -d` of one service with 10 secrets and
# without, alternated, 10 times each (the values are decrypted and injected
# before the replica starts).
secret_ms=()
plain_ms=()
s10="$work/s10"
mkdir -p "$s10"
write_s10() {
  local list=""
  [ "$1" = with ] && list="    secrets: [S1, S2, S3, S4, S5, S6, S7, S8, S9, S10]"
  printf 'services:\n  one:\n    command: [demo-service, --port, "${PORT}"]\n    healthcheck: { http: /health, interval: 1s }\n%s\n' "$list" >"$s10/orchestra.yaml"
}
write_s10 with
for n in $(seq 1 10); do printf %s "value-$n-0123456789abcdef" | (cd "$s10" && orchestra secrets set "S$n" >/dev/null); done
for i in $(seq 1 10); do
  for variant in with without; do
    write_s10 "$variant"
    t=$(date +%s%N)
    (cd "$s10" && orchestra up -d --admin off >/dev/null)
    took=$(ms "$t")
    (cd "$s10" && orchestra down >/dev/null)
    if [ "$variant" = with ]; then secret_ms+=("$took"); else plain_ms+=("$took"); fi
  done
done

stats() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "median %s, min %s, max %s (n=%d)", a[int((NR+1)/2)], a[1], a[NR], NR}'; }
read -r total non200 errs < <(hey_counts "$work/hey.txt")
echo
echo "| metric | measured | target |"
echo "|---|---|---|"
echo "| requests during $((CYCLES*2)) deploys+rollbacks | $total | - |"
echo "| failed requests (non-200 + transport errors) | $((non200 + errs)) | 0 |"
echo "| 3 s SSE streams across the switches: complete / cut short | $streams_ok / $streams_bad | all complete |"
echo "| blue-green deploy, wall (start new, gate, switch, drain) ms | $(stats "${deploy_ms[@]}") | - |"
echo "| switch (route swap + persist) ms | $(stats "${switch_ms[@]}") | <= 1 health interval + 1 ms |"
echo "| warm rollback, command wall ms | $(stats "${rollback_ms[@]}") | <= 1000 (aim 100) |"
echo "| warm rollback, until the old version answers ms | $(stats "${visible_ms[@]}") | <= 1000 (aim 100) |"
echo "| bad canary (30% errors) caught, deploy start to failed ms | $(stats "${catch_ms[@]}") | <= 10000 |"
if [ "$KILLS" -gt 0 ]; then
  echo "| kill -9 mid-canary: failed requests per cycle (3 s of load, daemon down) | $(stats "${kill_failed[@]}") | 0 once the data plane outlives the daemon |"
  echo "| kill -9 mid-canary: restart to serving the agreed revision ms | $(stats "${restore_ms[@]}") | - |"
fi
if [ "$ROTATIONS" -gt 0 ]; then
  echo "| $ROTATIONS secret rotations under load: failed requests (of $rot_total) | $rot_failed | 0 |"
  echo "| secret rotation (set + verified deploy), wall ms | $(stats "${rot_ms[@]}") | - |"
fi
echo "| up -d of one service with 10 secrets / without, ms | $(stats "${secret_ms[@]}") / $(stats "${plain_ms[@]}") | <= 5 ms added |"
