#!/usr/bin/env bash
# Self-check of the SIPp interop scenarios: every scenario in .. is run on
# 127.0.0.1 against a SIPp counterpart that plays switchboard-cli's part
# (peer-*.xml here, or the mirror scenario in ..), with
#   -m 1 -timeout 20s -timeout_error -trace_err -trace_msg
# Both SIPp exit codes are compared with the expected ones, and every
# message SIPp sent is linted (lint_trace.py). Negative cases feed each
# checking scenario a deliberately wrong peer (sed-derived, under $OUT/neg)
# and expect the scenario under test to fail, to prove its checks bite.
#
# Usage: selfcheck/run-selfcheck.sh            (all cases)
#        selfcheck/run-selfcheck.sh cancel 100rel  (cases whose name matches)
# Env:   SIPP (default sipp), BASE_PORT (default 25060), OUT (log dir)
# Exit:  0 when every case passed.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
SC=$(dirname "$HERE")            # tests/interop/sipp
SIPP=${SIPP:-sipp}
BASE_PORT=${BASE_PORT:-25060}
OUT=${OUT:-$(mktemp -d /tmp/sipp-selfcheck.XXXXXX)}
mkdir -p "$OUT/neg"
FILTER=("$@")
N=0
FAILED=0

selected() {
    [ ${#FILTER[@]} -eq 0 ] && return 0
    local f
    for f in "${FILTER[@]}"; do [[ "$1" == *"$f"* ]] && return 0; done
    return 1
}

# run_pair NAME UAS_XML UAC_XML EXPECT_UAS EXPECT_UAC [LINT_FLAGS]
#   EXPECT_*: an exit code, "nz" for any non-zero code, or "-" (not checked).
run_pair() {
    local name=$1 uas=$2 uac=$3 exp_uas=$4 exp_uac=$5 lintflags=${6:-}
    selected "$name" || return 0
    local f
    for f in "$uas" "$uac"; do
        if [ ! -s "$f" ]; then
            echo "FAIL $name: no such scenario: $f"
            FAILED=$((FAILED + 1))
            return 0
        fi
    done
    local uas_port=$((BASE_PORT + 2 * N)) uac_port=$((BASE_PORT + 2 * N + 1))
    N=$((N + 1))
    local d="$OUT/$name"
    mkdir -p "$d"
    local common=(-i 127.0.0.1 -m 1 -timeout 20s -timeout_error -trace_err -trace_msg)
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
    local line
    line=$(printf '%-4s %-44s uas=%-3s uac=%-3s %3ss%s' "$verdict" "$name" "$rc_uas" "$rc_uac" $((SECONDS - t0)) "$why")
    echo "$line"
    [ "$verdict" = PASS ] || FAILED=$((FAILED + 1))
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
neg unknown-method-405         's/501 Not Implemented/405 Method Not Allowed/' "$P/peer-uac-unknown-method.xml"
neg cancel-ack-wrong-branch    's/branch=\[branch-9\]/branch=[branch]/' "$SC/uac-cancel-before-answer.xml"
neg hold-answer-sendrecv       's/a=recvonly/a=sendrecv/' "$P/peer-uac-reinvite-hold.xml"
neg uac-never-byes             's/<pause milliseconds="1000"\/>/<pause milliseconds="12000"\/>/' "$SC/uac-bye-from-uac.xml"
neg uac-expect-bye-from-tag    's/^\([[:blank:]]*From: \[$inv_to\];tag=\)/\1x/' "$P/peer-uac-expect-bye.xml"
neg busy-ack-new-branch        's/branch=\[branch-3\]/branch=[branch]/' "$P/peer-uas-busy-486.xml"
neg allow-without-invite       's/^\([[:blank:]]*Allow: \)INVITE, /\1/' "$P/peer-uac-options.xml"
neg unknown-method-200         's/501 Not Implemented/200 OK/' "$P/peer-uac-unknown-method.xml"
neg unknown-method-405-no-allow 's/501 Not Implemented/405 Method Not Allowed/; /^[[:blank:]]*Allow:/d' "$P/peer-uac-unknown-method.xml"
neg malformed-200              's/400 Bad Request/200 OK/' "$P/peer-uac-malformed.xml"
neg 100rel-no-rseq             '/^[[:blank:]]*RSeq:/d' "$P/peer-uac-100rel.xml"
NG=$OUT/neg

# ---- positive cases --------------------------------------------------------
run_pair cancel-before-answer          "$P/peer-uac-cancel-before-answer.xml"          "$SC/uac-cancel-before-answer.xml" 0 0
run_pair cancel-before-answer-487first "$P/peer-uac-cancel-before-answer-487first.xml" "$SC/uac-cancel-before-answer.xml" 0 0
run_pair reinvite-hold                 "$P/peer-uac-reinvite-hold.xml"                 "$SC/uac-reinvite-hold.xml" 0 0
run_pair bye-from-uac+uas-expect-bye   "$SC/uas-expect-bye.xml"                        "$SC/uac-bye-from-uac.xml" 0 0
run_pair uac-expect-bye                "$P/peer-uac-expect-bye.xml"                    "$SC/uac-expect-bye.xml" 0 0
run_pair uas-busy-486                  "$SC/uas-busy-486.xml"                          "$P/peer-uas-busy-486.xml" 0 0
run_pair options                       "$P/peer-uac-options.xml"                       "$SC/uac-options.xml" 0 0
run_pair unknown-method-501            "$P/peer-uac-unknown-method.xml"                "$SC/uac-unknown-method.xml" 0 0
run_pair unknown-method-405            "$NG/unknown-method-405.xml"                    "$SC/uac-unknown-method.xml" 0 0
run_pair malformed                     "$P/peer-uac-malformed.xml"                     "$SC/uac-malformed.xml" 0 0 --allow-cseq-violation
run_pair malformed-bad-cseq            "$P/peer-uac-malformed.xml"                     "$SC/uac-malformed-bad-cseq.xml" 0 0 --allow-cseq-violation
run_pair 100rel                        "$P/peer-uac-100rel.xml"                        "$SC/uac-100rel.xml" 0 0

# ---- negative cases: the side under test must fail with exit code 1 --------
# (1 = "at least one call failed"; a scenario that does not even load exits
# 255, so expecting exactly 1 keeps a broken file from passing as negative.)
run_pair NEG-cancel-ack-new-branch-caught-by-peer  "$P/peer-uac-cancel-before-answer.xml" "$NG/cancel-ack-wrong-branch.xml" 1 -
run_pair NEG-reinvite-hold-answered-sendrecv       "$NG/hold-answer-sendrecv.xml"          "$SC/uac-reinvite-hold.xml" - 1
run_pair NEG-uas-expect-bye-no-bye                 "$SC/uas-expect-bye.xml"                "$NG/uac-never-byes.xml" 1 -
run_pair NEG-uac-expect-bye-wrong-from-tag         "$NG/uac-expect-bye-from-tag.xml"       "$SC/uac-expect-bye.xml" - 1
run_pair NEG-uas-busy-486-ack-new-branch           "$SC/uas-busy-486.xml"                  "$NG/busy-ack-new-branch.xml" 1 -
run_pair NEG-options-allow-without-invite          "$NG/allow-without-invite.xml"          "$SC/uac-options.xml" - 1
run_pair NEG-unknown-method-answered-200           "$NG/unknown-method-200.xml"            "$SC/uac-unknown-method.xml" - 1
run_pair NEG-unknown-method-405-without-allow      "$NG/unknown-method-405-no-allow.xml"   "$SC/uac-unknown-method.xml" - 1
run_pair NEG-malformed-answered-200                "$NG/malformed-200.xml"                 "$SC/uac-malformed.xml" - 1
run_pair NEG-100rel-180-without-rseq               "$NG/100rel-no-rseq.xml"                "$SC/uac-100rel.xml" - 1

echo "# $N cases, $FAILED failed; logs in $OUT"
[ "$FAILED" -eq 0 ]
