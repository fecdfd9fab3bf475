#!/usr/bin/env bash
# `airlock plan` with its predictions (issue 50), and a build before them side by side:
#
#   kratos     KRATOS_DIR (a checkout's persistence/sql/migrations/sql) imported as
#              `airlock import` makes it (346 migrations, a tier each), planned on an
#              empty database: a first apply, every tier planned and asked about
#   one        benches/scale.sh's one-statement bundle on its 5,000-table database
#              (--tables 5000 --indexes 2 --functions): nothing for predictions to ask
#   decided    a tier deciding something on 10 of those 5,000 tables (SET NOT NULL,
#              ADD UNIQUE, a CHECK, a type change, VALIDATE, DROP TABLE … CASCADE,
#              TRUNCATE, DELETE, DROP COLUMN, a DROP TYPE): every kind of question
#
#   benches/plan.sh [RUNS]          (default 5; BEFORE_BIN=PATH adds the build before)
#
# Rounds interleave the builds (the machine is shared); medians of RUNS. Each `plan`
# is checked to have read no table the release does not name: pg_stat_user_tables'
# scans of every table are read before and after (after a pause for the exited
# backend's statistics to reach the shared counters), and any other table whose
# counters moved is printed as a FAILED row. Creates and drops its own databases.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-5}
airlock_bin
bench_workdir plan
keygen
BUILDS=("$A")
[ -z "${BEFORE_BIN:-}" ] || BUILDS+=("$BEFORE_BIN")

# --- the 5,000-table database (benches/scale.sh builds it, kept) ------------------------
out=$("$ROOT/benches/scale.sh" --tables 5000 --indexes 2 --functions --only gate --runs 1 --keep 2>&1)
SCALE=$(echo "$out" | sed -n 's/^database \([a-z0-9_]*\):.*/\1/p' | head -1)
[ -n "$SCALE" ] || { echo "scale.sh built no database: $out" >&2; exit 1; }
DROP_DBS+=("$SCALE")
echo "$out" | head -1
"${PSQL[@]}" -d "$SCALE" -c "CREATE TYPE spare AS ENUM ('a'); \
  ALTER TABLE small_9 ADD CONSTRAINT small_9_pos CHECK (id > 0) NOT VALID" >/dev/null
gate_role "$SCALE"

bundle_on() { # DIR DATABASE TIER_SQL: a bundle with a gate, a preflight and that tier
  bundle_head "$1" "$1" "$2"
  bundle_absent "$1" airlock_plan_probe
  bundle_gate "$1" g "SELECT true AS ready"
  printf '%s\n' "$3" > "$1/sql/tier.sql"
  bundle_tier "$1" t '"sql/tier.sql"' '"g"'
  bundle_rollback "$1" airlock_plan_probe
  "$A" pack "$1" --key k.key --out "$1.tar.gz" --quiet
  "$A" verify "$1.tar.gz" --trust k.pub --quiet
}
bundle_on one "$SCALE" 'CREATE TABLE airlock_plan_probe (id int);'
bundle_on decided "$SCALE" "ALTER TABLE small_1 ALTER COLUMN v SET NOT NULL;
ALTER TABLE small_2 ADD CONSTRAINT small_2_v UNIQUE (v);
ALTER TABLE small_3 ADD CONSTRAINT small_3_pos CHECK (id > 0);
ALTER TABLE small_4 ALTER COLUMN v TYPE varchar(40);
DROP TABLE small_5 CASCADE;
TRUNCATE small_6;
DELETE FROM small_7 WHERE id > 5;
ALTER TABLE small_8 DROP COLUMN v;
ALTER TABLE small_9 VALIDATE CONSTRAINT small_9_pos;
ALTER TABLE small_10 ADD COLUMN n int NOT NULL DEFAULT 0;
DROP TYPE spare;"
NAMED="small_1 small_2 small_3 small_4 small_5 small_6 small_7 small_8 small_9 small_10"

# --- kratos ----------------------------------------------------------------------------
KDB=airlock_bench_plan_kratos_$$
DROP_DBS+=("$KDB")
create_db "$KDB"
if [ -n "${KRATOS_DIR:-}" ]; then
  "$A" import "$KRATOS_DIR" --out kratos --database "$KDB" --from golang-migrate --quiet >/dev/null
else
  python3 "$ROOT/benches/corpus.py" shaped kratos "$KDB"
fi
"$A" pack kratos --key k.key --out kratos.tar.gz --quiet
"$A" verify kratos.tar.gz --trust k.pub --quiet

scans() { # DB: every user table's scans, one "name seq idx" a line
  q "SELECT relname || ' ' || seq_scan || ' ' || coalesce(idx_scan, 0) FROM pg_stat_user_tables ORDER BY 1" "$1"
}

# plan_ms BUILD BUNDLE DB: its time in ms (out.json: the plan), or FAILED
plan_ms() {
  local s rc=0; s=$(now_ms)
  "$1" --json plan "$2.tar.gz" --trust k.pub --db "dbname=$3" > out.json 2> err.txt || rc=$?
  local e; e=$(now_ms)
  if [ "$rc" -gt 1 ]; then echo "plan failed ($rc): $(head -c 300 err.txt) $(head -c 300 out.json)" >&2; echo FAILED; return; fi
  echo $(( e - s ))
}

declare -A T
for _ in $(seq 1 "$RUNS"); do
  for b in "${!BUILDS[@]}"; do
    for case in "kratos $KDB" "one $SCALE" "decided $SCALE"; do
      set -- $case
      before=$(scans "$2")
      t=$(plan_ms "${BUILDS[$b]}" "$1" "$2")
      T[$b,$1]+="$t "
      sleep 1   # the exited backend's statistics reach the shared counters
      moved=$(diff <(echo "$before") <(scans "$2") | sed -n 's/^> \([^ ]*\) .*/\1/p' || true)
      for m in $moved; do
        case " $NAMED " in *" $m "*) ;; *) echo "| $1 | FAILED: plan read table $m, which the release does not name | | |" ;; esac
      done
    done
  done
done

echo "| bundle | ${BUILDS[0]##*/} (ms) | ${BEFORE_BIN:+before (ms) | ratio |}"
echo "|---|---|${BEFORE_BIN:+---|---|}"
for c in kratos one decided; do
  now=$(printf '%s\n' ${T[0,$c]} | grep -v FAILED | median)
  if [ -n "${BEFORE_BIN:-}" ]; then
    was=$(printf '%s\n' ${T[1,$c]} | grep -v FAILED | median)
    printf '| %s | %s (runs: %s) | %s (runs: %s) | %s |\n' "$c" "$now" "${T[0,$c]% }" "$was" "${T[1,$c]% }" \
      "$(awk -v a="$now" -v b="$was" 'BEGIN { printf "%.2fx", a / b }')"
  else
    printf '| %s | %s (runs: %s) |\n' "$c" "$now" "${T[0,$c]% }"
  fi
done
plan_ms "$A" decided "$SCALE" >/dev/null
echo "(PostgreSQL $(server_version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); this build's plan of decided: $(python3 -c 'import json; p = json.load(open("out.json")); print(p["verdict"], "-", len(p.get("predictions", {}).get("predictions", [])), "predictions,", len(p.get("predictions", {}).get("destroys", [])), "destructions")' 2>/dev/null || echo '?'))"
