#!/usr/bin/env bash
# `airlock import` of a Liquibase changelog against Liquibase itself (issue 76).
#
#   benches/import_liquibase.sh DIR MASTER [RUNS]      (RUNS defaults to 5)
#
# DIR holds the changelog, MASTER its root file (relative to DIR). Each run, in turn:
#   import      airlock import DIR --fresh-on (preconditions decided on a throwaway
#               database import makes and drops; the bundle source written)
#   update-sql  liquibase update-sql on a fresh database (Liquibase writes the SQL)
#   update      liquibase update on a fresh database (Liquibase runs it)
# and prints each one's median wall time in ms, with the load average before. The
# Liquibase launcher is scripts/liquibase-npm's (Java from scripts/test-deps); the
# server is libpq's default (PGHOST/PGPORT), login `root` as the tests use.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SRC=$(realpath "$1")
MASTER=$2
RUNS=${3:-5}
airlock_bin
LB=$("$ROOT/scripts/liquibase-npm")
bench_workdir import-liquibase
server="host=${PGHOST:-/var/run/postgresql} port=${PGPORT:-5432} user=${PGUSER:-root} dbname=postgres"
jdbc="jdbc:postgresql://127.0.0.1:${PGPORT:-5432}"

lb() { (cd "$SRC" && "$LB" --show-banner=false --changelog-file="$MASTER" --url="$jdbc/$1" --username="${PGUSER:-root}" "${@:2}" >/dev/null); }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
: > import.ms; : > update-sql.ms; : > update.ms
for i in $(seq "$RUNS"); do
  rm -rf out
  t=$(now_ms); "$A" import "$SRC" --out out --database bench --fresh-on "$server" >/dev/null; echo $(( $(now_ms) - t )) >> import.ms
  db=lbq_$$_$i; create_db "$db"; DROP_DBS+=("$db")
  t=$(now_ms); lb "$db" update-sql; echo $(( $(now_ms) - t )) >> update-sql.ms
  db=lbu_$$_$i; create_db "$db"; DROP_DBS+=("$db")
  t=$(now_ms); lb "$db" update; echo $(( $(now_ms) - t )) >> update.ms
done
for what in import update-sql update; do
  printf '%-11s median %s ms of %s runs (%s)\n' "$what" "$(median < "$what.ms")" "$RUNS" "$(tr '\n' ' ' < "$what.ms")"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
