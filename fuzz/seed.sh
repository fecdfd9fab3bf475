#!/usr/bin/env bash
# Seed corpora for the fuzz targets, generated from real bundles (nothing binary is
# checked in): writes fuzz/corpus/TARGET/. Bundles are signed with the throw-away
# tests/data/snakeoil.key, whose public half the bundle targets trust.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
airlock=${AIRLOCK:-$root/target/debug/airlock}
[ -x "$airlock" ] || cargo build --quiet --bin airlock
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp tests/data/snakeoil.key tests/data/snakeoil.pub "$work/"
chmod 600 "$work/snakeoil.key"
export SOURCE_DATE_EPOCH=1700000000
unset AIRLOCK_DB AIRLOCK_TRUST

# A tiny source that still uses every section of bundle.toml.
t=$work/tiny
mkdir -p "$t/sql" "$t/runbooks"
cat > "$t/bundle.toml" <<'TOML'
[bundle]
name = "tiny"
version = "1.0"
sequence = 2
description = "fuzz seed"
expires = "2099-01-01T00:00:00Z"
transaction = "per-tier"

[target]
database = "app"
min_server_version = 130000

[params.code]
required = true
pattern = "^[A-Z0-9-]+$"
description = "a code"

[[gate]]
name = "g"
file = "sql/gate.sql"

[preflight]
file = "sql/probe.sql"
expect = { t = "0" }

[[tier]]
name = "one"
files = ["sql/one.sql"]

[[tier]]
name = "two"
files = ["sql/two.sql"]
gates = ["g"]

[verify]
file = "sql/probe.sql"
expect = { t = "1" }

[rollback]
files = ["sql/rollback.sql"]

[[runbook]]
file = "runbooks/owner.md"
title = "Owner"
audience = "owner"
TOML
echo "SELECT true AS ready, 'ok' AS reason" > "$t/sql/gate.sql"
echo "SELECT 't' AS key, count(*)::text AS value FROM pg_tables WHERE tablename = 'x'" > "$t/sql/probe.sql"
echo "CREATE TABLE x(i int);" > "$t/sql/one.sql"
echo "INSERT INTO x VALUES (1);" > "$t/sql/two.sql"
echo "DROP TABLE IF EXISTS x;" > "$t/sql/rollback.sql"
printf '# Owner runbook\n\nRun it.\n' > "$t/runbooks/owner.md"
: > "$t/runbooks/empty.md"

# The smallest source: one tier, one file.
m=$work/min
mkdir -p "$m/sql"
printf '[bundle]\nname = "m"\nversion = "1"\nsequence = 1\n\n[target]\ndatabase = "x"\n\n[[tier]]\nname = "t"\nfiles = ["sql/t.sql"]\n' > "$m/bundle.toml"
echo "SELECT 1;" > "$m/sql/t.sql"

cd "$work"
"$airlock" --quiet keygen --out other --unencrypted
AIRLOCK_PASSPHRASE=seed "$airlock" --quiet keygen --out enc
"$airlock" --quiet pack tiny --key snakeoil.key --out tiny.tar.gz
"$airlock" --quiet pack min --key snakeoil.key --out min.tar.gz
cp tiny.tar.gz tiny2.tar.gz
"$airlock" --quiet sign tiny2.tar.gz --key other.key
"$airlock" --quiet pack "$root/bundle/one-roof" --key snakeoil.key --out one-roof.tar.gz

c=$root/fuzz/corpus
mkdir -p "$c"/{bundle_gz,bundle_tar,manifest,minisign,spec}
for b in tiny min tiny2 one-roof; do
  cp "$b.tar.gz" "$c/bundle_gz/$b"
  [ "$b" = one-roof ] || gzip -dc "$b.tar.gz" > "$c/bundle_tar/$b"
  tar -xOzf "$b.tar.gz" manifest.json > "$c/manifest/$b"
  i=0
  for s in $(tar -tzf "$b.tar.gz" | grep '^signatures/'); do
    { printf '\001'; tar -xOzf "$b.tar.gz" "$s"; } > "$c/minisign/sig-$b-$i"
    i=$((i + 1))
  done
done
for k in snakeoil other enc; do
  { printf '\000'; cat "$k.pub"; } > "$c/minisign/pub-$k"
  { printf '\002'; cat "$k.key"; } > "$c/minisign/key-$k"
done
cp tiny/bundle.toml "$c/spec/tiny"
cp min/bundle.toml "$c/spec/min"
cp "$root/bundle/one-roof/bundle.toml" "$c/spec/one-roof"
for d in "$c"/*; do echo "seed: $(basename "$d"): $(ls "$d" | wc -l) files"; done
