#!/bin/sh
# Run Debian's Postgres (not on PATH) on data directory $1, port $2,
# listening on loopback only, with its socket in the data directory.
set -eu
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgres: no Postgres under /usr/lib/postgresql (run setup.sh)" >&2; exit 1; }
# Absolute: the server changes into its data directory before making the socket.
dir=$(cd "$1" && pwd)
exec "$bin/postgres" -D "$dir" -k "$dir" -p "$2" -c listen_addresses=127.0.0.1
