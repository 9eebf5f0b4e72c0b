#!/usr/bin/env bash
# Run every check and test of the project: formatting, clippy, and the whole
# test suite (unit tests and end-to-end tests that start real processes).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The container tests need a Docker Engine: start one (installed from Debian
# if needed, with the local/busybox:1 base image) unless DOCKER_HOST already
# names one. Without an Engine those tests fail, saying so.
if [ -z "${DOCKER_HOST:-}" ] && [ "${ORCHESTRA_SKIP_DOCKER_TESTS:-}" != 1 ]; then
  DOCKER_HOST="unix://$(bash scripts/docker.sh)"
  export DOCKER_HOST
fi

# The secrets tests check interoperability with the `age` CLI, the proxy's
# conformance tests compare its answers with nginx's, the backup tests run
# redis and Postgres, and the metrics test runs `promtool check metrics` on
# /metrics: install Debian's `age`, `nginx`, `redis-server`, `redis-tools`,
# `postgresql`, `prometheus` and `docker-compose` where missing (without them those tests fail
# under CI=true and are compiled as ignored otherwise).
missing=()
command -v age >/dev/null 2>&1 || missing+=(age)
{ [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1; } || missing+=(nginx)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The import's differential test compares with `docker-compose config` (Debian's 1.29.2).
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# The backup tests run real redis and Postgres servers as services.
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
{ command -v pg_dump >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; } || missing+=(postgresql)
# The data example's API uses Debian's psycopg2 with Debian's python3.
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || missing+=(python3-psycopg2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test.sh: installing ${missing[*]} (Debian)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq "${missing[@]}" >&2 || { apt-get update -qq >&2 && apt-get install -y -qq "${missing[@]}" >&2; }
fi

# The export tests validate the Kubernetes files they render against the published
# schemas (1.30 to 1.35): install kubernetes-validate from PyPI where missing (without it
# those tests fail under CI=true and are compiled as ignored otherwise).
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  echo "test.sh: installing kubernetes-validate (PyPI)" >&2
  python3 -m pip install -q kubernetes-validate >&2
fi

# The end-to-end tests need the workspace's binaries (orchestra, demo-service).
cargo build --workspace --all-targets
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
  cargo test --workspace --doc
else
  cargo test --workspace --no-fail-fast
fi
# The project audits itself: no finding of high severity or worse.
target/debug/orchestra audit .
