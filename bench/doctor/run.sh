#!/usr/bin/env bash
# How long `orchestra doctor` takes, with the release binaries:
#   1. the demo platform (examples/ai-platform), nothing running;
#   2. the same while it runs (`up -d`): the proxy port is in use, so doctor
#      asks the project's daemon who holds it;
#   3. a project that needs every check: the demo's services plus a container
#      (when a Docker Engine answers at DOCKER_HOST), a secret, and pinned
#      node/python/rust versions (each `--version` runs, in parallel).
# Knobs (environment): RUNS (30), SKIP_BUILD=1 (use target/release as it is),
# BIN_DIR (other binaries), KEEP=1 (keep the temp dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS="${RUNS:-30}"
BIN="${BIN_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

if ! command -v hyperfine >/dev/null; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    say "installing hyperfine"
    $SUDO apt-get install -y hyperfine >/dev/null 2>&1 ||
        { $SUDO apt-get update >/dev/null 2>&1 && $SUDO apt-get install -y hyperfine >/dev/null 2>&1; } ||
        die "cannot install hyperfine"
fi
if [ "${SKIP_BUILD:-0}" != 1 ] && [ -z "${BIN_DIR:-}" ]; then
    say "building the release binaries"
    (cd "$ROOT" && cargo build --release -p orchestra -p demo-service)
fi
[ -x "$BIN/orchestra" ] || die "no $BIN/orchestra"
export PATH="$BIN:$PATH"

TMP="$(mktemp -d /tmp/orchestra-bench-doctor.XXXXXX)"
RUNNING=""
cleanup() {
    [ -n "$RUNNING" ] && (cd "$RUNNING" && orchestra down >/dev/null 2>&1 || true)
    [ "${KEEP:-0}" = 1 ] && echo "kept $TMP" || rm -rf "$TMP"
}
trap cleanup EXIT

measure() { # name dir
    say "$1"
    (cd "$2" && orchestra doctor || true)
    # -i: a failing check exits 1, which is still a measurement.
    (cd "$2" && hyperfine -N -i --warmup 3 --runs "$RUNS" --export-json "$TMP/$1.json" 'orchestra doctor' >/dev/null)
}

# 1 and 2: the demo platform, in a copy so that its .orchestra/ stays out of the tree.
mkdir -p "$TMP/demo"
cp "$ROOT/examples/ai-platform/orchestra.yaml" "$TMP/demo/"
measure demo "$TMP/demo"
(cd "$TMP/demo" && orchestra up -d --timeout 60s >/dev/null)
RUNNING="$TMP/demo"
measure demo-running "$TMP/demo"
(cd "$TMP/demo" && orchestra down >/dev/null)
RUNNING=""

# 3: every check needed.
mkdir -p "$TMP/full"
cp "$ROOT/examples/ai-platform/orchestra.yaml" "$TMP/full/"
python3 - "$TMP/full/orchestra.yaml" <<'EOF'
import sys
p = sys.argv[1]
s = open(p).read()
extra = "  holder:\n    command: [demo-service, --port, \"${PORT}\", --name, holder]\n    secrets: [API_TOKEN]\n"
s = s.replace("services:\n", "services:\n" + extra, 1)
open(p, "w").write(s)
EOF
export ORCHESTRA_AGE_KEY_FILE="$TMP/full/age.key"
printf 'bench-token' | (cd "$TMP/full" && orchestra secrets set API_TOKEN >/dev/null 2>&1)
if [ -n "${DOCKER_HOST:-}" ] && docker info >/dev/null 2>&1; then
    printf '  cache:\n    image: local/busybox:1\n    command: [httpd, -f, -p, "${PORT}"]\n    resources: { memory: 64Mi }\n' > "$TMP/full/cache.yaml"
    python3 - "$TMP/full/orchestra.yaml" "$TMP/full/cache.yaml" <<'EOF'
import sys
p, c = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("services:\n", "services:\n" + open(c).read(), 1)
open(p, "w").write(s)
EOF
    echo "(with a container service: the Docker Engine at $DOCKER_HOST)"
else
    echo "(no Docker Engine at DOCKER_HOST: the full project has no container service)"
fi
# Each pinned at what PATH has: the figure is the time the checks take, not a report of mismatches.
node_v="$(node --version 2>/dev/null | sed 's/^v//' | cut -d. -f1 || true)"
py_v="$(python3 --version 2>/dev/null | awk '{print $2}' | cut -d. -f1,2 || true)"
{
    [ -n "$node_v" ] && echo "nodejs $node_v"
    [ -n "$py_v" ] && echo "python $py_v"
    rustc --version 2>/dev/null | awk '{print "rust " $2}'
} > "$TMP/full/.tool-versions"
measure full "$TMP/full"

say "summary (hyperfine, $RUNS runs each)"
python3 - "$TMP" <<'EOF'
import json, sys
d = sys.argv[1]
print(f"{'project':<14} {'mean':>9} {'median':>9} {'max':>9}")
for name in ["demo", "demo-running", "full"]:
    r = json.load(open(f"{d}/{name}.json"))["results"][0]
    print(f"{name:<14} {r['mean']*1000:>7.1f}ms {r['median']*1000:>7.1f}ms {r['max']*1000:>7.1f}ms")
EOF
