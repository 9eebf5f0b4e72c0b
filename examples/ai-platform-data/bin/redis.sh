#!/bin/sh
# Run redis-server on port $2 with its data directory $1 (made if missing),
# on loopback only; snapshots are taken by `orchestra backup`, not by Redis.
set -eu
mkdir -p "$1"
exec redis-server --port "$2" --bind 127.0.0.1 --dir "$1" --save "" --appendonly no
