#!/usr/bin/env bash
# Runs the second set of SIPp scenarios (delayed offer, early media, UPDATE,
# session timers, 422, re-INVITE moving media) against the real
# switchboard-cli, all in parallel on 127.0.0.1, each on its own pair of
# ports. For each case: start the CLI (listen, waiting for its "listening"
# event) or sipp (UAS, 0.5 s head start), run the other side with
#   -m 1 -timeout <per case> -timeout_error -trace_err -trace_msg
# then stop the CLI (by its pid) and report sipp's exit code, the CLI's exit
# code where it matters, and the run time. The whole run takes about 92 s
# (the longest case waits for two refreshes, at 45 s and 90 s; about 106 s
# when the CLI sends BYE instead of its second refresh).
#
# Usage: tests/interop/sipp/run-against-cli-2.sh            (all cases)
#        tests/interop/sipp/run-against-cli-2.sh hold 422   (names that match)
# Env:   CLI (default: target/debug/switchboard-cli of this checkout),
#        SIPP (default sipp), BASE_PORT (default 27060; case k uses
#        BASE_PORT+2k for sipp and +2k+1 for the CLI), OUT (log dir).
# Exit:  0 when every case passed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
CLI=${CLI:-$ROOT/target/debug/switchboard-cli}
SIPP=${SIPP:-sipp}
BASE_PORT=${BASE_PORT:-27060}
OUT=${OUT:-$(mktemp -d /tmp/sipp-cli-2.XXXXXX)}
FILTER=("$@")
N=0
NAMES=()

selected() {
    [ ${#FILTER[@]} -eq 0 ] && return 0
    local f
    for f in "${FILTER[@]}"; do [[ "$1" == *"$f"* ]] && return 0; done
    return 1
}

# uac_case NAME XML TIMEOUT CLI-LISTEN-ARGS...: the CLI listens, sipp calls.
uac_case() {
    local name=$1 xml=$2 timeout=$3; shift 3
    selected "$name" || return 0
    local sp=$((BASE_PORT + 2 * N)) cp=$((BASE_PORT + 2 * N + 1))
    N=$((N + 1))
    NAMES+=("$name")
    local d="$OUT/$name"
    mkdir -p "$d"
    (
        cd "$d" || exit 1
        t0=$SECONDS
        "$CLI" listen --bind "udp:127.0.0.1:$cp" "$@" >cli.out 2>cli.err &
        cli_pid=$!
        for _ in $(seq 50); do
            grep -q '"event":"listening"' cli.out 2>/dev/null && break
            sleep 0.1
        done
        "$SIPP" -sf "$HERE/$xml" -i 127.0.0.1 -p "$sp" -m 1 -timeout "$timeout" -timeout_error \
            -trace_err -trace_msg -message_file sipp.msg.log -error_file sipp.err.log \
            "127.0.0.1:$cp" </dev/null >sipp.out 2>&1
        rc=$?
        kill "$cli_pid" 2>/dev/null
        wait "$cli_pid" 2>/dev/null
        verdict=PASS
        [ "$rc" -eq 0 ] || verdict=FAIL
        printf '%-4s %-40s sipp=%-3s %4ss  (CLI: listen --bind udp:127.0.0.1:%s %s)\n' \
            "$verdict" "$name" "$rc" $((SECONDS - t0)) "$cp" "$*" >result
    ) &
}

# uas_case NAME XML TIMEOUT CLI-CALL-ARGS...: sipp answers, the CLI calls.
# The CLI must exit 0 and, for early media, print a progress event with
# "early_media":true before "answered".
uas_case() {
    local name=$1 xml=$2 timeout=$3; shift 3
    selected "$name" || return 0
    local sp=$((BASE_PORT + 2 * N)) cp=$((BASE_PORT + 2 * N + 1))
    N=$((N + 1))
    NAMES+=("$name")
    local d="$OUT/$name"
    mkdir -p "$d"
    (
        cd "$d" || exit 1
        t0=$SECONDS
        "$SIPP" -sf "$HERE/$xml" -i 127.0.0.1 -p "$sp" -m 1 -timeout "$timeout" -timeout_error \
            -trace_err -trace_msg -message_file sipp.msg.log -error_file sipp.err.log \
            </dev/null >sipp.out 2>&1 &
        sipp_pid=$!
        sleep 0.5
        timeout 60 "$CLI" call "sip:service@127.0.0.1:$sp" --bind "udp:127.0.0.1:$cp" "$@" \
            >cli.out 2>cli.err
        crc=$?
        wait "$sipp_pid"
        rc=$?
        verdict=PASS why=""
        [ "$rc" -eq 0 ] || verdict=FAIL
        [ "$crc" -eq 0 ] || { verdict=FAIL; why+=" cli rc=$crc (want 0)"; }
        if [[ "$name" == *early-media* ]]; then
            events=$(grep -o '"event":"[a-z-]*"\|"early_media":true' cli.out | tr '\n' ' ')
            [[ "$events" == *'"event":"progress" "early_media":true'*'"event":"answered"'* ]] \
                || { verdict=FAIL; why+=" no early-media progress before answered"; }
        fi
        printf '%-4s %-40s sipp=%-3s %4ss  (CLI: call ... --bind udp:127.0.0.1:%s %s; exit %s)%s\n' \
            "$verdict" "$name" "$rc" $((SECONDS - t0)) "$cp" "$*" "$crc" "$why" >result
    ) &
}

echo "# $("$SIPP" -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -n 1); CLI $CLI; logs in $OUT"

uac_case delayed-offer                   uac-delayed-offer.xml                   20s  --auto-answer
uas_case early-media                     uas-early-media.xml                     20s  --hangup-after 1
uac_case update-hold                     uac-update-hold.xml                     20s  --auto-answer
uac_case session-timer-cli-refreshes     uac-session-timer-cli-refreshes.xml     90s  --auto-answer
uac_case session-timer-cli-refreshes-twice uac-session-timer-cli-refreshes-twice.xml 120s --auto-answer
uac_case session-timer-expires           uac-session-timer-expires.xml           90s  --auto-answer
uac_case session-interval-too-small      uac-session-interval-too-small.xml      20s  --auto-answer
uac_case reinvite-moves-media            uac-reinvite-moves-media.xml            20s  --auto-answer

wait
FAILED=0
for name in "${NAMES[@]}"; do
    line=$(cat "$OUT/$name/result" 2>/dev/null || echo "FAIL $name: no result")
    echo "$line"
    [[ "$line" == PASS* ]] || FAILED=$((FAILED + 1))
    if [[ "$line" != PASS* ]]; then
        # The reason: the first line of each entry of SIPp's error log,
        # without the harmless epoll line SIPp 3.6.1 writes at exit.
        python3 - "$OUT/$name/sipp.err.log" <<'PY'
import re, sys
try:
    text = open(sys.argv[1], errors="replace").read()
except OSError:
    sys.exit(0)
for entry in re.split(r"\d{4}-\d\d-\d\d\t[\d:.]+\t[\d.]+: ", text)[1:]:
    first = entry.split("\n", 1)[0].strip()
    if first and "Failed to delete FD from epoll" not in first:
        print("       " + first[:240])
PY
    fi
done
echo "# $N cases, $FAILED failed; logs in $OUT"
[ "$FAILED" -eq 0 ]
