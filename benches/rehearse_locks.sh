#!/usr/bin/env bash
# The rehearse lock report at scale (issue 24, second target): does the SHARE lock
# `airlock rehearse` reports for a plain CREATE INDEX tier match the build's real
# duration on a large table?
#
#   benches/rehearse_locks.sh [--rows R] [--runs K]
#
# Runs on a private cluster whose data directory (WAL included) is in RAM (/dev/shm,
# tmpfs), started as the postgres user on a Unix socket of its own: nothing is written
# on the shared server or its disk. One table app.t (id int8, a int4) of R rows
# (default 10,000,000); the bundle's only tier is a plain `CREATE INDEX t_a ON app.t
# (a)` followed by `ANALYZE app.small` in the same transaction. Then, interleaved K
# times (default 2):
#
#   psql       the same CREATE INDEX, `\timing`, on a copy of the database (CREATE
#              DATABASE … TEMPLATE, then a CHECKPOINT), dropped after
#   rehearse   `airlock rehearse --json`: the lock report's held_ms and statement_ms
#              for the SHARE lock on app.t
#
# and prints each run and the ratio of the medians, held / psql. The cluster is
# stopped and removed at exit.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROWS=10000000 RUNS=2
while [ $# -gt 0 ]; do
  case $1 in
    --rows) ROWS=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
need jq runuser
airlock_bin
bench_workdir locks
ram_cluster 5499
SHM=$RAM_DIR PORT=5499
CONN="host=$SHM port=$PORT user=postgres dbname=bench"
"${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
t0=$(now_ms)
"${PSQL[@]}" -d bench -c "CREATE SCHEMA app; CREATE TABLE app.t (id int8, a int4); \
  INSERT INTO app.t SELECT g, ((g::int8 * 7919) % 1000003)::int4 FROM generate_series(1, $ROWS) g; \
  CREATE TABLE app.small (i int)" -c "VACUUM ANALYZE app.t" -c "CHECKPOINT"
echo "built app.t: $ROWS rows, $(q "SELECT pg_size_pretty(pg_total_relation_size('app.t'))" bench) in $(( ($(now_ms) - t0) / 1000 )) s"

keygen
S=src; bundle_head $S locks bench
echo "SELECT 'idx'::text AS key, count(*)::text AS value FROM pg_indexes WHERE indexname = 't_a'" > $S/sql/probe.sql
printf '\n[preflight]\nfile = "sql/probe.sql"\nexpect = { idx = "0" }\n' >> $S/bundle.toml
printf 'CREATE INDEX t_a ON app.t (a);\nANALYZE app.small;\n' > $S/sql/index.sql
bundle_tier $S index '"sql/index.sql"'
echo "DROP INDEX app.t_a;" > $S/sql/rollback.sql
printf '\n[rollback]\nfiles = ["sql/rollback.sql"]\n' >> $S/bundle.toml
"$A" pack $S --key k.key --out b.tar.gz >/dev/null

: > psql.ms; : > held.ms; : > stmt.ms
for i in $(seq "$RUNS"); do
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench_copy TEMPLATE bench"
  "${PSQL[@]}" -d bench_copy -c "CHECKPOINT"
  ms=$(psql -X -d bench_copy -c '\timing on' -c 'CREATE INDEX t_a ON app.t (a)' | awk '/^Time:/ {print $2}')
  "${PSQL[@]}" -d postgres -c "DROP DATABASE bench_copy"
  echo "$ms" >> psql.ms
  "$A" --json rehearse b.tar.gz --trust k.pub --db "$CONN" > r.json || { jq . r.json; exit 1; }
  lock=$(jq -c '.lock_impact.locks[] | select(.relation == "app.t" and .mode == "SHARE")' r.json)
  [ -n "$lock" ] || { echo "no SHARE lock on app.t in the report"; jq . r.json; exit 1; }
  echo "$lock" | jq -r .held_ms >> held.ms
  echo "$lock" | jq -r .statement_ms >> stmt.ms
  echo "run $i: psql CREATE INDEX ${ms} ms; rehearse: statement $(tail -1 stmt.ms) ms, SHARE held $(tail -1 held.ms) ms (until COMMIT); rehearse took $(jq '[.steps[].duration_ms] | add' r.json) ms in all"
done
p=$(median < psql.ms) h=$(median < held.ms) s=$(median < stmt.ms)
echo "median: psql ${p} ms, rehearse statement ${s} ms, held ${h} ms; held / psql = $(awk -v h="$h" -v p="$p" 'BEGIN {printf "%.3f", h / p}')"
