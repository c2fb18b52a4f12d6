#!/bin/bash
# selfcheck.sh [WORKDIR]
#
# Proves that kamailio.cfg works as registrar + proxy on 127.0.0.1, using
# SIPp (UDP/TCP), openssl s_client and sip-flow-client.py (TLS and SHA-256,
# which Debian's SIPp 3.6.1 cannot do). Starts its own Kamailio instances on
# free ports, stops them (SIGTERM, then checks that no worker is left), and
# prints one PASS/FAIL line per check plus a summary. Exit 0 = all passed.
# Logs and SIPp traces stay in WORKDIR (default: a new /tmp directory).
#
# Needs: kamailio, kamailio-tls-modules, sip-tester (SIPp), openssl, python3.
# Takes about 20 seconds. Safe to run as root; touches nothing outside
# WORKDIR except loopback ports.
set -u

here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d /tmp/switchboard-kamailio-selfcheck.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
results=$work/results.txt
: >"$results"
failures=0
run_id=$$

for tool in kamailio sipp openssl python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

# ---------------------------------------------------------------- helpers

# Background processes we started (kamailio main pids, sipp, python).
started=()
cleanup() {
	for pid in "${started[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

result() { # STATUS NAME [DETAIL]
	local line
	line=$(printf '%-4s  %s%s' "$1" "$2" "${3:+  ($3)}")
	echo "$line" | tee -a "$results"
	[ "$1" = FAIL ] && failures=$((failures + 1))
	return 0
}

# A port number free for both UDP and TCP on 127.0.0.1.
free_port() {
	python3 - <<'EOF'
import socket
while True:
    t = socket.socket(); t.bind(("127.0.0.1", 0)); p = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        t.close(); u.close()
EOF
}

now_ms() { date +%s%3N; }

# start_kamailio NAME [run-kamailio.sh options]: sets KPID, KLOG, KDIR,
# SIP_PORT (UDP and TCP); waits until ready (log line + OPTIONS 200).
start_kamailio() {
	local name=$1
	shift
	KDIR=$work/$name
	mkdir -p "$KDIR"
	KLOG=$KDIR/kamailio.log
	SIP_PORT=$(free_port)
	local t0 i
	t0=$(now_ms)
	"$here/run-kamailio.sh" -u "$SIP_PORT" -r "$KDIR/run" "$@" >"$KLOG" 2>&1 &
	KPID=$!
	started+=("$KPID")
	for i in $(seq 200); do
		if grep -q SWITCHBOARD-KAMAILIO-READY "$KLOG" 2>/dev/null; then
			break
		fi
		if ! kill -0 "$KPID" 2>/dev/null; then
			result FAIL "kamailio $name starts" "exited early; see $KLOG"
			return 1
		fi
		sleep 0.05
	done
	local t_log
	t_log=$(($(now_ms) - t0))
	for i in $(seq 100); do
		python3 "$here/sip-flow-client.py" --options --port "$SIP_PORT" --timeout 1 \
			>/dev/null 2>&1 && break
		sleep 0.05
	done
	local t_probe
	t_probe=$(($(now_ms) - t0))
	if python3 "$here/sip-flow-client.py" --options --port "$SIP_PORT" --timeout 2 >/dev/null 2>&1 &&
		python3 "$here/sip-flow-client.py" --options --transport tcp --port "$SIP_PORT" --timeout 2 >/dev/null 2>&1; then
		result PASS "kamailio $name starts" "READY log line after ${t_log} ms; first OPTIONS 200 (fresh python3 probe) at ${t_probe} ms; UDP+TCP port $SIP_PORT"
	else
		result FAIL "kamailio $name starts" "no 200 to OPTIONS; see $KLOG"
		return 1
	fi
}

# stop_kamailio: SIGTERM to the main pid, then make sure no worker is left.
stop_kamailio() {
	local children i
	children=$(pgrep -P "$KPID" | tr '\n' ' ')
	local t0
	t0=$(now_ms)
	kill -TERM "$KPID" 2>/dev/null
	for i in $(seq 200); do
		kill -0 "$KPID" 2>/dev/null || break
		sleep 0.05
	done
	wait "$KPID" 2>/dev/null
	local left=""
	for i in $children; do
		kill -0 "$i" 2>/dev/null && left="$left $i"
	done
	if [ -z "$left" ] && [ ! -e "$KDIR/run/kamailio.pid" ]; then
		result PASS "kamailio stops on SIGTERM" "main exited after $(($(now_ms) - t0)) ms; all workers gone, pid file removed"
	else
		result FAIL "kamailio stops on SIGTERM" "left:$left"
		for i in $left; do kill -KILL "$i" 2>/dev/null; done
	fi
}

# sipp_run DIR NAME [sipp args]: runs SIPp in DIR (traces land there).
SIPP_COMMON=(-i 127.0.0.1 -m 1 -timeout 30s -timeout_error -nostdin -trace_err -trace_msg)
sipp_run() {
	local dir=$1 name=$2
	shift 2
	mkdir -p "$dir"
	(cd "$dir" && exec sipp "${SIPP_COMMON[@]}" "$@" >"$name.out" 2>&1)
}

# wait_for FILE PATTERN: up to 10 s.
wait_for() {
	local i
	for i in $(seq 200); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# call_test NAME BOB_TRANSPORT ALICE_TRANSPORT DOMAIN
# bob (SIPp) registers and answers; alice (SIPp) calls sip:bob@DOMAIN.
call_test() {
	local name=$1 bt=$2 at=$3 domain=$4
	local dir=$work/$name bport aport cid brc arc
	bport=$(free_port)
	aport=$(free_port)
	cid="%u-selfcheck-$run_id-$name@127.0.0.1"
	mkdir -p "$dir"
	local bopts=() aopts=()
	[ "$bt" = tcp ] && bopts=(-t t1)
	[ "$at" = tcp ] && aopts=(-t t1)
	sipp_run "$dir" bob -sf "$here/bob-register-answer.xml" "${bopts[@]}" -p "$bport" \
		-s bob -au bob -ap bob-secret -key domain "$domain" -cid_str "$cid" \
		"127.0.0.1:$SIP_PORT" &
	local bpid=$!
	started+=("$bpid")
	if ! wait_for "$KLOG" "REGISTERED bob from 127.0.0.1:$bport ($bt)"; then
		result FAIL "$name" "bob did not register; see $dir"
		kill -TERM "$bpid" 2>/dev/null
		return
	fi
	sipp_run "$dir" alice -sf "$here/alice-call.xml" "${aopts[@]}" -p "$aport" \
		-s bob -key caller alice -au alice -ap alice-secret -key domain "$domain" \
		-cid_str "$cid" "127.0.0.1:$SIP_PORT"
	arc=$?
	wait "$bpid"
	brc=$?
	if [ "$arc" = 0 ] && [ "$brc" = 0 ]; then
		result PASS "$name" "bob over $bt, alice over $at, sip:bob@$domain: INVITE on bob's registration flow, 200/ACK, BYE from bob on alice's flow"
	else
		result FAIL "$name" "alice sipp rc=$arc, bob sipp rc=$brc; see $dir"
	fi
}

echo "selfcheck work dir: $work"
echo "kamailio: $(kamailio -v 2>/dev/null | head -1)"
echo "sipp: $(sipp -v 2>/dev/null | grep -o 'SIPp v[^ ]*' | head -1)"

# ------------------------------------------------------- certificates

if "$here/make-certs.sh" "$work/certs" >"$work/make-certs.out" 2>&1; then
	result PASS "make-certs.sh" "CA + sip.test/127.0.0.1 + other.test in $work/certs"
else
	result FAIL "make-certs.sh" "see $work/make-certs.out"
fi
CERTS=$work/certs

# ------------------------------------------------ instance 1: MD5, TLS on
TLS_PORT=$(free_port)
if start_kamailio main -s "$TLS_PORT" -c "$CERTS"; then
	# (a) REGISTER with digest, UDP and TCP, both domains.
	d=$work/register-udp
	if sipp_run "$d" sipp -sf "$here/register-auth.xml" -p "$(free_port)" \
		-s alice -au alice -ap alice-secret -key domain sip.test "127.0.0.1:$SIP_PORT"; then
		result PASS "register-udp" "REGISTER sip:sip.test -> 401 -> 200 (SIPp, MD5)"
	else
		result FAIL "register-udp" "see $d"
	fi
	d=$work/register-tcp
	if sipp_run "$d" sipp -sf "$here/register-auth.xml" -t t1 -p "$(free_port)" \
		-s alice -au alice -ap alice-secret -key domain 127.0.0.1 "127.0.0.1:$SIP_PORT"; then
		result PASS "register-tcp" "REGISTER sip:127.0.0.1 -> 401 -> 200 (SIPp -t t1, MD5)"
	else
		result FAIL "register-tcp" "see $d"
	fi
	d=$work/register-wrong-password
	if sipp_run "$d" sipp -sf "$here/register-wrong-password.xml" -p "$(free_port)" \
		-s alice -au alice -ap not-the-password -key domain sip.test "127.0.0.1:$SIP_PORT"; then
		result PASS "register-wrong-password" "wrong password -> 401 again, no 200"
	else
		result FAIL "register-wrong-password" "see $d"
	fi

	# (b) calls through the proxy, callee registered RFC 5626 style.
	call_test call-bob-tcp-alice-udp tcp udp sip.test
	call_test call-bob-udp-alice-tcp udp tcp sip.test
	call_test call-bob-tcp-alice-tcp tcp tcp sip.test

	# (c) TLS. First: can this SIPp do TLS at all?
	timeout 10 sipp -t l1 -i 127.0.0.1 -m 1 -sn uac -timeout 2s -nostdin "127.0.0.1:$TLS_PORT" \
		>"$work/sipp-tls-probe.out" 2>&1
	if grep -q 'compile SIPp with OpenSSL' "$work/sipp-tls-probe.out"; then
		result INFO "sipp-tls" "this SIPp has no TLS (\"To use a TLS transport you must compile SIPp with OpenSSL\"); TLS is checked with openssl s_client and sip-flow-client.py instead"
	else
		result INFO "sipp-tls" "this SIPp seems to have TLS; not used here (see $work/sipp-tls-probe.out)"
	fi
	# Handshake with the good certificate: name and IP both verified.
	if echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -CAfile "$CERTS/ca.pem" \
		-verify_return_error -verify_hostname sip.test >"$work/s_client-good.out" 2>&1; then
		result PASS "tls-handshake-sip.test" "openssl s_client -verify_hostname sip.test: Verify return code 0"
	else
		result FAIL "tls-handshake-sip.test" "see $work/s_client-good.out"
	fi
	if echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -CAfile "$CERTS/ca.pem" \
		-verify_return_error -verify_ip 127.0.0.1 >"$work/s_client-ip.out" 2>&1; then
		result PASS "tls-handshake-ip" "openssl s_client -verify_ip 127.0.0.1: Verify return code 0"
	else
		result FAIL "tls-handshake-ip" "see $work/s_client-ip.out"
	fi
	# REGISTER over TLS, then a call to bob over that same TLS connection.
	d=$work/call-bob-tls-alice-udp
	mkdir -p "$d"
	python3 "$here/sip-flow-client.py" --transport tls --port "$TLS_PORT" --ca "$CERTS/ca.pem" \
		--server-name sip.test --user bob --password bob-secret --answer --timeout 20 \
		>"$d/bob.out" 2>&1 &
	bpid=$!
	started+=("$bpid")
	if wait_for "$d/bob.out" "registered bob over TLS"; then
		sipp_run "$d" alice -sf "$here/alice-call.xml" -p "$(free_port)" -s bob -key caller alice \
			-au alice -ap alice-secret -key domain sip.test "127.0.0.1:$SIP_PORT"
		arc=$?
	else
		arc=noreg
	fi
	wait "$bpid"
	brc=$?
	if [ "$arc" = 0 ] && [ "$brc" = 0 ]; then
		result PASS "call-bob-tls-alice-udp" "bob REGISTERed over TLS (cert verified), INVITE arrived on that TLS connection, call completed"
	else
		result FAIL "call-bob-tls-alice-udp" "alice rc=$arc bob rc=$brc; see $d"
	fi
	stop_kamailio
fi

# ---------------------------------------------- instance 2: SHA-256 digest
if start_kamailio sha256 -2; then
	d=$work/sha256
	mkdir -p "$d"
	if python3 "$here/sip-flow-client.py" --port "$SIP_PORT" --user alice --password alice-secret \
		--expect-algorithm SHA-256 >"$d/udp.out" 2>&1 &&
		python3 "$here/sip-flow-client.py" --transport tcp --port "$SIP_PORT" --user bob \
			--password bob-secret --expect-algorithm SHA-256 >"$d/tcp.out" 2>&1; then
		result PASS "digest-sha256" "401 says algorithm=SHA-256; SHA-256 credentials -> 200 (UDP and TCP)"
	else
		result FAIL "digest-sha256" "see $d"
	fi
	if python3 "$here/sip-flow-client.py" --port "$SIP_PORT" --user alice --password wrong \
		>"$d/wrong.out" 2>&1; then
		result FAIL "digest-sha256-wrong-password" "accepted a wrong password"
	else
		result PASS "digest-sha256-wrong-password" "SHA-256 with wrong password -> 401 again"
	fi
	# SIPp 3.6.1 only does MD5 and AKAv1-MD5: expected to fail here.
	if sipp_run "$d" sipp -sf "$here/register-auth.xml" -p "$(free_port)" -s alice -au alice \
		-ap alice-secret -key domain sip.test "127.0.0.1:$SIP_PORT"; then
		result INFO "sipp-sha256" "SIPp handled SHA-256"
	else
		result INFO "sipp-sha256" "SIPp 3.6.1 cannot answer a SHA-256 challenge (\"authentication must use MD5 or AKAv1-MD5\"), as expected"
	fi
	stop_kamailio
fi

# ------------------------------- instance 3: wrong-name cert via tls.cfg
mkdir -p "$work/wrongname"
sed -e "s|@CERT@|$CERTS/other.pem|" -e "s|@KEY@|$CERTS/other.key|" "$here/tls.cfg" \
	>"$work/wrongname/tls.cfg"
TLS_PORT=$(free_port)
if start_kamailio wrongname -s "$TLS_PORT" -C "$work/wrongname/tls.cfg"; then
	if echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -CAfile "$CERTS/ca.pem" \
		-verify_return_error -verify_hostname sip.test >"$work/wrongname/s_client-sip.test.out" 2>&1; then
		result FAIL "tls-wrong-name-rejected" "handshake verified sip.test against the other.test cert"
	elif grep -q 'hostname mismatch' "$work/wrongname/s_client-sip.test.out"; then
		result PASS "tls-wrong-name-rejected" "s_client -verify_hostname sip.test fails: hostname mismatch (code 62)"
	else
		result FAIL "tls-wrong-name-rejected" "failed, but not on the name; see $work/wrongname"
	fi
	if echo | timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -CAfile "$CERTS/ca.pem" \
		-verify_return_error -verify_hostname other.test >"$work/wrongname/s_client-other.test.out" 2>&1; then
		result PASS "tls-wrong-name-chain-ok" "same server verifies as other.test (only the name is wrong; tls.cfg profile works)"
	else
		result FAIL "tls-wrong-name-chain-ok" "see $work/wrongname"
	fi
	if python3 "$here/sip-flow-client.py" --transport tls --port "$TLS_PORT" --ca "$CERTS/ca.pem" \
		--server-name sip.test --user bob --password bob-secret >"$work/wrongname/client.out" 2>&1; then
		result FAIL "tls-wrong-name-client" "client accepted the other.test certificate"
	else
		result PASS "tls-wrong-name-client" "python ssl client refuses: $(grep -o 'Hostname mismatch[^(]*' "$work/wrongname/client.out" | head -1)"
	fi
	stop_kamailio
fi

echo
echo "== summary ($results)"
grep -c '^PASS' "$results" | sed 's/^/passed: /'
echo "failed: $failures"
[ "$failures" = 0 ]
