#!/usr/bin/env bash
# Fuzz smoke run for CI (called at the end of .ci/run): installs the nightly toolchain and
# cargo-fuzz when missing, builds the targets and runs each one for FUZZ_SECONDS (60) from
# the committed corpus and seeds, failing on the first crash (the crashing input is left in
# fuzz/artifacts/<target>/). The corpus is copied to a temporary dir first, so a CI run
# never changes the tree. See fuzz/README.md.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-60}"
log="$(mktemp)"
trap 'rm -rf "$log" "${work:-}"' EXIT

quietly() {
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "fuzz/ci.sh: failed: $*" >&2
    exit 1
  fi
}

# Nightly only for the fuzz targets; the main build keeps the toolchain in rust-toolchain.toml.
rustup run nightly rustc --version >/dev/null 2>&1 ||
  quietly rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || quietly cargo install cargo-fuzz --locked

targets=(meta messages agent_options config acp_lines sse)
quietly cargo +nightly fuzz build

work="$(mktemp -d)"
# One target per core, two at a time: 6 targets x 60 s in about 3 minutes on 2 cores.
run() {
  local target=$1
  mkdir -p "$work/$target"
  if [ -d "corpus/$target" ]; then cp -r "corpus/$target/." "$work/$target/"; fi
  cargo +nightly fuzz run "$target" "$work/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$work/$target.log" 2>&1
}
report() {
  local target=$1 status=$2
  if [ "$status" != 0 ]; then
    tail -n 60 "$work/$target.log" >&2
    echo "fuzz/ci.sh: $target crashed (exit $status); the input is in fuzz/artifacts/$target/" >&2
    return 1
  fi
  echo "fuzz: $target ${seconds}s, $(grep -m1 -oE 'stat::number_of_executed_units: [0-9]+' "$work/$target.log" | grep -oE '[0-9]+$') runs, no crash"
}
failed=0
set -- "${targets[@]}"
while [ $# -gt 0 ]; do
  a=$1; shift
  run "$a" & pid_a=$!
  b=""
  if [ $# -gt 0 ]; then b=$1; shift; run "$b" & pid_b=$!; fi
  status=0; wait "$pid_a" || status=$?
  report "$a" "$status" || failed=1
  if [ -n "$b" ]; then
    status=0; wait "$pid_b" || status=$?
    report "$b" "$status" || failed=1
  fi
done
exit "$failed"
