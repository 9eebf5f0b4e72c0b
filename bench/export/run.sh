#!/usr/bin/env bash
# How long `orchestra export` takes for a 50-service platform, with the shipped (release)
# binary: k8s (plain and with --rollouts argo --gateway), compose and cloudrun, each timed
# end to end (process start, manifest load, secret store, render, write) over RUNS runs.
# Target: <= 50 ms for 50 services.
#
#   bench/export/run.sh [N_SERVICES]        (default 50)
#
# Env: RUNS (30), SKIP_BUILD=1 (use the release binary as it is), BIN (time this binary
# instead), CARGO_TARGET_DIR,
# KEEP=1 (keep the temp dir).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck source=../lib.sh
. "$ROOT/bench/lib.sh"
N=${1:-50}
RUNS=${RUNS:-30}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$CARGO_TARGET_DIR/release/orchestra}
TMP=$(mktemp -d)
if [[ "${KEEP:-0}" != 1 ]]; then trap 'rm -rf "$TMP"' EXIT; fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  log "building the release binary"
  (cd "$ROOT" && cargo build --release -q -p orchestra --bin orchestra)
fi
[[ -x "$BIN" ]] || { log "no $BIN"; exit 1; }

log "generating $N services in $TMP/project"
python3 "$HERE/gen.py" "$TMP/project" "$N"
export ORCHESTRA_AGE_KEY_FILE="$TMP/age.key"
(cd "$TMP/project" && printf 'bench-token' | "$BIN" secrets set API_TOKEN >/dev/null 2>&1)

# time_runs LABEL ARGS...: median and worst wall time in ms over RUNS runs.
time_runs() {
  local label=$1 t0 t1
  shift
  local samples=()
  (cd "$TMP/project" && "$BIN" "$@" >/dev/null 2>"$TMP/report.txt") || { cat "$TMP/report.txt" >&2; exit 1; }
  for _ in $(seq 1 "$RUNS"); do
    t0=$EPOCHREALTIME
    (cd "$TMP/project" && "$BIN" "$@" >/dev/null 2>&1)
    t1=$EPOCHREALTIME
    samples+=("$(python3 -c "print(($t1 - $t0) * 1000)")")
  done
  python3 - "$label" "$(tail -n 1 "$TMP/report.txt")" "${samples[@]}" <<'PY'
import statistics, sys
label, summary, xs = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3:]]
print(f"{label:<34} median {statistics.median(xs):6.1f} ms   worst {max(xs):6.1f} ms   ({summary})")
PY
}

echo "== orchestra export, $N services, $RUNS runs each (target: <= 50 ms)"
time_runs "k8s" export k8s -o "$TMP/k8s"
time_runs "k8s --rollouts argo --gateway" export k8s -o "$TMP/k8s-argo" --rollouts argo --gateway public
time_runs "compose" export compose -o "$TMP/compose.yaml" --force
time_runs "cloudrun" export cloudrun -o "$TMP/cloudrun"
time_runs "validate (load alone, for scale)" validate
echo "files: $(ls "$TMP/k8s" | wc -l) for k8s, $(du -sh "$TMP/k8s" | cut -f1)"
# Byte-identical across runs.
(cd "$TMP/project" && "$BIN" export k8s -o "$TMP/k8s-again" >/dev/null 2>&1)
if diff -r "$TMP/k8s" "$TMP/k8s-again" >/dev/null; then echo "deterministic: two runs byte-identical"; else echo "NOT deterministic"; exit 1; fi
