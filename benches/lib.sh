# Helpers shared by the bench scripts; each sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#
# Sets ROOT (the checkout) and PSQL (psql that stops at the first error, quietly);
# the functions below build the binary, make a throw-away work directory and
# databases, keys and bundles, and take medians.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

# airlock_bin [CARGO_FLAGS...]: sets A to the binary under test. AIRLOCK_BIN compares
# another build (e.g. the previous release) on the same machine; otherwise the release
# build of this checkout (in CARGO_TARGET_DIR when set), built when missing.
airlock_bin() {
  A="${AIRLOCK_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/airlock}"
  [ -x "$A" ] || (cd "$ROOT" && cargo build --release --quiet "$@")
}

# need TOOL...: stop when a tool is missing.
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "missing $t (apt-get install minisign pigz time)"; exit 1; }
  done
}

# median: the median of the numbers on stdin, one a line (the mean of the middle two
# when their count is even).
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# q SQL [DB]: one query's unaligned output (DB defaults to postgres).
q() { psql -X -At -d "${2:-postgres}" -c "$1"; }
server_version() { q 'SHOW server_version'; }
create_db() { "${PSQL[@]}" -d postgres -c "CREATE DATABASE $1" >/dev/null; }
drop_db() {
  local d
  for d in "$@"; do "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done
}

# bench_workdir NAME: a fresh directory W under BENCH_DIR (default /tmp), entered; what
# airlock remembers of ledgers stays in it. At exit the databases named in DROP_DBS
# are dropped and W removed.
DROP_DBS=()
bench_workdir() {
  W=$(mktemp -d "${BENCH_DIR:-/tmp}/airlock-$1-XXXXXX")
  trap 'drop_db "${DROP_DBS[@]}"; ${RAM_STOP:-true}; rm -rf "$W"' EXIT
  cd "$W"
  export AIRLOCK_STATE_DIR="$W/state"
}

# ram_cluster [PORT]: after bench_workdir, a private PostgreSQL cluster whose data
# directory (WAL included) is in RAM (/dev/shm), started and made the libpq default
# (PGHOST, PGPORT, PGUSER) for the rest of the script, stopped and removed at exit.
# On a shared machine the disk's own stalls (creating relation files, the kernel's
# writeback) move a run by more than a fixed cost of ~0.1 s; in RAM they do not.
ram_cluster() {
  need runuser
  local bin port=${1:-5497}
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  RAM_DIR=$(mktemp -d /dev/shm/airlock-bench-XXXXXX)
  chown postgres: "$RAM_DIR"
  RAM_PG() { (cd / && runuser -u postgres -- "$bin/$1" "${@:2}"); }
  RAM_STOP="ram_stop"
  ram_stop() { RAM_PG pg_ctl -D "$RAM_DIR/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$RAM_DIR"; }
  RAM_PG initdb -D "$RAM_DIR/data" -A trust -U postgres --no-sync -E UTF8 >/dev/null
  RAM_PG pg_ctl -D "$RAM_DIR/data" -l "$RAM_DIR/log" -w \
    -o "-k $RAM_DIR -p $port -c listen_addresses= -c max_wal_size=4GB" start >/dev/null
  export PGHOST=$RAM_DIR PGPORT=$port PGUSER=postgres
  "${PSQL[@]}" -d postgres -c "CREATE ROLE airlock_gate NOLOGIN"
}

# keygen: an unencrypted key pair k.key / k.pub in the current directory.
keygen() { "$A" keygen --out k --unencrypted --force >/dev/null; }

# gate_role DB: the one-time setup: gates and probes run as a role without powers
# outside the database, reading what airlock plan lists, never pg_read_all_data.
gate_role() {
  "${PSQL[@]}" -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'airlock_gate') THEN CREATE ROLE airlock_gate NOLOGIN; END IF; END \$\$" >/dev/null
  "${PSQL[@]}" -d "$1" -c "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO airlock_gate; GRANT SELECT ON ALL TABLES IN SCHEMA public TO airlock_gate" >/dev/null
}

# Writing a bundle source DIR (sql/ files and bundle.toml) a section at a time:
#   bundle_head DIR NAME DATABASE    [bundle] (sequence 1) and [target]; starts the file
#   bundle_absent DIR TABLE          a preflight expecting public.TABLE absent
#   bundle_gate DIR NAME SQL         a gate answering SQL
#   bundle_tier DIR NAME FILES [GATES]    FILES and GATES as TOML list items: "sql/a.sql", ...
#   bundle_rollback DIR TABLE        a rollback dropping TABLE
bundle_head() {
  mkdir -p "$1/sql"
  printf '[bundle]\nname = "%s"\nversion = "1"\nsequence = 1\n\n[target]\ndatabase = "%s"\n' "$2" "$3" > "$1/bundle.toml"
}
bundle_absent() {
  echo "SELECT 'absent'::text AS key, (to_regclass('public.$2') IS NULL)::text AS value" > "$1/sql/probe.sql"
  printf '\n[preflight]\nfile = "sql/probe.sql"\nexpect = { absent = "true" }\n' >> "$1/bundle.toml"
}
bundle_gate() {
  echo "$3" > "$1/sql/gate.sql"
  printf '\n[[gate]]\nname = "%s"\nfile = "sql/gate.sql"\n' "$2" >> "$1/bundle.toml"
}
bundle_tier() {
  printf '\n[[tier]]\nname = "%s"\nfiles = [%s]\n' "$2" "$3" >> "$1/bundle.toml"
  [ -z "${4:-}" ] || printf 'gates = [%s]\n' "$4" >> "$1/bundle.toml"
}
bundle_rollback() {
  echo "DROP TABLE IF EXISTS $2;" > "$1/sql/rollback.sql"
  printf '\n[rollback]\nfiles = ["sql/rollback.sql"]\n' >> "$1/bundle.toml"
}

# target ROW MEASURED GOAL VERDICT: one of the performance targets as this script judged
# it (the script prints it in its own table too); appended to the file TARGETS names,
# when set, as a tab-separated line: benches/targets.sh collects every row in one table.
target() { [ -z "${TARGETS:-}" ] || printf '%s\t%s\t%s\t%s\n' "$@" >> "$TARGETS"; }
