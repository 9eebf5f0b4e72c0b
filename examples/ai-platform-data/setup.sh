#!/bin/sh
# Install what examples/ai-platform-data needs from Debian: redis-server and
# redis-tools, Postgres (server and client tools) and python3-psycopg2 for the
# API. Idempotent: installs only what is missing. Run as root.
set -eu
missing=""
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
command -v redis-cli >/dev/null 2>&1 || missing="$missing redis-tools"
{ command -v pg_isready >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; } || missing="$missing postgresql"
/usr/bin/python3 -c 'import psycopg2' >/dev/null 2>&1 || missing="$missing python3-psycopg2"
if [ -z "$missing" ]; then
  echo "setup: everything is installed"
  exit 0
fi
echo "setup: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086 # one word per package
apt-get install -y -qq $missing || { apt-get update -qq && apt-get install -y -qq $missing; }
# Debian starts the packaged servers as system services: the example runs its own.
for unit in redis-server postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
    systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done
echo "setup: done"
