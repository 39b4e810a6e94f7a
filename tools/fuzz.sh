#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 12): the parser and whole core on
# raw frames, the book on arbitrary and on exchange-consistent sequences, the config loader.
# With a nightly toolchain the targets run under AddressSanitizer; on stable they run without
# a sanitizer (safe Rust: a panic is what we hunt). If cargo-fuzz cannot be installed this
# says so and exits 0 (the same invariants run as property tests in `cargo test`,
# tests/properties.rs).
# Usage: tools/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-12}"; shift || true
targets=("$@"); [ ${#targets[@]} -eq 0 ] && targets=(parser book book_consistent config)

if rustup run nightly rustc --version >/dev/null 2>&1; then
  toolchain=(+nightly); sanitizer=()
else
  toolchain=(); sanitizer=(--sanitizer none)
  echo "fuzz: no nightly toolchain: running without AddressSanitizer"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked >/dev/null 2>&1 || {
    echo "fuzz: SKIPPED (cargo-fuzz could not be installed)"; exit 0; }
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  seeds=(); [ -d "seeds/$t" ] && seeds=("seeds/$t")
  echo "fuzz: $t for ${secs}s"
  # -rss_limit_mb: the book target may build 1000-deep books; nothing needs more.
  log="$(mktemp)"
  if ! cargo "${toolchain[@]}" fuzz run "${sanitizer[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz: $t FAILED (a crash input is in fuzz/artifacts/$t)"; exit 1
  fi
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)" "$log" || tail -n 5 "$log"
  rm -f "$log"
done
echo "fuzz: all targets clean"
