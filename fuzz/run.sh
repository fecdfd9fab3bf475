#!/usr/bin/env bash
# Run each fuzz target for SECONDS (default 60), one libFuzzer job and one worker,
# and print what it reached: executions, libFuzzer's coverage figures (cov: edges,
# ft: features), corpus size and crashes. Needs cargo-fuzz (`cargo install
# cargo-fuzz`); the stable toolchain works with RUSTC_BOOTSTRAP=1, set here.
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Crashes land in fuzz/artifacts/TARGET/. Minimize one with
# `cargo fuzz tmin TARGET FILE`, copy it to tests/data/fuzz-regressions/TARGET/, and
# `cargo test --test fuzz_replay` replays it without any fuzz toolchain.
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bundle_gz bundle_tar manifest minisign spec)
export RUSTC_BOOTSTRAP=1
[ -d corpus ] || ./seed.sh || exit 1
cargo fuzz build >/dev/null 2>&1 || cargo fuzz build || exit 1
mkdir -p logs
summary=()
failed=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  before=$(ls "artifacts/$t" | wc -l)
  rm -f fuzz-0.log
  start=$(date +%s)
  cargo fuzz run "$t" "corpus/$t" -- \
    -max_total_time="$secs" -jobs=1 -workers=1 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"logs/$t.run.log" 2>&1
  status=$?
  took=$(($(date +%s) - start))
  # With -jobs, libFuzzer's own output goes to fuzz-0.log.
  [ -f fuzz-0.log ] && mv fuzz-0.log "logs/$t.log" || cp "logs/$t.run.log" "logs/$t.log"
  last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -n 1)
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$' | tail -n 1)
  [ -n "$execs" ] || execs=$(echo "$last" | grep -oE '^#[0-9]+' | tr -d '#')
  rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "logs/$t.log" | grep -oE '[0-9]+$' | tail -n 1)
  cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | grep -oE '[0-9]+')
  ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | grep -oE '[0-9]+')
  corp=$(ls "corpus/$t" | wc -l)
  corp_bytes=$(du -sb "corpus/$t" | cut -f1)
  crashes=$(($(ls "artifacts/$t" | wc -l) - before))
  [ "$status" -eq 0 ] || failed=1
  summary+=("$(printf '%-11s %6ss %12s %9s %6s %7s %6s %9s %7s' "$t" "$took" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corp" "$corp_bytes" "$crashes")")
  echo "fuzz: $t done (exit $status): ${last:-no stats}" >&2
done
printf '%-11s %7s %12s %9s %6s %7s %6s %9s %7s\n' target time execs execs/s cov ft corpus bytes crashes
printf '%s\n' "${summary[@]}"
exit "$failed"
