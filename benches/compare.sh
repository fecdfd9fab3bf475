#!/usr/bin/env bash
# Side-by-side timing of airlock against the shell pipelines people use today.
#
#   benches/compare.sh [SIZE_MIB] [RUNS]      (defaults: 1024 MiB, 5 runs)
#
# Generates a source of SQL text (~6x compressible) of SIZE_MIB, then times, median
# of RUNS each, on the same data in one run:
#   pack:   sha256sum + tar czf (gzip -6)  |  sha256sum + tar | pigz -p 2  |  airlock pack
#   verify: minisign -V + tar xzf + sha256sum -c                          |  airlock verify
# and peak RSS of airlock pack/verify (GNU time). Needs: minisign, pigz, /usr/bin/time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SIZE=${1:-1024}
RUNS=${2:-5}
W=${BENCH_DIR:-/tmp/airlock-bench}
need minisign pigz /usr/bin/time
airlock_bin
mkdir -p "$W"
cd "$W"

if [ ! -f src/.size-$SIZE ]; then
  rm -rf src && mkdir -p src/sql
  python3 - "$SIZE" <<'PY'
import sys, random
size = int(sys.argv[1]) << 20
random.seed(42)
words = ["alpha","bravo","charlie","delta","echo","foxtrot","golf","hotel","india","juliet","kilo","lima"]
per = 16 << 20
n = max(1, size // per)
names = []
for f in range(n):
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
  touch src/.size-$SIZE
  rm -f src/.size-* 2>/dev/null; touch src/.size-$SIZE
fi
[ -f k.key ] || keygen
BYTES=$(du -sb src | cut -f1)

timeit() { # label, command...
  local label=$1; shift
  local ts=()
  for _ in $(seq 1 "$RUNS"); do
    sync; local s=$(date +%s.%N); "$@" >/dev/null 2>&1; local e=$(date +%s.%N)
    ts+=("$(echo "$e - $s" | bc -l)")
  done
  local m=$(printf '%s\n' "${ts[@]}" | median)
  printf '%s\t%s\n' "$label" "$m"
}

pack_tar()  { (cd src && find . -type f -name '*.sql' -print0 | xargs -0 sha256sum > ../SUMS && tar czf ../p1.tar.gz . ); }
pack_pigz() { (cd src && find . -type f -name '*.sql' -print0 | xargs -0 sha256sum > ../SUMS && tar cf - . | pigz -6 -p 2 > ../p2.tar.gz ); }
pack_air()  { "$A" pack src --key k.key --out b.tar.gz --force --quiet; }
pack_air6() { "$A" pack src --key k.key --out b6.tar.gz --force --quiet --level 6; }
verify_shell() { rm -rf x && mkdir x && minisign -Vm b-manifest.json -x b.minisig -p k.pub >/dev/null && tar xzf b.tar.gz -C x && (cd x && sha256sum -c --quiet SHA256SUMS); }
verify_air() { "$A" verify b.tar.gz --trust k.pub --quiet; }

pack_air
tar xzf b.tar.gz manifest.json && mv manifest.json b-manifest.json
cp "$(tar tzf b.tar.gz | grep '^signatures/' | head -1 | xargs -I{} sh -c 'tar xzf b.tar.gz {} && echo {}')" b.minisig

{
  timeit "pack: sha256sum + tar czf" pack_tar
  timeit "pack: sha256sum + tar | pigz -p 2" pack_pigz
  timeit "pack: airlock pack (default, level 5)" pack_air
  timeit "pack: airlock pack --level 6" pack_air6
  timeit "verify: minisign -V + tar xzf + sha256sum -c" verify_shell
  timeit "verify: airlock verify" verify_air
} | tee results.tsv

rss() { /usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1; }
PACK_RSS=$(rss "$A" pack src --key k.key --out b.tar.gz --force --quiet)
VERIFY_RSS=$(rss "$A" verify b.tar.gz --trust k.pub --quiet)

echo
echo "source: $BYTES bytes; runs: $RUNS (median); output sizes: tar czf $(stat -c %s p1.tar.gz), pigz $(stat -c %s p2.tar.gz), airlock $(stat -c %s b.tar.gz), airlock --level 6 $(stat -c %s b6.tar.gz) bytes"
awk -F'\t' -v bytes="$BYTES" '
  { t[$1]=$2; order[NR]=$1 }
  END {
    printf "| step | tool | time (s) | MB/s | ratio vs shell |\n|---|---|---|---|---|\n";
    base_p=t["pack: sha256sum + tar czf"]; base_v=t["verify: minisign -V + tar xzf + sha256sum -c"];
    for (i=1;i<=NR;i++) { k=order[i]; split(k, p, ": ");
      base = (p[1]=="pack") ? base_p : base_v;
      printf "| %s | %s | %.2f | %.0f | %.2fx |\n", p[1], p[2], t[k], bytes/t[k]/1e6, t[k]/base }
  }' results.tsv
echo "peak RSS: airlock pack ${PACK_RSS} KiB, airlock verify ${VERIFY_RSS} KiB"
