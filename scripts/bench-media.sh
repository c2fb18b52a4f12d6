#!/usr/bin/env bash
# The media benchmark (issue 5; not part of scripts/test.sh): Switchboard against baresip 1.0
# through the project's seeded UDP impairment relay, clean and with 5 % loss and 40 ± 20 ms of
# jitter. Prints PESQ-WB, one-way delay (encoder input to decoder output), CPU per call-minute
# and peak RSS for both; about five minutes after the build. See docs/media.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
scripts/deps.sh test
scripts/speech-env.sh
cargo build --release --locked -p switchboard-cli -p switchboard-tests --bins
exec target/release/media-bench
