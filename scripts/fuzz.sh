#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/, replays their committed corpora (regression inputs,
# including every `crash-*` file) and fuzzes each target for a short while.
#
#   scripts/fuzz.sh                       # all targets, 20 s of fuzzing each
#   FUZZ_SECONDS=300 scripts/fuzz.sh sdp  # one target, longer
#
# Environment:
#   FUZZ_SECONDS    fuzzing time per target after the replay (default 20; 0 = replay only)
#   FUZZ_SANITIZER  cargo-fuzz sanitizer (default none: the engine forbids unsafe code, and
#                   without ASan the targets run ~4x faster; use `address` for a deeper check)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#
# The committed corpus is never written to: fuzzing works on a temporary copy. New crashes are
# written by libFuzzer to fuzz/artifacts/<target>/ (ignored by git); to keep one as a regression
# input, minimise it (`cargo +nightly fuzz tmin <target> <file>`) and commit it as
# fuzz/corpus/<target>/crash-<what-it-is>.
#
# Exits non-zero if any target fails to build, crashes on a corpus input, or crashes (panics,
# hangs, runs out of memory) while fuzzing. Needs rustup with a nightly toolchain.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root=$(pwd)

seconds=${FUZZ_SECONDS:-20}
sanitizer=${FUZZ_SANITIZER:-none}
timeout=${FUZZ_TIMEOUT:-10}
toolchain=nightly

log() { printf '%s\n' "fuzz.sh: $*" >&2; }

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
    log "installing the $toolchain toolchain"
    rustup toolchain install "$toolchain" --profile minimal
fi
if ! cargo "+$toolchain" fuzz --help >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# The same flags for `build` and `run`, or `run` rebuilds with different ones.
build_flags=(--sanitizer "$sanitizer")

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi
if [ "${#targets[@]}" -eq 0 ]; then
    log "no fuzz targets found (is fuzz/Cargo.toml there?)"
    exit 1
fi

# Per-target libFuzzer options: input size limits and dictionaries.
target_options() {
    case "$1" in
        sip_message) echo "-max_len=8192 -dict=$repo_root/fuzz/dicts/sip.dict" ;;
        endpoint_input) echo "-max_len=8192 -dict=$repo_root/fuzz/dicts/sip.dict" ;;
        sdp) echo "-max_len=4096 -dict=$repo_root/fuzz/dicts/sdp.dict" ;;
        stream_framer) echo "-max_len=8192 -dict=$repo_root/fuzz/dicts/sip.dict" ;;
        rtp_rtcp | srtp) echo "-max_len=1500" ;;
        identity) echo "-max_len=4096" ;;
        *) echo "" ;;
    esac
}

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

binary_dir="fuzz/target/$(rustc "+$toolchain" -vV | sed -n 's/^host: //p')/release"
failed=()
summary=()

# The libFuzzer status line of a finished run: "execs, exec/s, coverage, corpus".
stats() {
    local line
    line=$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$1" | tail -n 1 || true)
    if [ -z "$line" ]; then
        echo "no stats"
        return
    fi
    sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+cov: ([0-9]+) ft: ([0-9]+) corp: ([^ ]+).*exec\/s: ([0-9]+).*/\1 execs, \5 exec\/s, cov \2, ft \3, corpus \4/' <<<"$line"
}

now() { date +%s; }

# What went wrong in a libFuzzer log: the panic message, or the end of the log (hang, OOM...).
show_failure() {
    if grep -a -q 'panicked at' "$1"; then
        sed -n '/panicked at/,/^stack backtrace/p' "$1" | head -n 80 >&2
        grep -a -E '^SUMMARY|^artifact_prefix|^[[:space:]]+cargo fuzz (run|tmin) ' "$1" >&2 || true
    else
        tail -n 40 "$1" >&2
    fi
}

for target in "${targets[@]}"; do
    corpus="fuzz/corpus/$target"
    if [ ! -d "$corpus" ]; then
        corpus="$work/empty-$target"
        mkdir -p "$corpus"
    fi
    read -r -a options <<<"$(target_options "$target")"
    log "=== $target"

    # 1. Build.
    start=$(now)
    if ! cargo "+$toolchain" fuzz build "${build_flags[@]}" "$target"; then
        failed+=("$target: build failed")
        summary+=("$(printf '%-16s build FAILED' "$target")")
        continue
    fi
    build_time=$(($(now) - start))

    # 2. Replay the committed corpus: every input must run clean.
    start=$(now)
    replay_log="$work/$target.replay.log"
    replay_ok=true
    if ! cargo "+$toolchain" fuzz run "${build_flags[@]}" "$target" "$corpus" -- \
        -runs=0 -timeout="$timeout" "${options[@]}" >"$replay_log" 2>&1; then
        replay_ok=false
        show_failure "$replay_log"
        # libFuzzer stops at the first crash: name every corpus input that fails.
        log "$target: corpus inputs that fail:"
        for input in "$corpus"/*; do
            if ! "$binary_dir/$target" -timeout="$timeout" "$input" >/dev/null 2>&1; then
                log "  $input"
                failed+=("$target: corpus input $input fails")
            fi
        done
    fi
    replay_time=$(($(now) - start))
    replay_stats=$(stats "$replay_log")
    log "$target: replayed $(find "$corpus" -type f | wc -l) inputs in ${replay_time}s ($replay_stats)"

    # 3. Fuzz, on a copy of the corpus.
    fuzz_time=0
    fuzz_stats="skipped"
    if [ "$seconds" -gt 0 ] && $replay_ok; then
        copy="$work/corpus-$target"
        cp -R "$corpus" "$copy"
        fuzz_log="$work/$target.fuzz.log"
        start=$(now)
        if ! cargo "+$toolchain" fuzz run "${build_flags[@]}" "$target" "$copy" -- \
            -max_total_time="$seconds" -timeout="$timeout" -print_final_stats=1 \
            "${options[@]}" >"$fuzz_log" 2>&1; then
            show_failure "$fuzz_log"
            failed+=("$target: crash while fuzzing, see fuzz/artifacts/$target/")
        fi
        fuzz_time=$(($(now) - start))
        fuzz_stats=$(stats "$fuzz_log")
        log "$target: fuzzed ${fuzz_time}s ($fuzz_stats)"
    elif ! $replay_ok; then
        fuzz_stats="skipped: the corpus replay fails"
    fi

    summary+=("$(printf '%-16s build %4ss  replay %3ss  fuzz %4ss  %s' \
        "$target" "$build_time" "$replay_time" "$fuzz_time" "$fuzz_stats")")
done

log "=== summary (sanitizer: $sanitizer, ${seconds}s of fuzzing per target)"
for line in "${summary[@]}"; do
    log "$line"
done
if [ "${#failed[@]}" -gt 0 ]; then
    log "FAILED:"
    for line in "${failed[@]}"; do
        log "  $line"
    done
    exit 1
fi
log "all targets clean"
