#!/usr/bin/env bash
# `airlock plan`'s predictions on a big table (issue 77, part 1), each against the raw
# question's time (`psql`, the same grouped query the full question asks):
#
#   mcv      a key 1,000 times (every 5,000th row), pg_stats listing it (SET
#            STATISTICS 1000): a certain NO-GO from the statistics
#   sample   the same key at the default statistics target, pg_stats not listing it
#            (ANALYZE again until it does not): a NO-GO found in a sample
#   pair     a single hidden pair (the first row and the last): cut short at the
#            default --predict-timeout (5s), with the estimate; then with a timeout
#            long enough, answered (NO-GO)
#   clean    no duplicate: cut short at 5s; then answered (passes)
#   check, fk, smallint, varchar
#            a new CHECK (wide < 50000), FOREIGN KEY (ref) to a 1,000-row parent, type
#            change of `wide` to smallint, of `t` to varchar(10): every 5,000th row
#            breaks each (100000, 9999, an 18-character text), pg_stats (SET STATISTICS
#            1000) naming the value: a certain NO-GO from the statistics
#   check-clean, fk-clean   the same kinds no row breaks: the full question answers
#   check-lone, fk-lone, smallint-lone
#            a single row (the last) breaking a CHECK, a foreign key, a type change, on
#            columns of their own (lone, lref) that pg_stats cannot name: answered by
#            the full question, or cut short saying how long it would take
#
# KINDS=new runs only the last nine cases (and their raw questions).
#
#   benches/plan_scale.sh [ROWS] [RUNS]     (defaults 5000000 and 3; AIRLOCK_BIN=PATH)
#
# LONG=300s is the --predict-timeout of the runs that let the full question finish
# (LONG=none skips them); RAW="k pair clean" the columns whose raw question is timed
# (the clean one's is the pair's, give or take).
#
# Medians of RUNS, wall time of the whole `plan` process; the raw question once per
# run as well. Creates and drops its own database.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ROWS=${1:-5000000}
RUNS=${2:-3}
LONG=${LONG:-300s}
airlock_bin
bench_workdir plan_scale
keygen
DB=airlock_bench_plan_scale_$$
DROP_DBS+=("$DB")
create_db "$DB"
s=$(now_ms)
"${PSQL[@]}" -d "$DB" -c "CREATE TABLE parent (id int PRIMARY KEY)" -c "INSERT INTO parent SELECT generate_series(1, 1000)"
# KINDS=new: two more columns, each with a single row (the last) that breaks a CHECK, a
# foreign key and a type change, which the statistics cannot name.
LONE_COLS="" LONE_VALS=""
if [ "${KINDS:-all}" = new ]; then
  LONE_COLS=", lone int, lref int"
  LONE_VALS=", CASE WHEN g = $ROWS THEN 100000 ELSE g % 30000 END, CASE WHEN g = $ROWS THEN 9999 ELSE g % 1000 + 1 END"
fi
"${PSQL[@]}" -d "$DB" -c "CREATE TABLE big (id int, k text, pair text, clean text, wide int, ref int, t text$LONE_COLS) WITH (autovacuum_enabled = false)"
"${PSQL[@]}" -d "$DB" -c "INSERT INTO big SELECT g, CASE WHEN g % 5000 = 0 THEN 'spread-key' ELSE 'k' || g END, \
  CASE WHEN g = $ROWS THEN 'p1' ELSE 'p' || g END, 'c' || g, CASE WHEN g % 5000 = 0 THEN 100000 ELSE g % 30000 END, \
  CASE WHEN g % 5000 = 0 THEN 9999 ELSE g % 1000 + 1 END, CASE WHEN g % 5000 = 0 THEN 'a-much-longer-text' ELSE 'short' END \
  $LONE_VALS FROM generate_series(1, $ROWS) g"
echo "$ROWS rows made in $(( $(now_ms) - s )) ms ($(q "SELECT pg_size_pretty(pg_table_size('big'))" "$DB"))"
listed() { q "SELECT coalesce('spread-key' = ANY (most_common_vals::text::text[]), false) FROM pg_stats WHERE tablename = 'big' AND attname = 'k' UNION ALL SELECT false LIMIT 1" "$DB"; }
tries=0
while :; do
  q "ANALYZE big" "$DB" >/dev/null; tries=$((tries + 1))
  [ "$(listed)" = f ] && break
  [ "$tries" -lt 30 ] || { echo "pg_stats lists the key after $tries ANALYZEs" >&2; exit 1; }
done
echo "default statistics target: pg_stats does not list the key after $tries ANALYZE(s)"

bundle_on() { # NAME SQL
  bundle_head "$1" "$1" "$DB"
  bundle_absent "$1" airlock_plan_probe
  bundle_gate "$1" g "SELECT true AS ready"
  printf '%s\n' "$2" > "$1/sql/tier.sql"
  bundle_tier "$1" t '"sql/tier.sql"' '"g"'
  bundle_rollback "$1" airlock_plan_probe
  "$A" pack "$1" --key k.key --out "$1.tar.gz" --quiet
}
bundle_on k "CREATE UNIQUE INDEX big_k ON big (k);"
bundle_on pair "CREATE UNIQUE INDEX big_pair ON big (pair);"
bundle_on clean "CREATE UNIQUE INDEX big_clean ON big (clean);"
bundle_on check "ALTER TABLE big ADD CONSTRAINT big_wide CHECK (wide < 50000);"
bundle_on fk "ALTER TABLE big ADD CONSTRAINT big_ref FOREIGN KEY (ref) REFERENCES parent (id);"
bundle_on smallint "ALTER TABLE big ALTER COLUMN wide TYPE smallint;"
bundle_on varchar "ALTER TABLE big ALTER COLUMN t TYPE varchar(10);"
bundle_on check-clean "ALTER TABLE big ADD CONSTRAINT big_pos CHECK (wide >= 0);"
bundle_on fk-clean "ALTER TABLE big ADD CONSTRAINT big_ref FOREIGN KEY (ref) REFERENCES parent (id);"
bundle_on check-lone "ALTER TABLE big ADD CONSTRAINT big_lone CHECK (lone < 50000);"
bundle_on fk-lone "ALTER TABLE big ADD CONSTRAINT big_lref FOREIGN KEY (lref) REFERENCES parent (id);"
bundle_on smallint-lone "ALTER TABLE big ALTER COLUMN lone TYPE smallint;"

# plan_ms BUNDLE [ARGS…]: its time in ms, its exit and outcome (out.json: the plan)
plan_ms() {
  local s rc=0 b=$1; shift; s=$(now_ms)
  "$A" --json plan "$b.tar.gz" --trust k.pub --db "dbname=$DB" "$@" > out.json 2> err.txt || rc=$?
  local e; e=$(now_ms)
  local o; o=$(python3 -c 'import json; p = json.load(open("out.json"))["predictions"]["predictions"][0]; f = p.get("full_question"); print(p["outcome"] + (" est=%ss,suggest=%s" % (f["estimated_seconds"], f["suggested_predict_timeout"]) if f else ""))' 2>/dev/null || echo '?')
  echo "$(( e - s )) exit=$rc ${o// /_}"
}
raw_ms() { # COLUMN: the grouped question's time in psql (\timing)
  timed "SELECT k, n FROM (SELECT pg_catalog.format('%s', $1) AS k, count(*) AS n FROM big WHERE $1 IS NOT NULL GROUP BY $1 HAVING count(*) > 1) d ORDER BY n DESC LIMIT 5"
}
timed() { # SQL: its time in psql (\timing), in ms
  psql -X -At -d "$DB" -c '\timing on' -c "$1" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
# The full questions of the new kinds as plan asks them (the rows, counted).
keyed_raw() { timed "SELECT k, count(*) OVER () FROM (SELECT pg_catalog.format('%s', ctid) FROM big c WHERE $1) q(k) LIMIT 5"; }
declare -A RAWQ=([check]="NOT (wide < 50000)" [check-clean]="NOT (wide >= 0)" [smallint]="wide < -32768 OR wide > 32767" \
  [varchar]="char_length(t) > 10" [fk]="ref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM parent p WHERE p.id = c.ref)")
RAWQ[fk-clean]=${RAWQ[fk]}
RAWQ[check-lone]="NOT (lone < 50000)" RAWQ[smallint-lone]="lone < -32768 OR lone > 32767"
RAWQ[fk-lone]="lref IS NOT NULL AND NOT EXISTS (SELECT 1 FROM parent p WHERE p.id = c.lref)"

declare -A T
run_cases() { # CASE…, each "label bundle [args…]"
  local cases=("$@") c w
  for _ in $(seq 1 "$RUNS"); do
    for c in "${cases[@]}"; do
      read -r -a w <<< "$c"
      T[${w[0]}]+="$(plan_ms "${w[@]:1}" | tr ' ' ':') "
    done
  done
}
declare -A R
if [ "${KINDS:-all}" = new ]; then
  "${PSQL[@]}" -d "$DB" -c "UPDATE big SET ref = 1 WHERE ref = 9999" -c "ALTER TABLE big ALTER COLUMN wide SET STATISTICS 1000" \
    -c "ALTER TABLE big ALTER COLUMN t SET STATISTICS 1000" -c "ALTER TABLE big ALTER COLUMN ref SET STATISTICS 1000" -c "VACUUM ANALYZE big" >/dev/null
  # fk-clean first (no 9999 left), then 9999 back for fk.
  run_cases "fk-clean fk-clean" "check-clean check-clean"
  for _ in $(seq 1 "$RUNS"); do R[fk-clean]+="$(keyed_raw "${RAWQ[fk-clean]}") "; R[check-clean]+="$(keyed_raw "${RAWQ[check-clean]}") "; done
  "${PSQL[@]}" -d "$DB" -c "UPDATE big SET ref = 9999 WHERE id % 5000 = 0" -c "VACUUM ANALYZE big" >/dev/null
  run_cases "check check" "fk fk" "smallint smallint" "varchar varchar" "check-lone check-lone" "fk-lone fk-lone" \
    "smallint-lone smallint-lone"
  for c in check fk smallint varchar check-lone fk-lone smallint-lone; do
    for _ in $(seq 1 "$RUNS"); do R[$c]+="$(keyed_raw "${RAWQ[$c]}") "; done
  done
  echo "| case | plan (ms, median of $RUNS) | runs (ms:exit:outcome) | raw question (ms, median) |"
  echo "|---|---|---|---|"
  for c in check fk smallint varchar check-lone fk-lone smallint-lone check-clean fk-clean; do
    printf '| %s | %s | %s | %s |\n' "$c" "$(printf '%s\n' ${T[$c]} | cut -d: -f1 | median)" "${T[$c]% }" "$(printf '%s\n' ${R[$c]} | median)"
  done
  echo "(PostgreSQL $(server_version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $ROWS rows, $A)"
  exit 0
fi
CASES=("sample k" "pair pair" "clean clean")
[ "$LONG" = none ] || CASES+=("pair-long pair --predict-timeout $LONG" "clean-long clean --predict-timeout $LONG")
run_cases "${CASES[@]}"
RAW=${RAW:-k pair clean}
R_K=""; R_PAIR=""; R_CLEAN=""
for _ in $(seq 1 "$RUNS"); do
  case " $RAW " in *" k "*) R_K+="$(raw_ms k) " ;; esac
  case " $RAW " in *" pair "*) R_PAIR+="$(raw_ms pair) " ;; esac
  case " $RAW " in *" clean "*) R_CLEAN+="$(raw_ms clean) " ;; esac
done
"${PSQL[@]}" -d "$DB" -c "ALTER TABLE big ALTER COLUMN k SET STATISTICS 1000" -c "ANALYZE big"
echo "SET STATISTICS 1000: pg_stats lists the key: $(listed)"
run_cases "mcv k"

med() { printf '%s\n' $1 | cut -d: -f1 | median; }
echo "| case | plan (ms, median of $RUNS) | runs (ms:exit:outcome) | raw question (ms, median) |"
echo "|---|---|---|---|"
for c in mcv sample pair pair-long clean clean-long; do
  [ -n "${T[$c]:-}" ] || continue
  case $c in mcv|sample) raw=$R_K ;; pair*) raw=$R_PAIR ;; clean*) raw=$R_CLEAN ;; esac
  printf '| %s | %s | %s | %s |\n' "$c" "$(med "${T[$c]}")" "${T[$c]% }" "$(printf '%s\n' $raw | median)"
done
echo "(PostgreSQL $(server_version), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $ROWS rows, $A)"
