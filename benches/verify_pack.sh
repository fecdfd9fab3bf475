#!/usr/bin/env bash
# verify and pack against the shell pipelines and the previous release, side by side
# (issue 28's first two rows):
#
#   verify:  airlock verify     vs  minisign -V + tar xzf + sha256sum -c    target <= 0.13x
#            (a bundle new to the host, --rejudge: <= 0.20x, issue 67)
#   pack:    airlock pack       vs  sha256sum + tar czf (gzip -6)          target <= 0.20x
#
# `airlock verify` verifies a bundle whole once a build on a host (every SQL rule,
# every chunk hash) and remembers it (the state directory's judged/): every run after
# the first checks signatures, each file's hash and the structure and takes the
# remembered verdict, as an operator's apply does after their verify or plan.
# `verify --rejudge` races too, as the figure for a bundle new to the host (every
# statement judged, every chunk hashed).
#
#   benches/verify_pack.sh [SIZE_MIB] [RUNS]      (defaults: 256 MiB, 7 runs)
#
# The source is compare.sh's: SQL text (~6x compressible) in 16 MiB files. Each run
# times every contender once, in turn (a different one first each run), so a load that
# comes and goes weighs on all alike; the figures are medians of RUNS. Ratio = median
# airlock time / median shell time; "pairs" is the median of the per-run ratios.
#
# The previous release is 9c35c06 (PREV_REF), built once (release) in a worktree at
# PREV_DIR (default /tmp/airlock-prev) with its own target directory; PREV_BIN=path
# uses a binary built elsewhere, PREV_BIN=none leaves it out. Each release verifies the
# bundle it packed itself (the previous one cannot read format 2). OTHER_BIN=path adds
# one more build to the race (e.g. main before a change), named OTHER_NAME.
# Needs: minisign; to build 9c35c06, libclang (its pg_query's bindgen; `apt-get install
# libclang-dev`). Works in BENCH_DIR (default a fresh temp dir, removed at the end).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-256}
RUNS=${2:-7}
PREV_REF=${PREV_REF:-9c35c06}
PREV_DIR=${PREV_DIR:-/tmp/airlock-prev}
need minisign
airlock_bin

# The previous release's binary, built when missing.
prev_bin() {
  if [ -n "${PREV_BIN:-}" ]; then
    P=$PREV_BIN
    return
  fi
  P=$PREV_DIR-target/release/airlock
  [ -x "$P" ] && return
  [ -d "$PREV_DIR" ] || git -C "$ROOT" worktree add --detach "$PREV_DIR" "$PREV_REF" >/dev/null
  (cd "$PREV_DIR" && CARGO_TARGET_DIR=$PREV_DIR-target cargo build --release --quiet) || {
    echo "building $PREV_REF failed: its pg_query generates bindings with libclang" \
      "(apt-get install libclang-dev), or run with PREV_BIN=none" >&2
    exit 1
  }
}
prev_bin
[ "$P" = none ] && P=

bench_workdir verify-pack
mkdir -p src/sql
python3 - "$SIZE" <<'PY'
import sys, random
size = int(sys.argv[1]) << 20
random.seed(42)
words = ["alpha","bravo","charlie","delta","echo","foxtrot","golf","hotel","india","juliet","kilo","lima"]
per = 16 << 20
names = []
for f in range(max(1, size // per)):
    name = f"sql/data_{f:03d}.sql"
    names.append(name)
    with open("src/" + name, "w") as out:
        written = 0; i = f * 10_000_000
        while written < per:
            line = "INSERT INTO bench.items (id, name, qty, note) VALUES (%d, '%s-%d', %d, '%s %s %s');\n" % (
                i, random.choice(words), i % 977, random.randint(0, 99999),
                random.choice(words), random.choice(words), random.choice(words))
            out.write(line); written += len(line); i += 1
with open("src/bundle.toml", "w") as t:
    t.write('[bundle]\nname = "bench"\nversion = "1"\nsequence = 1\n\n[target]\ndatabase = "bench"\n\n[[tier]]\nname = "data"\nfiles = [%s]\n' % ", ".join('"%s"' % x for x in names))
PY
keygen
BYTES=$(du -sb src | cut -f1)

pack_shell() { (cd src && find . -type f -name '*.sql' -print0 | xargs -0 sha256sum > ../SUMS && tar czf ../shell.tar.gz .); }
pack_air() { "$A" pack src --key k.key --out b.tar.gz --force --quiet; }
pack_prev() { "$P" pack src --key k.key --out prev.tar.gz --force --quiet; }
pack_other() { "$OTHER_BIN" pack src --key k.key --out other.tar.gz --force --quiet; }
verify_shell() {
  rm -rf x && mkdir x && minisign -Vqm manifest.json -x sig.minisig -p k.pub \
    && tar xzf b.tar.gz -C x && (cd x && sha256sum -c --quiet SHA256SUMS)
}
# Each build remembers its verdicts in a state directory of its own: a host keeps one
# build's memory and forgets other builds' (crate verdicts), so builds taking turns on
# one directory would each find the bundle new every time.
verify_air() { AIRLOCK_STATE_DIR=$W/state-air "$A" verify b.tar.gz --trust k.pub --quiet; }
verify_new() { AIRLOCK_STATE_DIR=$W/state-air "$A" verify b.tar.gz --trust k.pub --quiet --rejudge; }
verify_prev() { AIRLOCK_STATE_DIR=$W/state-prev "$P" verify prev.tar.gz --trust k.pub --quiet; }
verify_other() { AIRLOCK_STATE_DIR=$W/state-other "$OTHER_BIN" verify other.tar.gz --trust k.pub --quiet; }
verify_othernew() { AIRLOCK_STATE_DIR=$W/state-other "$OTHER_BIN" verify other.tar.gz --trust k.pub --quiet --rejudge; }

pack_air
[ -z "$P" ] || pack_prev
[ -z "${OTHER_BIN:-}" ] || pack_other
# What the shell's minisign checks: the manifest and its signature, out of the bundle.
tar xzf b.tar.gz manifest.json
tar xzf b.tar.gz --wildcards 'signatures/*' && mv signatures/*.minisig sig.minisig

# seconds COMMAND...: wall time of one run, in seconds (fails the bench if it fails);
# the CPU time it took (user + system, every thread) goes to cpu.txt.
seconds() {
  local s e TIMEFORMAT='%3U %3S'
  sync
  s=$(date +%s%N)
  { time "$@" >/dev/null 2>&1; } 2>cpu.txt || { echo "failed: $*" >&2; exit 1; }
  e=$(date +%s%N)
  echo "scale=3; ($e - $s) / 1000000000" | bc -l
}

# race STEP RUN: one run of STEP's contenders (shell, air, new, prev, other, othernew:
# those STEP has), rotated by RUN; appends "STEP<TAB>contender<TAB>seconds<TAB>run<TAB>
# cpu seconds" lines to times.tsv.
race() {
  local step=$1 run=$2 who=(shell air new prev other othernew) i c
  for i in 0 1 2 3 4 5; do
    c=${who[$(((i + run) % 6))]}
    declare -F "${step}_$c" >/dev/null || continue
    [ "$c" != prev ] || [ -n "$P" ] || continue
    case $c in other*) [ -n "${OTHER_BIN:-}" ] || continue ;; esac
    printf '%s\t%s\t%s\t%s' "$step" "$c" "$(seconds "${step}_$c")" "$run" >>times.tsv
    awk '{printf "\t%.3f\n", $1 + $2}' cpu.txt >>times.tsv
  done
}
: >times.tsv
for run in $(seq 1 "$RUNS"); do
  race verify "$run"
  race pack "$run"
done

med() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s && $2 == c {print $3}' times.tsv | median; }
# pairs STEP WHO: the median of the per-run ratios WHO/shell.
pairs() {
  awk -F'\t' -v s="$1" -v c="$2" '$1 == s {t[$4, $2] = $3; r[$4] = 1}
    END {for (k in r) if ((k, c) in t) print t[k, c] / t[k, "shell"]}' times.tsv | median
}
echo "source: $BYTES bytes of SQL text in $((SIZE / 16)) files; $RUNS runs each, alternating; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "bundles: this build $(stat -c %s b.tar.gz) bytes${P:+, previous release ($PREV_REF) $(stat -c %s prev.tar.gz) bytes}"
echo
echo "| step | contender | median (s) | ratio vs shell | pairs | target |"
echo "|---|---|---|---|---|---|"
row() { # STEP WHO LABEL TARGET
  local m b
  m=$(med "$1" "$2")
  b=$(med "$1" shell)
  printf '| %s | %s | %.3f | %.3fx | %.3fx | %s |\n' "$1" "$3" "$m" "$(echo "$m / $b" | bc -l)" "$(pairs "$1" "$2")" "$4"
}
verdict() { # STEP TARGET
  local r
  r=$(echo "$(med "$1" air) / $(med "$1" shell)" | bc -l)
  if [ "$(echo "$r <= $2" | bc -l)" = 1 ]; then echo "met"; else echo "MISSED"; fi
}
# judged STEP TARGET SHELL [NOTE]: this build's row, judged against TARGET, in the
# table and for benches/targets.sh (NOTE in brackets after the figure there).
judged() {
  local v m s
  v=$(verdict "$1" "$2") m=$(med "$1" air) s=$(med "$1" shell)
  row "$1" air "airlock $1 (this build)" "<= ${2}x: $v"
  target "$1, ${SIZE} MiB of SQL text, vs $3" \
    "$(printf '%.3f s vs %.3f s = %.2fx' "$m" "$s" "$(echo "$m / $s" | bc -l)")${4:+ ($4)}" "<= ${2}x" "$v"
}
printf '| verify | minisign -V + tar xzf + sha256sum -c | %.3f | 1.000x | | |\n' "$(med verify shell)"
judged verify 0.13 "minisign -V + tar xzf + sha256sum -c" \
  "its SQL judged before on this host; new to the host (--rejudge): $(printf '%.3f s = %.2fx' "$(med verify new)" "$(echo "$(med verify new) / $(med verify shell)" | bc -l)")"
row verify new "airlock verify --rejudge (this build; SQL judged: a bundle new to the host)" ""
# The first verify on a host: 0.20x since issue 67 (the libraries' own speed: sha2,
# zlib-rs, a lexer without intrinsics; issue 53's 0.13x was met with our own SIMD).
nv=$(echo "$(med verify new) / $(med verify shell)" | bc -l)
target "verify of a bundle new to the host (--rejudge), ${SIZE} MiB" \
  "$(printf '%.3f s vs %.3f s = %.2fx' "$(med verify new)" "$(med verify shell)" "$nv")" "<= 0.20x" \
  "$([ "$(echo "$nv <= 0.20" | bc -l)" = 1 ] && echo met || echo MISSED)"
# What the first verify costs the machine: its CPU time over every core is the least
# wall time it can take here, however well its threads overlap.
cpu_new=$(awk -F'\t' '$1 == "verify" && $2 == "new" {print $5}' times.tsv | median)
cores=$(nproc)
floor=$(echo "$cpu_new / $cores" | bc -l)
target "verify new to the host: its CPU time over ${cores} cores (the least wall time it can take here)" \
  "$(printf '%.3f s CPU / %d = %.3f s = %.2fx' "$cpu_new" "$cores" "$floor" "$(echo "$floor / $(med verify shell)" | bc -l)")" "-" "-"
[ -z "$P" ] || row verify prev "airlock verify ($PREV_REF)" ""
[ -z "${OTHER_BIN:-}" ] || row verify other "airlock verify (${OTHER_NAME:-other})" ""
[ -z "${OTHER_BIN:-}" ] || row verify othernew "airlock verify --rejudge (${OTHER_NAME:-other})" ""
printf '| pack | sha256sum + tar czf | %.3f | 1.000x | | |\n' "$(med pack shell)"
judged pack 0.20 "sha256sum + tar czf"
[ -z "$P" ] || row pack prev "airlock pack ($PREV_REF)" ""
[ -z "${OTHER_BIN:-}" ] || row pack other "airlock pack (${OTHER_NAME:-other})" ""
echo
printf 'verify --rejudge (a bundle new to the host): %.3f s of CPU (median), %.3f s over %d cores = %.3fx the shell: the least it can take on this machine\n' \
  "$cpu_new" "$floor" "$cores" "$(echo "$floor / $(med verify shell)" | bc -l)"
