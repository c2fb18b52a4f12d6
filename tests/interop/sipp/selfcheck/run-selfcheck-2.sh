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

SC=$(cd "$(dirname "$0")/.." && pwd)   # tests/interop/sipp
BASE_PORT=${BASE_PORT:-25160}
TIMEOUT=120s
OUT=${OUT:-$(mktemp -d /tmp/sipp-selfcheck-2.XXXXXX)}
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

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

finish
