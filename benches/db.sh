#!/usr/bin/env bash
# Database-side timings of airlock on the local PostgreSQL (libpq environment, or the
# Unix socket), median of RUNS each, side by side with what people use today:
#
#   gate         process start to exit, one simple gate    vs  psql -c the same query
#   apply        a bundle of N statements                   vs  psql -1 -f the same files
#   rehearse     the reference bundle on its greenfield fixture (clone, apply, re-apply
#                refused, rollback, fingerprints, drop)
#   fingerprint  schema / --rows / --data, on a table of ROWS rows
#
#   benches/db.sh [RUNS] [STATEMENTS] [ROWS]      (defaults: 5, 10000, 1000000)
#
# Creates and drops its own databases (airlock_bench_*); touches nothing else.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${1:-5}
N=${2:-10000}
ROWS=${3:-1000000}
airlock_bin
DB=airlock_bench_$$
DBR=airlock_bench_ref_$$
DROP_DBS=("$DB" "$DBR")
bench_workdir db
create_db "$DB"
gate_role "$DB"
keygen

# time_ms LABEL REPEAT SETUP COMMAND... : median wall time of COMMAND (after SETUP each time)
time_ms() {
  local label=$1 repeat=$2 setup=$3; shift 3
  local ts=()
  for _ in $(seq 1 "$repeat"); do
    eval "$setup"
    local s; s=$(now_ms); "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    ts+=($(( $(now_ms) - s )))
  done
  printf '%s\t%s\n' "$label" "$(printf '%s\n' "${ts[@]}" | median)"
}

# --- gate ---------------------------------------------------------------------------
bundle_head g gatebench "$DB"
bundle_gate g g "SELECT true AS ready, 'bench' AS reason"
echo 'SELECT 1;' > g/sql/t.sql
bundle_tier g t '"sql/t.sql"' '"g"'
"$A" pack g --key k.key --out g.tar.gz --quiet

# --- apply N statements -------------------------------------------------------------
bundle_head a applybench "$DB"
echo 'CREATE TABLE bench_items (id int PRIMARY KEY, name text NOT NULL, qty int NOT NULL);' > a/sql/01_table.sql
awk -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) printf "INSERT INTO bench_items VALUES (%d, %c%s-%d%c, %d);\n", i, 39, "item", i % 977, 39, i * 7 % 1000 }' > a/sql/02_rows.sql
bundle_absent a bench_items
bundle_tier a table '"sql/01_table.sql"'
bundle_tier a rows '"sql/02_rows.sql"'
bundle_rollback a bench_items
"$A" pack a --key k.key --out a.tar.gz --quiet

# --- rehearse: the reference bundle on its fixture ------------------------------------
create_db "$DBR"
"${PSQL[@]}" -d "$DBR" -f "$ROOT/bundle/one-roof-fixture/01_greenfield.sql" >/dev/null
"${PSQL[@]}" -d "$DBR" -f "$ROOT/bundle/one-roof-fixture/approve.sql" >/dev/null
cp -r "$ROOT/bundle/one-roof" ref
sed -i "s/^database = \"directus\"/database = \"$DBR\"/" ref/bundle.toml
"$A" pack ref --key k.key --out ref.tar.gz --quiet
# Its [ratification] threshold = 2: two throw-away approver keys sign it, so the
# rehearsal judges the gate READY (not assumed).
mkdir -p tr approvals && cp k.pub tr/
for ap in ap1 ap2; do
  "$A" keygen --out "$ap" --unencrypted --quiet
  cp "$ap.pub" tr/
  printf '[keys.%s]\nrole = "approver"\n' "$(sed -n 's/.* public key //p' "$ap.pub")" >> tr/trust.toml
  "$A" approve ref.tar.gz --trust tr --key "$ap.key" --param ratified_apr=APR-BOOT-AUTHMODEL-1 \
    --out "approvals/$ap.approval" --yes --quiet
done
# Its gates read governance.*, its probe the schema its tiers create: the grants
# `airlock plan` derives, and the default ones for what the tiers create.
gate_role "$DBR"
"${PSQL[@]}" -d "$DBR" -c "ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO airlock_gate" >/dev/null
{ "$A" plan ref.tar.gz --trust k.pub --db "dbname=$DBR" --param ratified_apr=APR-BOOT-AUTHMODEL-1 || true; } |
  grep '^  GRANT ' | "${PSQL[@]}" -d "$DBR" >/dev/null

# --- fingerprint table ----------------------------------------------------------------
"${PSQL[@]}" -d "$DB" -c "CREATE TABLE fp_rows AS SELECT g AS id, md5(g::text) AS payload, g % 1000 AS bucket FROM generate_series(1, $ROWS) g; ALTER TABLE fp_rows ADD PRIMARY KEY (id); ANALYZE fp_rows;" >/dev/null

{
  time_ms "gate: airlock gate (READY)" $((RUNS * 4)) : "$A" gate g.tar.gz --trust k.pub --db "dbname=$DB" --quiet
  time_ms "gate: psql -c (same query)" $((RUNS * 4)) : "${PSQL[@]}" -d "$DB" -c "SELECT true AS ready, 'bench' AS reason"
  time_ms "apply: airlock apply ($N statements)" "$RUNS" \
    "\"$A\" rollback a.tar.gz --trust k.pub --db dbname=$DB --quiet >/dev/null" \
    "$A" apply a.tar.gz --trust k.pub --db "dbname=$DB" --quiet
  "$A" rollback a.tar.gz --trust k.pub --db "dbname=$DB" --quiet >/dev/null
  time_ms "apply: psql -1 -f (same files)" "$RUNS" \
    "\"${PSQL[0]}\" -X -q -d $DB -c 'DROP TABLE IF EXISTS bench_items' >/dev/null 2>&1" \
    "${PSQL[@]}" -1 -d "$DB" -f a/sql/01_table.sql -f a/sql/02_rows.sql
  time_ms "rehearse: reference bundle" "$RUNS" : \
    "$A" rehearse ref.tar.gz --trust tr --db "dbname=$DBR" --param ratified_apr=APR-BOOT-AUTHMODEL-1 --approval approvals --quiet
  time_ms "fingerprint: schema" "$RUNS" : "$A" fingerprint --db "dbname=$DB" --quiet
  time_ms "fingerprint: --rows ($ROWS rows)" "$RUNS" : "$A" fingerprint --db "dbname=$DB" --rows --quiet
  time_ms "fingerprint: --data ($ROWS rows)" "$RUNS" : "$A" fingerprint --db "dbname=$DB" --data --quiet
} | tee results.tsv >/dev/null

echo "PostgreSQL $(server_version); runs: $RUNS (median; gate x4)"
awk -F'\t' '
  { t[$1]=$2; order[NR]=$1 }
  END {
    printf "| what | time (ms) | ratio |\n|---|---|---|\n";
    for (i=1;i<=NR;i++) { k=order[i]; r="";
      if (k ~ /^gate: airlock/) r=sprintf("%.2fx psql", t[k]/t["gate: psql -c (same query)"]);
      if (k ~ /^apply: airlock/) for (j in t) if (j ~ /^apply: psql/) r=sprintf("%.2fx psql -1 -f", t[k]/t[j]);
      printf "| %s | %s | %s |\n", k, t[k], r }
  }' results.tsv
