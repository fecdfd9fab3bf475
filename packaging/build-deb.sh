#!/usr/bin/env bash
# Build airlock's Debian package and sign it, so that airlock itself can cross the air
# gap: the release build (PostgreSQL's own parser), stripped, with the man pages,
# shell completions, README, CHANGELOG and JSON schemas.
#
#   packaging/build-deb.sh [--key RELEASE.key] [--out DIR]
#
# --key  the release manager's minisign secret key (`minisign -G`, or
#        `airlock keygen`); minisign asks for its passphrase. It must not live in
#        --out: that directory is what an operator carries. Without --key a
#        THROWAWAY key signs, made in a private temporary directory and deleted;
#        only its public half (release-throwaway.pub) is left beside the package:
#        fine for CI and for trying the steps, worthless as evidence of where a
#        package came from.
# --out  where to put the results (default target/debian):
#          airlock_VERSION-1_ARCH.deb      the package
#          SHA256SUMS                      its SHA-256 (coreutils format)
#          *.minisig                       minisign signatures of both
#          release-throwaway.pub           only without --key
#
# Needs: cargo, a C compiler, dpkg-deb, minisign (no libclang: patches/bindgen). Reproducible: SOURCE_DATE_EPOCH defaults to the last commit's
# time, file owners are root, mtimes clamped.
set -euo pipefail
cd "$(dirname "$0")/.."

key="" out="target/debian"
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
    *) echo "build-deb: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
for tool in cargo dpkg-deb minisign sha256sum gzip strip; do
  command -v "$tool" >/dev/null || {
    echo "build-deb: $tool is missing (scripts/test-deps installs what is needed; minisign: apt-get install minisign)" >&2
    exit 1
  }
done

mkdir -p "$out"
out_abs=$(cd "$out" && pwd -P)
if [ -n "$key" ]; then
  [ -f "$key" ] || { echo "build-deb: --key $key: no such file" >&2; exit 2; }
  key_dir=$(cd "$(dirname "$key")" && pwd -P)
  if [ "$key_dir" = "$out_abs" ]; then
    echo "build-deb: the secret key $key is in --out $out, next to the files an operator carries; keep it elsewhere" >&2
    exit 2
  fi
fi

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
arch=$(dpkg --print-architecture)
deb="airlock_${version}-1_${arch}.deb"

echo "build-deb: cargo build --release --locked"
cargo build --release --locked --quiet
bin=target/release/airlock

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
install -D -m 0755 "$bin" "$root/usr/bin/airlock"
strip --strip-unneeded "$root/usr/bin/airlock"
mkdir -p "$root/usr/share/man/man1"
"$root/usr/bin/airlock" man --out-dir "$root/usr/share/man/man1" >/dev/null
gzip -9n "$root"/usr/share/man/man1/*.1
install -d "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$root/usr/bin/airlock" completions bash >"$root/usr/share/bash-completion/completions/airlock"
"$root/usr/bin/airlock" completions zsh >"$root/usr/share/zsh/vendor-completions/_airlock"
"$root/usr/bin/airlock" completions fish >"$root/usr/share/fish/vendor_completions.d/airlock.fish"
install -D -m 0644 README.md "$root/usr/share/doc/airlock/README.md"
gzip -9n <CHANGELOG.md >"$stage/changelog.gz"
install -D -m 0644 "$stage/changelog.gz" "$root/usr/share/doc/airlock/changelog.gz"
cat >"$root/usr/share/doc/airlock/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: airlock
Comment: The binary statically links Rust crates (see Cargo.lock in the source) and
 libpg_query (PostgreSQL License, via the pg_query crate).

Files: *
Copyright: the airlock authors
License: MIT or Apache-2.0
TXT
install -d "$root/usr/share/airlock/schemas"
install -m 0644 schemas/*.json "$root/usr/share/airlock/schemas/"

# Shared-library dependencies, as dpkg-shlibdeps sees them when it is installed.
depends=""
if command -v dpkg-shlibdeps >/dev/null; then
  mkdir -p "$stage/src/debian"
  printf 'Source: airlock\n\nPackage: airlock\nArchitecture: any\n' >"$stage/src/debian/control"
  depends=$(cd "$stage/src" && dpkg-shlibdeps -O -e "$root/usr/bin/airlock" 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
fi
if [ -z "$depends" ]; then
  glibc=$(objdump -T "$root/usr/bin/airlock" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
  depends="libc6 (>= ${glibc:-2.17}), libgcc-s1"
fi

mkdir -p "$root/DEBIAN"
cat >"$root/DEBIAN/control" <<TXT
Package: airlock
Version: ${version}-1
Architecture: ${arch}
Maintainer: airlock maintainers <airlock@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: ${depends}
Recommends: postgresql-client
Suggests: postgresql, minisign
Section: database
Priority: optional
Description: signed, offline release bundles for PostgreSQL changes
 A release manager packs and signs a bundle; an operator on an air-gapped host
 verifies it, asks the database a read-only gate question, and only when the
 answer is READY runs the embedded tiers, all-or-nothing; auditors re-verify
 archived bundles years later. SQL is judged by PostgreSQL's own parser;
 airlock --version names the commit.
TXT
find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
rm -f "$out/$deb" "$out/$deb.minisig" "$out/SHA256SUMS" "$out/SHA256SUMS.minisig"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/$deb" >/dev/null
(cd "$out" && sha256sum "$deb" >SHA256SUMS)

commit=$("$root/usr/bin/airlock" --version | sed -n 's/.*(commit \([^;]*\);.*/\1/p')
if [ -z "$key" ]; then
  # Made and used in the private staging directory (removed on exit); an earlier
  # build's secret key left in --out goes too.
  rm -f "$out/release-throwaway.key" "$out/release-throwaway.pub"
  install -d -m 0700 "$stage/keys"
  "$root/usr/bin/airlock" keygen --out "$stage/keys/release-throwaway" --unencrypted \
    --comment "THROWAWAY airlock release key made by packaging/build-deb.sh" >/dev/null
  key="$stage/keys/release-throwaway.key"
  cp "$stage/keys/release-throwaway.pub" "$out/release-throwaway.pub"
  pub="$out/release-throwaway.pub"
  echo "build-deb: signed with a THROWAWAY key ($pub): for CI and trials only; a release is signed with --key"
fi
for f in "$deb" SHA256SUMS; do
  if [ -n "${pub:-}" ]; then
    minisign -S -s "$key" -m "$out/$f" -t "airlock ${version} (commit ${commit}) $f" </dev/null >/dev/null
  else
    minisign -S -s "$key" -m "$out/$f" -t "airlock ${version} (commit ${commit}) $f"
  fi
done
rm -f "$stage/keys/release-throwaway.key"
# Nothing that is a secret key leaves with the package: none by name, and no small
# file whose second line is a minisign secret key (158 bytes once decoded, encrypted
# or not; a public key is 42, a signature 74).
for f in "$out"/*; do
  case "$f" in
    *.deb) continue ;;
    *.key|*.sec) secret=1 ;;
    *) secret=0
       if [ "$(stat -c %s "$f")" -lt 4096 ] &&
         [ "$(sed -n 2p "$f" | base64 -d 2>/dev/null | wc -c)" = 158 ]; then
         secret=1
       fi ;;
  esac
  if [ "$secret" != 0 ]; then
    echo "build-deb: $f looks like a secret key and sits next to the package an operator carries; remove it and keep keys elsewhere" >&2
    exit 1
  fi
done
echo "build-deb: $out/$deb ($(du -h "$out/$deb" | cut -f1)), $out/SHA256SUMS and their .minisig"
