#!/usr/bin/env bash
# A plain pg_dump (COPY format) of about SIZE_MIB, shipped by airlock vs psql, median of
# RUNS each, interleaved, on the local PostgreSQL:
#
#   apply:  airlock apply (verify + lint re-check + COPY protocol, one transaction)
#           vs  psql -X -1 -f dump.sql          (each into a fresh empty database)
#   pack:   airlock pack  vs  sha256sum + tar czf
#   verify: airlock verify  vs  tar xzf + sha256sum -c
# with each one's peak RSS (GNU time's %M, the largest over the runs).
#
#   benches/copy.sh [SIZE_MIB] [RUNS]      (defaults: 1024, 5)
#   STEPS="apply" benches/copy.sh ...     (only some of: pack verify apply; pack always
#                                          runs once, the others need its bundle)
#
# The dump is pg_dump's own output for a generated table (id, md5 text, int,
# timestamptz, a longer text; primary key added after the data). Creates and drops its
# own databases (airlock_copy_*) and files under BENCH_DIR (default a fresh temp dir,
# removed at the end).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-1024}
RUNS=${2:-5}
airlock_bin
need /usr/bin/time
SRC=airlock_copy_src_$$
DST=airlock_copy_dst_$$
DROP_DBS=("$SRC" "$DST")
bench_workdir copy

# ~140 bytes per row in COPY text.
ROWS=$(( SIZE * 1024 * 1024 / 140 ))
create_db "$SRC"
"${PSQL[@]}" -d "$SRC" -c "CREATE TABLE public.bench_rows AS
  SELECT g AS id, md5(g::text) AS name, g % 1000 AS qty,
         timestamptz '2020-01-01' + g * interval '1 second' AS at,
         md5((g * 7)::text) || E'\\t' || md5((g * 13)::text) AS note
  FROM generate_series(1, $ROWS) g;
  ALTER TABLE public.bench_rows ADD PRIMARY KEY (id);" >/dev/null
bundle_head src copybench "$DST"
bundle_tier src data '"sql/dump.sql"'
pg_dump -d "$SRC" > src/sql/dump.sql
"${PSQL[@]}" -d postgres -c "DROP DATABASE $SRC WITH (FORCE)" >/dev/null
BYTES=$(stat -c %s src/sql/dump.sql)
keygen

fresh() {
  # A recreated database: this host must forget the ledger head it saw in the last
  # one, and apply writes its receipt afresh.
  rm -rf "$AIRLOCK_STATE_DIR" ./*.receipt.json
  "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DST WITH (FORCE)" -c "CREATE DATABASE $DST" >/dev/null 2>&1
}
# measure NAME COMMAND...: append "NAME seconds maxrss_kib" to runs.txt
measure() {
  local name=$1; shift
  sync
  /usr/bin/time -f "$name %e %M" -a -o runs.txt "$@" >/dev/null 2>err.txt || { cat err.txt runs.txt >&2; echo "failed: $*" >&2; exit 1; }
}

STEPS=${STEPS:-pack verify apply}
has() { case " $STEPS " in *" $1 "*) return 0;; *) return 1;; esac; }
has pack || "$A" pack src --key k.key --out b.tar.gz --quiet
for _ in $(seq 1 "$RUNS"); do
  if has pack; then
    rm -f b.tar.gz
    measure "pack:airlock" "$A" pack src --key k.key --out b.tar.gz --quiet
    measure "pack:sha256sum+tar-czf" sh -c '(cd src && find . -type f -print0 | sort -z | xargs -0 sha256sum > ../SUMS) && tar czf shell.tar.gz SUMS src'
  fi
  if has verify; then
    [ -f shell.tar.gz ] || sh -c '(cd src && find . -type f -print0 | sort -z | xargs -0 sha256sum > ../SUMS) && tar czf shell.tar.gz SUMS src'
    measure "verify:airlock" "$A" verify b.tar.gz --trust k.pub --quiet
    measure "verify:tar-xzf+sha256sum-c" sh -c 'rm -rf x && mkdir x && tar xzf shell.tar.gz -C x && cd x/src && sha256sum -c --quiet ../SUMS'
    rm -rf x
  fi
  has apply || continue
  fresh
  # No temp space: the streamed tier must never be spilled (apply fails if it is).
  measure "apply:airlock" env TMPDIR="$W/no-such-dir" "$A" apply b.tar.gz --trust k.pub --db "dbname=$DST" --yes
  fresh
  measure "apply:psql-1-f" "${PSQL[@]}" -1 -d "$DST" -f src/sql/dump.sql
done

rm -f shell.tar.gz
echo "dump: $BYTES bytes ($ROWS rows), bundle: $(stat -c %s b.tar.gz) bytes; PostgreSQL $(server_version); runs: $RUNS (median time, max peak RSS)"
printf '| what | time (s) | peak RSS (MiB) |\n|---|---|---|\n'
for k in $(awk '{print $1}' runs.txt | awk '!seen[$0]++'); do
  t=$(awk -v k="$k" '$1 == k {print $2}' runs.txt | median)
  m=$(awk -v k="$k" '$1 == k && $3 > m {m = $3} END {printf "%.1f", m / 1024}' runs.txt)
  printf '| %s | %s | %s |\n' "$k" "$t" "$m"
done
# airlock apply / psql -1 -f, run by run (interleaved pairs) and of the medians.
if grep -q '^apply:' runs.txt; then
  paste <(awk '$1 == "apply:airlock" {print $2}' runs.txt) <(awk '$1 == "apply:psql-1-f" {print $2}' runs.txt) |
    awk '{r = r sprintf(" %.2f", $1 / $2)} END {print "apply ratio per pair:" r}'
fi
