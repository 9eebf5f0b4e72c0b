#!/bin/sh
# Apply the migrations in directory $1 (*.sql, in name order) that are not yet
# recorded in schema_migrations, each in its own transaction with its record.
# Connection settings come from PGHOST, PGPORT, PGUSER, PGDATABASE.
set -eu
dir=$1
psql -X -q -v ON_ERROR_STOP=1 -c \
  "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
applied=0
for f in "$dir"/*.sql; do
  [ -e "$f" ] || continue
  v=$(basename "$f" .sql)
  done_already=$(psql -X -At -v ON_ERROR_STOP=1 -c "SELECT 1 FROM schema_migrations WHERE version = '$v'")
  [ -z "$done_already" ] || continue
  psql -X -q -1 -v ON_ERROR_STOP=1 -f "$f" -c "INSERT INTO schema_migrations (version) VALUES ('$v')"
  echo "migrate: applied $v"
  applied=$((applied + 1))
done
echo "migrate: $applied applied, schema at $(psql -X -At -c 'SELECT max(version) FROM schema_migrations')"
