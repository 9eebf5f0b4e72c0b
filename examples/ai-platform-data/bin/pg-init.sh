#!/bin/sh
# Make the Postgres data directory ($1) the first time: owned by the postgres
# user (the server refuses to run as root), initialised by initdb. Does nothing
# when the directory already holds a cluster.
set -eu
dir=$1
if [ -s "$dir/PG_VERSION" ]; then
  echo "pg-init: $dir already initialised"
  exit 0
fi
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "pg-init: no Postgres under /usr/lib/postgresql (run setup.sh)" >&2; exit 1; }
mkdir -p "$dir"
chmod 700 "$dir"
if [ "$(id -u)" = 0 ]; then
  chown postgres:postgres "$dir"
  # Local connections only, trusted: the server listens on 127.0.0.1.
  runuser -u postgres -- "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
else
  "$bin/initdb" -D "$dir" -A trust -U postgres >/dev/null
fi
echo "pg-init: initialised $dir"
