#!/usr/bin/env bash
# Lint throughput and peak RSS on a generated pg_dump-style file full of hazards.
#
#   benches/lint.sh [SIZE_MIB] [RUNS]      (defaults: 1024 MiB, 3 runs)
#
# Generates one tier file of SIZE_MIB in COPY format with every lexer hazard we know:
# `\restrict`/`\unrestrict` lines, COPY blocks (text and CSV) whose rows hold tabs,
# backslashes, `\N`, `\\.`, `;`, quotes, `$$` and `/*`, a CSV field spanning lines,
# columns named `begin`, dollar quotes, E'' strings, comments, multi-action rules,
# BEGIN ATOMIC bodies, ANALYZE. Then times `airlock lint` on it (median of RUNS; lint
# also hashes every byte with SHA-256) and reports MB/s and the peak RSS (GNU time).
# Needs: python3, /usr/bin/time. Target: peak RSS <= 64 MiB whatever the size.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-1024}
RUNS=${2:-3}
W=${BENCH_DIR:-/tmp/airlock-bench-lint}
need /usr/bin/time
airlock_bin
mkdir -p "$W"
cd "$W"

if [ ! -f src/.size-$SIZE ]; then
  rm -rf src && mkdir -p src/sql
  python3 - "$SIZE" <<'PY'
import sys
size = int(sys.argv[1]) << 20
rows_text = "".join(
    "%d\t2020-01-%02d\tx\\ty\\\\z\\nw; COMMIT; $$ /* '\t\\N\t\\\\x00ff\n" % (i, i % 28 + 1)
    + ("%d\t\\N\t\\\\.\tends with a backslash \\\\\t\\\\x\n" % i if i % 50 == 0 else "")
    for i in range(400))
rows_csv = "".join(
    '%d,"a ""quoted""; field",%s,\n' % (i, '"multi\nline; COMMIT"' if i % 40 == 0 else "plain")
    for i in range(100))
block = """CREATE TABLE public.t{k} (
    id integer,
    begin date,
    "end" text,
    note text DEFAULT E'it\\'s; COMMIT',
    payload bytea
);
CREATE TABLE public.c{k} (id integer, a text, b text, c text);
COMMENT ON TABLE public.t{k} IS 'who''s; VACUUM';
CREATE RULE r{k} AS ON UPDATE TO public.t{k} DO ALSO (INSERT INTO public.audit VALUES (1); INSERT INTO public.audit VALUES (2));
CREATE FUNCTION public.f{k}() RETURNS integer LANGUAGE plpgsql AS $_$
BEGIN
  RETURN 1; -- ; COMMIT
END
$_$;
CREATE FUNCTION public.g{k}() RETURNS integer LANGUAGE sql
BEGIN ATOMIC
  SELECT 1;
  SELECT CASE WHEN true THEN 2 END;
END;
/* a block comment; COMMIT /* nested */ */
INSERT INTO public.t{k} (id, begin, note) VALUES (1, '2020-01-01', E'a\\'b;c'), (2, NULL, $q$ x; $$ y $q$);
COPY public.t{k} (id, begin, "end", note, payload) FROM stdin;
{rows_text}\\.
COPY public.c{k} (id, a, b, c) FROM stdin WITH (FORMAT csv);
{rows_csv}\\.
ANALYZE public.t{k};

"""
header = """\\restrict GeneratedKey0123456789abcdefABCDEF
SET statement_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE TABLE public.audit (x integer);
"""
with open("src/sql/dump.sql", "w") as out:
    out.write(header)
    written = len(header)
    k = 0
    while written < size:
        b = block.replace("{k}", str(k)).replace("{rows_text}", rows_text).replace("{rows_csv}", rows_csv)
        out.write(b)
        written += len(b)
        k += 1
    out.write("\\unrestrict GeneratedKey0123456789abcdefABCDEF\n")
with open("src/bundle.toml", "w") as f:
    f.write("""[bundle]
name = "lint-bench"
version = "1"
sequence = 1
description = "generated hazard dump"
transaction = "single"

[target]
database = "bench"
min_server_version = 150000

[[tier]]
name = "data"
files = ["sql/dump.sql"]
gates = []
""")
PY
  touch src/.size-$SIZE
fi

BYTES=$(stat -c %s src/sql/dump.sql)
echo "input: $(( BYTES >> 20 )) MiB, $(wc -l < src/sql/dump.sql) lines"
times=()
cpus=()
rss=0
for i in $(seq "$RUNS"); do
  /usr/bin/time -v -o time.txt "$A" lint -q src >/dev/null
  t=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' time.txt)
  r=$(awk -F': ' '/Maximum resident set size/ {print $2}' time.txt)
  c=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u+s}' time.txt)
  times+=("$t"); cpus+=("$c"); [ "$r" -gt "$rss" ] && rss=$r
done
median=$(printf '%s\n' "${times[@]}" | median)
cpu=$(printf '%s\n' "${cpus[@]}" | median)
echo "airlock lint: median ${median}s wall of ${RUNS} (runs: ${times[*]}), $(awk -v b="$BYTES" -v t="$median" 'BEGIN {printf "%.0f", b/1e6/t}') MB/s; median CPU (user+sys) ${cpu}s, $(awk -v b="$BYTES" -v t="$cpu" 'BEGIN {printf "%.0f", b/1e6/t}') MB/s per CPU second; peak RSS $(( rss / 1024 )) MiB"
echo "(lint hashes every byte with SHA-256 too, and parses every statement that is not plain DML with the build's classifier)"
