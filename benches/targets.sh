#!/usr/bin/env bash
# Every row of the performance targets (issue 28, round three) measured by the script
# that owns its topic, then printed in one table against its target:
#
#   verify, pack             benches/verify_pack.sh 256 RUNS: 256 MiB of SQL text against
#                            the shell pipelines (and the previous release, see PREV_BIN)
#   apply                    benches/apply.sh RUNS: 300 small files and 49,636 INSERTs,
#                            and kratos's migrations (KRATOS_DIR: a checkout's
#                            persistence/sql/migrations/sql), or 346 migrations shaped like
#                            them without it, against psql -1 and a sqlx-style runner
#   the host's second apply  benches/scale.sh --tables 5000 --indexes 2 --functions:
#                            5,000 tables with 3 indexes and a function each (20,000
#                            objects and the functions), first, second and later applies
#   rehearse                 benches/scale.sh --rows 40000000 (1.8 GB, one table) and
#                            --gb 4 (four ~1 GB tables; left out with --quick)
#   fleet                    benches/fleet.sh 200 10 (left out with --quick)
#
#   benches/targets.sh [RUNS] [--quick]      (default 5 runs; rehearse 3)
#
# Each script's own tables go to stderr as it runs; stdout gets the summary. A row the
# script could not measure (it failed) is named as such. PREV_BIN=PATH races a build of
# the previous release in verify and pack (the only rows it can read: it does not read
# format-2 bundles); unset, verify_pack.sh builds 9c35c06 when libclang is installed, and
# leaves it out otherwise. Needs what the scripts need (minisign, bc), and room for the
# 4 GB database and its clone during the rehearsal (check `df -h`). On this project's
# 2-core machine, `5 --quick` took 12 minutes; the 4 GB rows add the build of 4 GB and
# one rehearsal of it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=5 QUICK=0
for a in "$@"; do
  case $a in
    --quick) QUICK=1 ;;
    [0-9]*) RUNS=$a ;;
    *) echo "usage: benches/targets.sh [RUNS] [--quick]" >&2; exit 2 ;;
  esac
done
airlock_bin
export AIRLOCK_BIN=$A
# libclang itself (libclang.so, libclang-14.so.1, ...), not libclang-cpp.
if [ -z "${PREV_BIN:-}" ] && ! ldconfig -p 2>/dev/null | grep -qE 'libclang(-[0-9][0-9.]*)?\.so'; then
  export PREV_BIN=none
fi
TARGETS=$(mktemp "${BENCH_DIR:-/tmp}/airlock-targets-XXXXXX")
export TARGETS
trap 'rm -f "$TARGETS"' EXIT
B=$ROOT/benches
started=$(date -u '+%Y-%m-%d %H:%M UTC')
load0=$(cut -d' ' -f1-3 /proc/loadavg)

# run NAME COMMAND...: one script, its output to stderr; a failure is a row of its own.
run() {
  local name=$1; shift
  echo "== $name: $*" >&2
  "$@" >&2 || target "$name" "the script failed (exit $?): see its output above" "" FAILED
}
run "verify and pack" "$B/verify_pack.sh" 256 "$RUNS"
if [ -n "${KRATOS_DIR:-}" ]; then kratos=kratos; else kratos=shaped; fi
# In RAM unless RAM=0: on a shared disk psql's own time moves by more than the fixed
# cost measured (docs/performance.md, "Apply").
RAM=${RAM-1} run "apply" "$B/apply.sh" "$RUNS" "$kratos" small inserts
run "second apply" "$B/scale.sh" --tables 5000 --indexes 2 --functions --only apply --runs "$RUNS"
run "rehearse, 40M rows" "$B/scale.sh" --rows 40000000 --only rehearse --runs 3
# Three runs: the first follows the build's bulk load (the server's checkpoint and the
# kernel's writeback of 4 GB just written weigh on its clone); the median is the steady state.
[ "$QUICK" = 1 ] || run "rehearse, 4 GB" "$B/scale.sh" --gb 4 --only rehearse --runs 3
# A fleet of 200 databases (the Ansible collection, forks 10, and a shell loop; needs
# scripts/ansible-venv): airlock's own share of each apply.
[ "$QUICK" = 1 ] || run "fleet" "$B/fleet.sh" 200 10

echo "airlock $("$A" --version | cut -d' ' -f2) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')), PostgreSQL $(server_version), $(nproc) cores; $started; load $load0 before, $(cut -d' ' -f1-3 /proc/loadavg) after"
[ -n "${KRATOS_DIR:-}" ] || echo "(no KRATOS_DIR: the kratos row is the 346 migrations shaped like kratos's)"
echo
echo "| row | measured | target | verdict |"
echo "|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$TARGETS"
# Rows with no goal of their own (verdict "-") are figures beside the others.
missed=$(awk -F'\t' '$4 != "met" && $4 != "-"' "$TARGETS" | wc -l)
echo
echo "$(awk -F'\t' '$4 != "-"' "$TARGETS" | wc -l) rows with a goal, $missed not met"
