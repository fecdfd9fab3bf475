#!/usr/bin/env bash
# `airlock plan` of one 10-statement tier (5 predictions, 5 destructions: plan.sh's
# `decided` tier) on a database of 10 tables of ROWS rows, several builds side by side:
# what the one door's proof costs plan, without plan.sh's 5,000-table database.
#
#   benches/plan_door.sh RUNS BUILD...      (ROWS=1000 by default)
#
# Rounds interleave the builds (the machine is shared); each build's median of RUNS
# whole-process wall times, and its ratio to the first build's within each round
# (the paired ratio's median). Creates and drops its own database.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:?RUNS}; shift
BUILDS=("$@")
[ ${#BUILDS[@]} -ge 1 ] || { echo "usage: $0 RUNS BUILD..." >&2; exit 2; }
ROWS=${ROWS:-1000}
A=${BUILDS[0]}
bench_workdir plan-door
keygen
DB=airlock_bench_plan_door_$$
DROP_DBS+=("$DB")
create_db "$DB"
for i in $(seq 1 10); do
  echo "CREATE TABLE small_$i (id int PRIMARY KEY, v text);
        INSERT INTO small_$i SELECT g, 'v' || g FROM generate_series(1, $ROWS) g;"
done | "${PSQL[@]}" -d "$DB"
"${PSQL[@]}" -d "$DB" -c "CREATE TYPE spare AS ENUM ('a'); \
  ALTER TABLE small_9 ADD CONSTRAINT small_9_pos CHECK (id > 0) NOT VALID; ANALYZE" >/dev/null
gate_role "$DB"
bundle_head decided decided "$DB"
bundle_absent decided airlock_plan_probe
bundle_gate decided g "SELECT true AS ready"
printf '%s\n' "ALTER TABLE small_1 ALTER COLUMN v SET NOT NULL;
ALTER TABLE small_2 ADD CONSTRAINT small_2_v UNIQUE (v);
ALTER TABLE small_3 ADD CONSTRAINT small_3_pos CHECK (id > 0);
ALTER TABLE small_4 ALTER COLUMN v TYPE varchar(40);
DROP TABLE small_5 CASCADE;
TRUNCATE small_6;
DELETE FROM small_7 WHERE id > 5;
ALTER TABLE small_8 DROP COLUMN v;
ALTER TABLE small_9 VALIDATE CONSTRAINT small_9_pos;
ALTER TABLE small_10 ADD COLUMN n int NOT NULL DEFAULT 0;
DROP TYPE spare;" > decided/sql/tier.sql
bundle_tier decided t '"sql/tier.sql"' '"g"'
bundle_rollback decided airlock_plan_probe
"$A" pack decided --key k.key --out decided.tar.gz --quiet

plan_ms() { # BUILD: its time in ms (out-N.json: the plan), or FAILED
  local s rc=0; s=$(now_ms)
  "$1" --json plan decided.tar.gz --trust k.pub --db "dbname=$DB" > out.json 2> err.txt || rc=$?
  local e; e=$(now_ms)
  if [ "$rc" -gt 1 ]; then echo "plan failed ($rc): $(head -c 300 err.txt) $(head -c 300 out.json)" >&2; echo FAILED; return; fi
  echo $(( e - s ))
}
declare -A T R
for b in "${!BUILDS[@]}"; do plan_ms "${BUILDS[$b]}" >/dev/null; done   # warm up
for _ in $(seq 1 "$RUNS"); do
  declare -A now=()
  for b in "${!BUILDS[@]}"; do
    now[$b]=$(plan_ms "${BUILDS[$b]}")
    T[$b]+="${now[$b]} "
  done
  for b in "${!BUILDS[@]}"; do
    R[$b]+="$(awk -v a="${now[$b]}" -v f="${now[0]}" 'BEGIN { printf "%.3f", a / f }') "
  done
done
echo "| build | median (ms) | paired ratio to ${BUILDS[0]} (median) | runs (ms) |"
echo "|---|---|---|---|"
for b in "${!BUILDS[@]}"; do
  printf '| %s | %s | %s | %s |\n' "${BUILDS[$b]}" "$(printf '%s\n' ${T[$b]} | median)" \
    "$(printf '%s\n' ${R[$b]} | median)" "${T[$b]% }"
done
echo "(PostgreSQL $(server_version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $ROWS rows a table; last plan: $(python3 -c 'import json; p = json.load(open("out.json")); print(p["verdict"], "-", len(p.get("predictions", {}).get("predictions", [])), "predictions,", len(p.get("predictions", {}).get("destroys", [])), "destructions")' 2>/dev/null || echo '?'))"
