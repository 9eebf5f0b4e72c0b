#!/usr/bin/env bash
# `GET /metrics` of a running `orchestra up` (release binaries): latency and
# size with SERVICES demo-service services of REVISIONS revisions each (one
# live, the others kept warm by two blue-green deploys, every revision having
# served traffic), checked with `promtool check metrics`.
# Knobs (environment): SERVICES (50), REVISIONS (3), SCRAPES (300),
# SKIP_BUILD=1 (use the release binaries as they are), BIN_DIR (other
# binaries), KEEP=1 (keep the temp dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=../lib.sh
source "$ROOT/bench/lib.sh"

SERVICES="${SERVICES:-50}"
REVISIONS="${REVISIONS:-3}"
SCRAPES="${SCRAPES:-300}"
BIN="${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"

need_debian curl prometheus
have promtool || { log "promtool is missing (Debian prometheus)"; exit 1; }
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${BIN_DIR:-}" ]; then
  log "building the release binaries"
  (cd "$ROOT" && cargo build --release -p orchestra -p demo-service)
fi
[ -x "$BIN/orchestra" ] || { log "no $BIN/orchestra"; exit 1; }
export PATH="$BIN:$PATH"

TMP="$(mktemp -d /tmp/orchestra-bench-metrics.XXXXXX)"
cleanup() {
  (cd "$TMP" && orchestra down >/dev/null 2>&1 || true)
  if [ "${KEEP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

{
  echo "name: metrics-bench"
  echo "services:"
  for i in $(seq -w 1 "$SERVICES"); do
    cat <<YAML
  svc$i:
    command: [demo-service, --port, "\${PORT}", --name, svc$i, --version, "\${DEMO_VERSION:-v1}"]
    route: { path: /svc$i }
    healthcheck: { http: /health, interval: 2s }
    deploy: { strategy: blue-green, keep_warm: 30m, drain_timeout: 1s }
YAML
  done
} >"$TMP/orchestra.yaml"

ADMIN=$(free_port)
PROXY=$(free_port)
log "up: $SERVICES services"
(cd "$TMP" && orchestra up -d --admin "127.0.0.1:$ADMIN" --proxy "127.0.0.1:$PROXY" --timeout 120s >/dev/null)

traffic() {
  for i in $(seq -w 1 "$SERVICES"); do
    for _ in 1 2 3 4; do echo "url = \"http://127.0.0.1:$PROXY/svc$i/\""; echo "output = /dev/null"; done
  done | curl -s --no-progress-meter --parallel --parallel-max 8 -K - >/dev/null
}
traffic
for r in $(seq 2 "$REVISIONS"); do
  log "deploy: revision $r of every service"
  (cd "$TMP" && DEMO_VERSION="v$r" orchestra deploy --wait >/dev/null)
  traffic
done

BODY="$TMP/metrics.txt"
curl -s "http://127.0.0.1:$ADMIN/metrics" -o "$BODY"
log "promtool check metrics"
promtool check metrics <"$BODY"
SERIES=$(grep -vc '^#' "$BODY")
FAMILIES=$(grep -c '^# TYPE' "$BODY")
REVS=$(grep -o 'revision="[^"]*"' "$BODY" | sort -u | wc -l)
BYTES=$(wc -c <"$BODY")

log "$SCRAPES scrapes, one at a time"
for _ in $(seq 1 10); do curl -s -o /dev/null "http://127.0.0.1:$ADMIN/metrics"; done
for _ in $(seq 1 "$SCRAPES"); do echo "url = \"http://127.0.0.1:$ADMIN/metrics\""; echo "output = /dev/null"; echo 'write-out = "%{time_total}\n"'; done |
  curl -s -K - | sort -n >"$TMP/times.txt"
pct() { awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100); if (i<1) i=1; printf "%.2f", a[i]*1000}' "$TMP/times.txt"; }

echo
echo "== /metrics with $SERVICES services x $REVISIONS revisions ($REVS revisions in the body)"
printf '%-28s %s\n' "families / samples" "$FAMILIES / $SERIES"
printf '%-28s %s KB (target <= 200 KB)\n' "body" "$(awk -v b="$BYTES" 'BEGIN{printf "%.1f", b/1000}')"
printf '%-28s %s / %s / %s ms (target <= 5 ms)\n' "latency p50 / p90 / p99" "$(pct 50)" "$(pct 90)" "$(pct 99)"
