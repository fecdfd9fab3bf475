#!/usr/bin/env bash
# Build airlock's release files and sign them, so that airlock itself can cross the air
# gap to any x86_64 Linux host: one fully static binary (musl libc linked in, PostgreSQL's
# own parser), and from that very binary a .deb and an .rpm (man pages, bash/zsh/fish
# completions, JSON schemas, README, docs, CHANGELOG), plus a CycloneDX SBOM of it.
#
#   packaging/build-packages.sh [--key RELEASE.key] [--out DIR] [--offline]
#
# --key      the release manager's minisign secret key (`minisign -G`, or
#            `airlock keygen`); minisign asks for its passphrase. It must not live in
#            --out: that directory is what an operator carries. Without --key a
#            THROWAWAY key signs, made in a private temporary directory and deleted;
#            only its public half (release-throwaway.pub) is left beside the files:
#            fine for CI and for trying the steps, worthless as evidence of where a
#            package came from.
# --out      where to put the results (default target/packages):
#              airlock-VERSION-x86_64-linux-musl  the static binary, stripped
#              airlock_VERSION-1_amd64.deb        Debian, Ubuntu
#              airlock-VERSION-1.x86_64.rpm       RHEL, Rocky, Alma, Fedora, SUSE
#              airlock-VERSION.cdx.json           CycloneDX 1.5 SBOM of the binary
#              SHA256SUMS                         the SHA-256 of those four
#              *.minisig                          minisign signatures of all five
#              release-throwaway.pub              only without --key
# --offline  no network: crates come from a vendored copy (cargo vendor's [source]
#            config; docs/packages.md, "Building from source with no network"), cargo runs with --offline.
#
# Needs (packaging/deps installs them): cargo with the x86_64-unknown-linux-musl
# target, musl-gcc, dpkg-deb, rpmbuild, minisign, cargo-cyclonedx, file, readelf. No
# libclang (patches/bindgen). Reproducible: SOURCE_DATE_EPOCH defaults to the last
# commit's time, file owners are root, mtimes clamped; outside a git checkout set
# SOURCE_DATE_EPOCH and AIRLOCK_GIT_COMMIT (what --version names).
set -euo pipefail
cd "$(dirname "$0")/.."

key="" out="target/packages" offline=""
while [ $# -gt 0 ]; do
  case "$1" in
    --key) key="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --offline) offline=1; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "build-packages: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
target=x86_64-unknown-linux-musl
for tool in cargo rustc musl-gcc dpkg-deb rpmbuild minisign sha256sum gzip strip file readelf cargo-cyclonedx; do
  command -v "$tool" >/dev/null || {
    echo "build-packages: $tool is missing (packaging/deps installs what is needed)" >&2
    exit 1
  }
done
[ -d "$(rustc --print sysroot)/lib/rustlib/$target/lib" ] || {
  echo "build-packages: Rust's $target standard library is missing (rustup target add $target; packaging/deps)" >&2
  exit 1
}
[ "$(uname -m)" = x86_64 ] || {
  echo "build-packages: builds the x86_64 binary and runs it to make the man pages: run it on x86_64" >&2
  exit 1
}

mkdir -p "$out"
out_abs=$(cd "$out" && pwd -P)
if [ -n "$key" ]; then
  [ -f "$key" ] || { echo "build-packages: --key $key: no such file" >&2; exit 2; }
  key_dir=$(cd "$(dirname "$key")" && pwd -P)
  if [ "$key_dir" = "$out_abs" ]; then
    echo "build-packages: the secret key $key is in --out $out, next to the files an operator carries; keep it elsewhere" >&2
    exit 2
  fi
fi

export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
bin_name="airlock-${version}-x86_64-linux-musl"
deb="airlock_${version}-1_amd64.deb"
rpm="airlock-${version}-1.x86_64.rpm"
sbom="airlock-${version}.cdx.json"
cargo_net=()
if [ -n "$offline" ]; then
  export CARGO_NET_OFFLINE=true
  cargo_net=(--offline)
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"; rm -f airlock_bin.cdx.json' EXIT

# The binary: static (musl libc, libpg_query compiled by musl-gcc), stripped.
echo "build-packages: cargo build --release --locked ${cargo_net[*]} --target $target"
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --release --locked "${cargo_net[@]}" --target "$target" --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps --locked "${cargo_net[@]}" |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$stage/airlock"
install -m 0755 "$target_dir/$target/release/airlock" "$bin"
strip --strip-unneeded "$bin"
# Never ship a binary that needs anything from the host: no interpreter, no library.
if ! file -b "$bin" | grep -Eq 'static(-pie)? linked' ||
  readelf -lW "$bin" | grep 'INTERP' >/dev/null || readelf -dW "$bin" | grep '(NEEDED)' >/dev/null; then
  echo "build-packages: $bin is not statically linked: $(file -b "$bin")" >&2
  exit 1
fi

# The files both packages hold, staged once under $stage/root.
root="$stage/root"
install -D -m 0755 "$bin" "$root/usr/bin/airlock"
mkdir -p "$root/usr/share/man/man1"
"$bin" man --out-dir "$root/usr/share/man/man1" >/dev/null
gzip -9n "$root"/usr/share/man/man1/*.1
install -d "$root/usr/share/bash-completion/completions" \
  "$root/usr/share/zsh/vendor-completions" "$root/usr/share/fish/vendor_completions.d"
"$bin" completions bash >"$root/usr/share/bash-completion/completions/airlock"
"$bin" completions zsh >"$root/usr/share/zsh/vendor-completions/_airlock"
"$bin" completions fish >"$root/usr/share/fish/vendor_completions.d/airlock.fish"
install -D -m 0644 README.md "$root/usr/share/doc/airlock/README.md"
install -d "$root/usr/share/doc/airlock/docs"
install -m 0644 docs/*.md "$root/usr/share/doc/airlock/docs/"
cat >"$root/usr/share/doc/airlock/copyright" <<'TXT'
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: airlock
Comment: /usr/bin/airlock is statically linked. It holds the Rust crates listed in
 the SBOM published beside this package (airlock-VERSION.cdx.json, made from
 Cargo.lock), among them pg_query with libpg_query (PostgreSQL License); the Rust
 standard library (MIT or Apache-2.0); and musl libc (MIT), from the Rust
 toolchain's x86_64-unknown-linux-musl target.

Files: *
Copyright: the airlock authors
License: MIT or Apache-2.0
TXT
install -d "$root/usr/share/airlock/schemas"
install -m 0644 schemas/*.json "$root/usr/share/airlock/schemas/"

# Debian's layout: a gzipped changelog, zsh's vendor-completions.
deb_root="$stage/deb"
cp -a "$root" "$deb_root"
gzip -9n <CHANGELOG.md >"$deb_root/usr/share/doc/airlock/changelog.gz"
chmod 0644 "$deb_root/usr/share/doc/airlock/changelog.gz"
mkdir -p "$deb_root/DEBIAN"
cat >"$deb_root/DEBIAN/control" <<TXT
Package: airlock
Version: ${version}-1
Architecture: amd64
Maintainer: airlock maintainers <airlock@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$deb_root" | cut -f1)
Recommends: postgresql-client
Suggests: postgresql, minisign
Section: database
Priority: optional
Description: signed, offline release bundles for PostgreSQL changes
 A release manager packs and signs a bundle; an operator on an air-gapped host
 verifies it, asks the database a read-only gate question, and only when the
 answer is READY runs the embedded tiers, all-or-nothing; auditors re-verify
 archived bundles years later. SQL is judged by PostgreSQL's own parser;
 airlock --version names the commit. Statically linked: no library dependency.
TXT

# The RPM layout: CHANGELOG.md as it is, zsh's site-functions.
rpm_root="$stage/rpm-root"
cp -a "$root" "$rpm_root"
install -D -m 0644 CHANGELOG.md "$rpm_root/usr/share/doc/airlock/CHANGELOG.md"
mkdir -p "$rpm_root/usr/share/zsh/site-functions"
mv "$rpm_root/usr/share/zsh/vendor-completions/_airlock" "$rpm_root/usr/share/zsh/site-functions/"
rmdir "$rpm_root/usr/share/zsh/vendor-completions"

find "$deb_root" "$rpm_root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

rm -f "$out/$bin_name" "$out/$deb" "$out/$rpm" "$out/$sbom" "$out/SHA256SUMS" \
  "$out/$bin_name.minisig" "$out/$deb.minisig" "$out/$rpm.minisig" "$out/$sbom.minisig" \
  "$out/SHA256SUMS.minisig"
install -m 0755 "$bin" "$out/$bin_name"
touch -d "@$SOURCE_DATE_EPOCH" "$out/$bin_name"
dpkg-deb --root-owner-group -Zxz --build "$deb_root" "$out/$deb" >/dev/null

echo "build-packages: rpmbuild -bb packaging/airlock.spec"
mkdir -p "$stage/rpmbuild"
# Only packs (no brp-strip/compress/build-id: the binary stays byte for byte the one
# above); payload xz, readable by RHEL 8's rpm 4.14 as by newer ones.
rpmbuild -bb --quiet packaging/airlock.spec \
  --define "_topdir $stage/rpmbuild" \
  --define "airlock_version $version" \
  --define "airlock_root $rpm_root" \
  --define "debug_package %{nil}" \
  --define "__os_install_post %{nil}" \
  --define "_build_id_links none" \
  --define "_binary_payload w6.xzdio" \
  --define "_buildhost reproducible" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" >"$stage/rpmbuild.log" 2>&1 || {
  cat "$stage/rpmbuild.log" >&2
  exit 1
}
cp "$stage/rpmbuild/RPMS/x86_64/$rpm" "$out/$rpm"

# The SBOM: the binary's own dependency graph for its target, from Cargo.lock (no
# dev-dependencies, no build-time-only ones). cargo-cyclonedx writes it beside
# Cargo.toml; SOURCE_DATE_EPOCH is its timestamp.
echo "build-packages: cargo cyclonedx (CycloneDX 1.5, $target)"
cargo-cyclonedx cyclonedx --quiet --format json --spec-version 1.5 --describe binaries \
  --target "$target" --no-build-deps
mv airlock_bin.cdx.json "$out/$sbom"

(cd "$out" && sha256sum "$bin_name" "$deb" "$rpm" "$sbom" >SHA256SUMS)

commit=$("$bin" --version | sed -n 's/.*(commit \([^;]*\);.*/\1/p')
if [ -z "$key" ]; then
  # Made and used in the private staging directory (removed on exit); an earlier
  # build's secret key left in --out goes too.
  rm -f "$out/release-throwaway.key" "$out/release-throwaway.pub"
  install -d -m 0700 "$stage/keys"
  "$bin" keygen --out "$stage/keys/release-throwaway" --unencrypted \
    --comment "THROWAWAY airlock release key made by packaging/build-packages.sh" >/dev/null
  key="$stage/keys/release-throwaway.key"
  cp "$stage/keys/release-throwaway.pub" "$out/release-throwaway.pub"
  pub="$out/release-throwaway.pub"
  echo "build-packages: signed with a THROWAWAY key ($pub): for CI and trials only; a release is signed with --key"
fi
for f in "$bin_name" "$deb" "$rpm" "$sbom" SHA256SUMS; do
  if [ -n "${pub:-}" ]; then
    minisign -S -s "$key" -m "$out/$f" -t "airlock ${version} (commit ${commit}) $f" </dev/null >/dev/null
  else
    minisign -S -s "$key" -m "$out/$f" -t "airlock ${version} (commit ${commit}) $f"
  fi
done
rm -f "$stage/keys/release-throwaway.key"
# Nothing that is a secret key leaves with the packages: none by name, and no small
# file whose second line is a minisign secret key (158 bytes once decoded, encrypted
# or not; a public key is 42, a signature 74).
for f in "$out"/*; do
  case "$f" in
    *.key|*.sec) secret=1 ;;
    *) secret=0
       if [ -f "$f" ] && [ "$(stat -c %s "$f")" -lt 4096 ] &&
         [ "$(sed -n 2p "$f" | base64 -d 2>/dev/null | wc -c)" = 158 ]; then
         secret=1
       fi ;;
  esac
  if [ "$secret" != 0 ]; then
    echo "build-packages: $f looks like a secret key and sits next to the packages an operator carries; remove it and keep keys elsewhere" >&2
    exit 1
  fi
done
for f in "$bin_name" "$deb" "$rpm" "$sbom"; do
  echo "build-packages: $out/$f ($(du -h "$out/$f" | cut -f1))"
done
echo "build-packages: $out/SHA256SUMS and the .minisig of all five"
