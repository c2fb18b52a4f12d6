#!/usr/bin/env bash
# Self-check of the SIPp interop scenarios: every scenario in .. is run on
# 127.0.0.1 against a SIPp counterpart that plays switchboard-cli's part
# (peer-*.xml here, or the mirror scenario in ..), with
#   -m 1 -timeout 20s -timeout_error -trace_err -trace_msg (lib.sh; all cases in parallel)
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

SC=$(cd "$(dirname "$0")/.." && pwd)   # tests/interop/sipp
BASE_PORT=${BASE_PORT:-25060}
TIMEOUT=20s
OUT=${OUT:-$(mktemp -d /tmp/sipp-selfcheck.XXXXXX)}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

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

finish
