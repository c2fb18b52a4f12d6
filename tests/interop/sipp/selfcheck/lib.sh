# Shared by run-selfcheck.sh and run-selfcheck-2.sh (sourced, not run): the case runner.
#
# Each case runs two SIPp instances on 127.0.0.1 (the scenario under test and its counterpart,
# each on its own port from BASE_PORT on) with
#   -m 1 -timeout $TIMEOUT -timeout_error -trace_err -trace_msg
# in the background; `finish` waits for all of them, prints one line per case and fails when
# any case did. Both SIPp exit codes are compared with the expected ones, and every message of
# a passing pair is linted (lint_trace.py).
#
# The sourcing script sets SC (the scenario directory), BASE_PORT, TIMEOUT and OUT, and calls
# `neg` for its negative variants, `run_pair` for each case and `finish` at the end.

SIPP=${SIPP:-sipp}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
P=$HERE
FILTER=("$@")
N=0
NAMES=()
mkdir -p "$OUT/neg"
NG=$OUT/neg

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
    local common=(-i 127.0.0.1 -m 1 -timeout "$TIMEOUT" -timeout_error -trace_err -trace_msg)
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

# run_pair NAME UAS_XML UAC_XML EXPECT_UAS EXPECT_UAC [LINT_FLAGS]: start one case in the
# background.
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

# finish: wait for every case, print the results in order, exit 0 only if all passed.
finish() {
    wait
    local failed=0 name line
    for name in "${NAMES[@]}"; do
        line=$(cat "$OUT/$name/result" 2>/dev/null || echo "FAIL $name: no result")
        echo "$line"
        [[ "$line" == PASS* ]] || failed=$((failed + 1))
    done
    echo "# $N cases, $failed failed; logs in $OUT"
    [ "$failed" -eq 0 ]
}

echo "# SIPp: $("$SIPP" -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -n 1); logs in $OUT"
