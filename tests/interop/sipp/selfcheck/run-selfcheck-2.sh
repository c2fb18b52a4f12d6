#!/usr/bin/env bash
# Self-check of the second set of SIPp interop scenarios (delayed offer,
# early media, UPDATE, session timers, 422, re-INVITE moving media): every
# scenario is run on 127.0.0.1 against a SIPp counterpart that plays
# switchboard-cli's part (peer-*.xml here), with
#   -m 1 -timeout 120s -timeout_error -trace_err -trace_msg
# Both SIPp exit codes are compared with the expected ones, and every message
# SIPp sent is linted (lint_trace.py). Negative cases feed a scenario a
# deliberately wrong peer (sed-derived, under $OUT/neg) and expect the side
# under test to fail with exit code 1.
#
# The session-timer cases wait 45, 60 and 90 s, so all cases run in parallel
# (each on its own pair of ports); the whole run takes about 110 s.
#
# Usage: selfcheck/run-selfcheck-2.sh                 (all cases)
#        selfcheck/run-selfcheck-2.sh update 422      (cases whose name matches)
# Env:   SIPP (default sipp), BASE_PORT (default 25160), OUT (log dir)
# Exit:  0 when every case passed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SC=$(dirname "$HERE")            # tests/interop/sipp
SIPP=${SIPP:-sipp}
BASE_PORT=${BASE_PORT:-25160}
OUT=${OUT:-$(mktemp -d /tmp/sipp-selfcheck-2.XXXXXX)}
mkdir -p "$OUT/neg"
FILTER=("$@")
N=0
NAMES=()

selected() {
    [ ${#FILTER[@]} -eq 0 ] && return 0
    local f
    for f in "${FILTER[@]}"; do [[ "$1" == *"$f"* ]] && return 0; done
    return 1
}

# one_case NAME UAS_XML UAC_XML EXPECT_UAS EXPECT_UAC UAS_PORT UAC_PORT [LINT_FLAGS]
#   EXPECT_*: an exit code, "nz" for any non-zero code, or "-" (not checked).
#   Writes one result line to $OUT/NAME/result.
one_case() {
    local name=$1 uas=$2 uac=$3 exp_uas=$4 exp_uac=$5 uas_port=$6 uac_port=$7 lintflags=${8:-}
    local d="$OUT/$name"
    local common=(-i 127.0.0.1 -m 1 -timeout 120s -timeout_error -trace_err -trace_msg)
    local t0=$SECONDS
    ( cd "$d" && exec "$SIPP" -sf "$uas" -p "$uas_port" "${common[@]}" \
        -message_file uas.msg.log -error_file uas.err.log \
        </dev/null >uas.out 2>&1 ) &
    local uas_pid=$!
    sleep 0.5
    ( cd "$d" && exec "$SIPP" -sf "$uac" -p "$uac_port" "${common[@]}" \
        -message_file uac.msg.log -error_file uac.err.log \
        "127.0.0.1:$uas_port" </dev/null >uac.out 2>&1 )
    local rc_uac=$?
    wait "$uas_pid"
    local rc_uas=$?
    local verdict=PASS why=""
    check_rc() { # which expected actual
        case $2 in
            -) ;;
            nz) [ "$3" -ne 0 ] || { verdict=FAIL; why+=" $1 rc=$3 (want non-zero)"; } ;;
            *) [ "$3" -eq "$2" ] || { verdict=FAIL; why+=" $1 rc=$3 (want $2)"; } ;;
        esac
    }
    check_rc uas "$exp_uas" "$rc_uas"
    check_rc uac "$exp_uac" "$rc_uac"
    if [ "$exp_uas" = 0 ] && [ "$exp_uac" = 0 ]; then
        # shellcheck disable=SC2086
        if ! python3 "$HERE/lint_trace.py" $lintflags "$d/uas.msg.log" "$d/uac.msg.log" >"$d/lint.out" 2>&1; then
            verdict=FAIL
            why+=" lint: $(tail -n 1 "$d/lint.out")"
        fi
    fi
    printf '%-4s %-46s uas=%-3s uac=%-3s %3ss%s\n' "$verdict" "$name" "$rc_uas" "$rc_uac" $((SECONDS - t0)) "$why" >"$d/result"
}

# run_pair NAME UAS_XML UAC_XML EXPECT_UAS EXPECT_UAC [LINT_FLAGS]: start one
# case in the background.
run_pair() {
    local name=$1 uas=$2 uac=$3
    selected "$name" || return 0
    local uas_port=$((BASE_PORT + 2 * N)) uac_port=$((BASE_PORT + 2 * N + 1))
    N=$((N + 1))
    mkdir -p "$OUT/$name"
    NAMES+=("$name")
    local f
    for f in "$uas" "$uac"; do
        if [ ! -s "$f" ]; then
            echo "FAIL $name: no such scenario: $f" >"$OUT/$name/result"
            return 0
        fi
    done
    one_case "$name" "$uas" "$uac" "$4" "$5" "$uas_port" "$uac_port" "${6:-}" &
}

# neg NAME SED_EXPR SRC: write a sed-modified copy of SRC to $OUT/neg/NAME.xml
# (run at top level, not in $(...), so that a no-op edit aborts the script)
neg() {
    sed -e "$2" "$3" >"$OUT/neg/$1.xml" || exit 2
    if cmp -s "$3" "$OUT/neg/$1.xml"; then
        echo "neg $1: sed expression changed nothing in $3" >&2
        exit 2
    fi
}

P=$HERE
echo "# SIPp: $("$SIPP" -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -n 1); logs in $OUT"

# ---- negative variants (sed-derived copies) ---------------------------------
neg delayed-offer-no-pcmu      's/m=audio \[media_port\] RTP\/AVP 0 101/m=audio [media_port] RTP\/AVP 8 101/' "$P/peer-uac-delayed-offer.xml"
neg early-media-offer-no-pcmu  's/RTP\/AVP 0 101/RTP\/AVP 8 101/' "$P/peer-uas-early-media.xml"
neg early-media-ack-cseq       's/CSeq: \[cseq\] ACK/CSeq: 99 ACK/' "$P/peer-uas-early-media.xml"
neg update-hold-sendrecv       's/a=recvonly/a=sendrecv/' "$P/peer-uac-update-hold.xml"
neg refresh-update-says-uas    's/Session-Expires: 90;refresher=uac$/Session-Expires: 90;refresher=uas/' "$P/peer-uac-session-timer-cli-refreshes.xml"
neg refresh-update-too-early   's/<pause milliseconds="45000"\/>/<pause milliseconds="20000"\/>/' "$P/peer-uac-session-timer-cli-refreshes.xml"
neg refresh-200-requires-timer 's/^\([[:blank:]]*\)Session-Expires: 90;refresher=uas$/&\n\1Require: timer/' "$P/peer-uac-session-timer-cli-refreshes.xml"
neg expires-bye-too-early      's/<pause milliseconds="60000"\/>/<pause milliseconds="30000"\/>/' "$P/peer-uac-session-timer-expires.xml"
neg expires-200-no-require     '/^[[:blank:]]*Require: timer$/d' "$P/peer-uac-session-timer-expires.xml"
neg too-small-no-min-se        '/^[[:blank:]]*Min-SE:/d' "$P/peer-uac-session-interval-too-small.xml"
neg moves-media-version-jump   's/o=peer \[pid\] 2 /o=peer [pid] 3 /' "$P/peer-uac-reinvite-moves-media.xml"
NG=$OUT/neg

# ---- positive cases --------------------------------------------------------
run_pair delayed-offer                 "$P/peer-uac-delayed-offer.xml"                "$SC/uac-delayed-offer.xml" 0 0
run_pair early-media                   "$SC/uas-early-media.xml"                      "$P/peer-uas-early-media.xml" 0 0
run_pair update-hold                   "$P/peer-uac-update-hold.xml"                  "$SC/uac-update-hold.xml" 0 0
run_pair session-timer-cli-refreshes   "$P/peer-uac-session-timer-cli-refreshes.xml"  "$SC/uac-session-timer-cli-refreshes.xml" 0 0
run_pair session-timer-cli-refreshes-twice "$P/peer-uac-session-timer-cli-refreshes-twice.xml" "$SC/uac-session-timer-cli-refreshes-twice.xml" 0 0
run_pair session-timer-expires         "$P/peer-uac-session-timer-expires.xml"        "$SC/uac-session-timer-expires.xml" 0 0
run_pair session-interval-too-small    "$P/peer-uac-session-interval-too-small.xml"   "$SC/uac-session-interval-too-small.xml" 0 0
run_pair reinvite-moves-media          "$P/peer-uac-reinvite-moves-media.xml"         "$SC/uac-reinvite-moves-media.xml" 0 0

# ---- negative cases: the side under test must fail with exit code 1 --------
# (1 = "at least one call failed"; a scenario that does not even load exits
# 255, so expecting exactly 1 keeps a broken file from passing as negative.)
run_pair NEG-delayed-offer-200-without-pcmu        "$NG/delayed-offer-no-pcmu.xml"      "$SC/uac-delayed-offer.xml" - 1
run_pair NEG-early-media-offer-without-pcmu        "$SC/uas-early-media.xml"            "$NG/early-media-offer-no-pcmu.xml" 1 -
run_pair NEG-early-media-ack-wrong-cseq            "$SC/uas-early-media.xml"            "$NG/early-media-ack-cseq.xml" 1 -
run_pair NEG-update-hold-answered-sendrecv         "$NG/update-hold-sendrecv.xml"       "$SC/uac-update-hold.xml" - 1
run_pair NEG-refresh-update-says-refresher-uas     "$NG/refresh-update-says-uas.xml"    "$SC/uac-session-timer-cli-refreshes.xml" - 1
run_pair NEG-refresh-update-at-20s                 "$NG/refresh-update-too-early.xml"   "$SC/uac-session-timer-cli-refreshes.xml" - 1
run_pair NEG-refresh-200-requires-timer            "$NG/refresh-200-requires-timer.xml" "$SC/uac-session-timer-cli-refreshes.xml" - 1
run_pair NEG-refresh-twice-no-second-update         "$P/peer-uac-session-timer-cli-refreshes.xml" "$SC/uac-session-timer-cli-refreshes-twice.xml" - 1
run_pair NEG-expires-bye-at-30s                    "$NG/expires-bye-too-early.xml"      "$SC/uac-session-timer-expires.xml" - 1
run_pair NEG-expires-200-without-require           "$NG/expires-200-no-require.xml"     "$SC/uac-session-timer-expires.xml" - 1
run_pair NEG-too-small-422-without-min-se          "$NG/too-small-no-min-se.xml"        "$SC/uac-session-interval-too-small.xml" - 1
run_pair NEG-moves-media-o-version-jumps-by-2      "$NG/moves-media-version-jump.xml"   "$SC/uac-reinvite-moves-media.xml" - 1

wait
FAILED=0
for name in "${NAMES[@]}"; do
    line=$(cat "$OUT/$name/result" 2>/dev/null || echo "FAIL $name: no result")
    echo "$line"
    [[ "$line" == PASS* ]] || FAILED=$((FAILED + 1))
done
echo "# $N cases, $FAILED failed; logs in $OUT"
[ "$FAILED" -eq 0 ]
