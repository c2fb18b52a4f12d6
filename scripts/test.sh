#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and virtual-time tests, interop tests against
# real peers, doc tests, benchmarks in test mode and fuzz corpus replay. Prints each stage's time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

timings=()
stage() {
  local name=$1; shift
  local start=$SECONDS
  echo "==> $name"
  "$@"
  timings+=("$(printf '%-28s %4ds' "$name" $((SECONDS - start)))")
}
report() {
  echo "==> stage timings"
  for t in "${timings[@]}"; do echo "    $t"; done
}
trap report EXIT

stage "dependencies" scripts/deps.sh test
stage "format" cargo fmt --all --check
# The desktop app embeds the built UI (ui/dist), so the UI comes before any cargo step.
stage "ui (vitest, build)" scripts/ui.sh test
if ! command -v cargo-deny >/dev/null 2>&1; then
  stage "install cargo-deny" cargo install cargo-deny --locked --quiet
fi
# Advisories need a database that cannot be fetched here; licences, bans and sources do not.
stage "cargo deny" cargo deny --locked check bans licenses sources
stage "clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
stage "rustdoc" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
stage "build" cargo build --workspace --bins --locked
stage "speech scorer" scripts/speech-env.sh
if command -v cargo-nextest >/dev/null 2>&1; then
  stage "tests (nextest)" cargo nextest run --workspace --locked --no-fail-fast
else
  stage "tests" cargo test --workspace --locked --no-fail-fast --lib --bins --tests
fi
# The .deb and .rpm, their metadata checked, the .deb installed; then the installed app is
# driven in its window, with links opened through xdg-open (tests/interop/package.rs).
stage "packages (.deb, .rpm)" scripts/package.sh --install
stage "installed package" cargo test -p switchboard-tests --test package --locked -- --ignored
stage "doc tests" cargo test --workspace --locked --doc
# `--bench '*'` names the [[bench]] targets only: `--benches` would also take every library
# (they are bench targets by default) and run their unit tests a second time, outside nextest.
stage "benches (test mode)" cargo test --workspace --locked --bench '*'
stage "fuzz (corpus + ${FUZZ_SECONDS:-20}s each)" scripts/fuzz.sh
