#!/bin/bash
# selfcheck.sh [WORKDIR]
#
# Proves the baresip recipe end to end: baresip 1.0 ("alice") calls bob
# through the interop Kamailio (../kamailio), with no sound card and no
# stdin. bob is ../kamailio/sip-flow-client.py --answer --wait-bye --rtp:
# it registers, answers, exchanges PCMU RTP and waits for alice's BYE.
# Prints one PASS/FAIL line per check, with the measured timings. Exit 0 =
# all passed. Logs stay in WORKDIR (default: a new /tmp directory).
#
# Needs: baresip (1.0), kamailio + kamailio-tls-modules, openssl, python3.
# Takes about 35 seconds; mostly idle (calls are held for a few seconds).
set -u

here=$(cd "$(dirname "$0")" && pwd)
kam=$(cd "$here/../kamailio" && pwd)
work=${1:-$(mktemp -d /tmp/switchboard-baresip-selfcheck.XXXXXX)}
mkdir -p "$work"
work=$(cd "$work" && pwd)
results=$work/results.txt
: >"$results"
failures=0

for tool in baresip kamailio openssl python3; do
	command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 2; }
done

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

free_port() { # free for both UDP and TCP on 127.0.0.1
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

# wait_for FILE PATTERN [SECONDS]: fixed-string search, polled every 20 ms.
wait_for() {
	local i n=$((${3:-10} * 50))
	for ((i = 0; i < n; i++)); do
		grep -qF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}

# wait_exit PID SECONDS: 0 if PID exited within SECONDS (then EXIT_RC is set).
wait_exit() {
	local i n=$(($2 * 50))
	for ((i = 0; i < n; i++)); do
		if ! kill -0 "$1" 2>/dev/null; then
			wait "$1"
			EXIT_RC=$?
			return 0
		fi
		sleep 0.02
	done
	return 1
}

# ------------------------------------------------------------- Kamailio
"$kam/make-certs.sh" "$work/certs" >"$work/make-certs.out" 2>&1 ||
	{ result FAIL "make-certs.sh" "see $work/make-certs.out"; exit 1; }
KP=$(free_port)
TLSP=$(free_port)
mkdir -p "$work/kamailio"
KLOG=$work/kamailio/kamailio.log
"$kam/run-kamailio.sh" -u "$KP" -s "$TLSP" -c "$work/certs" -r "$work/kamailio/run" >"$KLOG" 2>&1 &
KPID=$!
started+=("$KPID")
if wait_for "$KLOG" SWITCHBOARD-KAMAILIO-READY 5; then
	result PASS "kamailio starts" "UDP/TCP 127.0.0.1:$KP, TLS $TLSP"
else
	result FAIL "kamailio starts" "see $KLOG"
	exit 1
fi

# A DNS "server" that only logs queries: proves baresip sends none.
DNSP=$(free_port)
python3 - "$DNSP" >"$work/dns-queries.log" 2>&1 <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    d, a = s.recvfrom(4096)
    print(f"query from {a}: {d[12:60]!r}", flush=True)
EOF
started+=($!)

# The microphone for every call: 60 s, 440 Hz, 8 kHz mono.
python3 "$here/make-wav.py" "$work/alice.wav" 60

# ------------------------------------------------------------- helpers

# start_bob DIR TRANSPORT [extra sip-flow-client args]: sets BOB
start_bob() {
	local dir=$1 t=$2
	shift 2
	local port=$KP extra=()
	[ "$t" = tls ] && { port=$TLSP; extra=(--ca "$work/certs/ca.pem" --server-name sip.test); }
	python3 "$kam/sip-flow-client.py" --transport "$t" --port "$port" "${extra[@]}" \
		--user bob --password bob-secret --answer --timeout 20 "$@" >"$dir/bob.out" 2>&1 &
	BOB=$!
	started+=("$BOB")
	wait_for "$dir/bob.out" "registered bob over" 5
}

# start_alice DIR [run-baresip.sh options] -- [baresip args]: sets ALICE, T0
start_alice() {
	local dir=$1
	shift
	T0=$(now_ms)
	"$here/run-baresip.sh" -d "$dir/alice" -w "$work/alice.wav" -N "127.0.0.1:$DNSP" "$@" </dev/null >"$dir/baresip.log" 2>&1 &
	ALICE=$!
	started+=("$ALICE")
}

# check_bob DIR [norx]: bob exited 0 after the caller's BYE and received
# RTP; unless "norx" (bob sends no RTP with --codec opus), baresip decoded
# bob's RTP (sndfile's decode dump holds more than a WAV header).
check_bob() {
	local dir=$1 rx=${2:-rx}
	wait_exit "$BOB" 10 || return 1
	[ "$EXIT_RC" = 0 ] || return 1
	grep -q "BYE from the caller" "$dir/bob.out" || return 1
	grep -q "RTP: received [1-9][0-9]* packets" "$dir/bob.out" || return 1
	[ "$rx" = norx ] && return 0
	local dec
	dec=$(ls "$dir"/alice/snd/dump-*-dec.wav 2>/dev/null | head -1)
	[ -n "$dec" ] && [ "$(stat -c %s "$dec")" -gt 1000 ]
}

rtp_summary() { grep -o "RTP: received [0-9]* packets" "$1/bob.out" | head -1; }

# ---------------------------------------------- 1. -e dial, -t hangs up
# cli_call NAME TRANSPORT CODEC: alice and bob both use TRANSPORT to
# Kamailio; bob answers with CODEC (pcmu or opus).
cli_call() {
	local name=$1 t=$2 codec=$3
	local d=$work/$name t_est t_exit
	mkdir -p "$d"
	if ! start_bob "$d" "$t" --wait-bye --rtp --codec "$codec"; then
		result FAIL "$name" "bob did not register; see $d"
		return
	fi
	if [ "$t" = tls ]; then
		start_alice "$d" -k "$TLSP" -T tls -A "$work/certs/ca.pem" -- -e "/dial sip:bob@sip.test" -t 4
	else
		start_alice "$d" -k "$KP" -T "$t" -- -e "/dial sip:bob@sip.test" -t 4
	fi
	if ! wait_for "$d/baresip.log" "Call established: " 5; then
		result FAIL "$name" "no 'Call established'; see $d"
		return
	fi
	t_est=$(($(now_ms) - T0))
	if ! wait_exit "$ALICE" 10; then
		result FAIL "$name" "baresip did not exit; see $d"
		return
	fi
	t_exit=$(($(now_ms) - T0))
	local enc
	enc=$(grep -o "Set audio encoder: .*" "$d/baresip.log" | head -1)
	if [ "$EXIT_RC" = 0 ] && grep -q "terminated (duration: " "$d/baresip.log" &&
		grep -qi "encoder: $codec" "$d/baresip.log" && check_bob "$d" "$([ "$codec" = opus ] && echo norx)"; then
		result PASS "$name" "alice and bob over $t, $enc: established ${t_est} ms after exec, -t 4 sent BYE, exit 0 at ${t_exit} ms; bob: $(rtp_summary "$d"), BYE $(grep -o '[0-9.]* s after the ACK' "$d/bob.out")"
	else
		result FAIL "$name" "baresip rc=$EXIT_RC, $enc; see $d"
	fi
}
cli_call cli-udp udp pcmu
cli_call cli-tcp tcp pcmu
cli_call cli-tls tls pcmu
cli_call cli-udp-opus udp opus

# ---------------------------------------------- 2. ctrl_tcp drives the call
for t in udp tls; do
	name=ctrl-bob-$t
	d=$work/$name
	mkdir -p "$d"
	if ! start_bob "$d" "$t" --wait-bye --rtp; then
		result FAIL "$name" "bob did not register; see $d"
		continue
	fi
	cport=$(free_port)
	start_alice "$d" -k "$KP" -c "$cport" -- -t 60
	python3 "$here/baresip-ctrl.py" --port "$cport" --dial sip:bob@sip.test --hold 3 --quit \
		>"$d/ctrl.out" 2>&1
	crc=$?
	t_ctrl=$(($(now_ms) - T0))
	if wait_exit "$ALICE" 10 && [ "$EXIT_RC" = 0 ] && [ "$crc" = 0 ] && check_bob "$d"; then
		result PASS "$name" "bob over $t, alice over udp: $(grep -o 'established after [0-9.]* s' "$d/ctrl.out"), held 3 s, hangup -> CALL_CLOSED, quit -> exit 0 at $(($(now_ms) - T0)) ms (ctrl client done at ${t_ctrl} ms); bob: $(rtp_summary "$d")"
	else
		result FAIL "$name" "ctrl rc=$crc baresip rc=${EXIT_RC:-?}; see $d"
	fi
done

# ---------------------------------------------- 3. the WAV file ends first
name=wav-eof
d=$work/$name
mkdir -p "$d"
python3 "$here/make-wav.py" "$d/short.wav" 2
if start_bob "$d" udp --wait-bye; then
	start_alice "$d" -k "$KP" -w "$d/short.wav" -- -e "/dial sip:bob@sip.test" -t 6
	wait_for "$d/baresip.log" "Call established: " 5
	t_est=$(($(now_ms) - T0))
	if wait_for "$d/baresip.log" "terminated (duration: " 8; then
		t_end=$(($(now_ms) - T0))
		wait_exit "$ALICE" 10
		if grep -q "menu: audio error (0,end of file)" "$d/baresip.log" && wait_exit "$BOB" 5 && [ "$EXIT_RC" = 0 ]; then
			result PASS "$name" "2 s WAV: established at ${t_est} ms, BYE at ${t_end} ms ('menu: audio error (0,end of file)'); baresip idles until -t"
		else
			result FAIL "$name" "see $d"
		fi
	else
		result FAIL "$name" "call not terminated; see $d"
	fi
else
	result FAIL "$name" "bob did not register"
fi

# ---------------------------------------------- 4. bob hangs up
name=remote-bye
d=$work/$name
mkdir -p "$d"
if start_bob "$d" udp; then
	start_alice "$d" -k "$KP" -- -e "/dial sip:bob@sip.test"
	# bob hangs up 0.2 s after the ACK: too short for a "terminated
	# (duration: ...)" line, which baresip only prints for >= 1 s.
	if wait_for "$d/baresip.log" "session closed: Connection reset by peer" 8; then
		t_end=$(($(now_ms) - T0))
		kill -TERM "$ALICE"
		t_sig=$(now_ms)
		if wait_exit "$ALICE" 5 && [ "$EXIT_RC" = 0 ]; then
			result PASS "$name" "'session closed: Connection reset by peer' at ${t_end} ms; SIGTERM with no call -> exit 0 after $(($(now_ms) - t_sig)) ms"
		else
			result FAIL "$name" "no clean exit on SIGTERM; see $d"
		fi
	else
		result FAIL "$name" "see $d"
	fi
	wait_exit "$BOB" 5
else
	result FAIL "$name" "bob did not register"
fi

# ---------------------------------------------- 5. SIGTERM during the call
name=sigterm-in-call
d=$work/$name
mkdir -p "$d"
if start_bob "$d" udp --wait-bye --rtp; then
	start_alice "$d" -k "$KP" -- -e "/dial sip:bob@sip.test"
	if wait_for "$d/baresip.log" "Call established: " 5; then
		sleep 1
		kill -TERM "$ALICE"
		t_sig=$(now_ms)
		if wait_exit "$ALICE" 5 && [ "$EXIT_RC" = 0 ] && grep -q "terminated by signal 15" "$d/baresip.log" && check_bob "$d"; then
			result PASS "$name" "SIGTERM -> BYE -> 200 -> exit 0 after $(($(now_ms) - t_sig)) ms"
		else
			result FAIL "$name" "rc=${EXIT_RC:-?}; see $d"
		fi
	else
		result FAIL "$name" "no 'Call established'; see $d"
	fi
else
	result FAIL "$name" "bob did not register"
fi

# ---------------------------------------------- 6. failures
# expect_close NAME PATTERN [run-baresip options] -- URI
expect_close() {
	local name=$1 pattern=$2
	shift 2
	local d=$work/$name
	mkdir -p "$d"
	local uri=${*: -1}
	local opts=("${@:1:$#-1}")
	start_alice "$d" -k "$KP" "${opts[@]}" -- -e "/dial $uri"
	if wait_for "$d/baresip.log" "$pattern" 5; then
		local t=$(($(now_ms) - T0))
		kill -TERM "$ALICE"
		wait_exit "$ALICE" 5
		result PASS "$name" "'$pattern' at $t ms; SIGTERM -> exit ${EXIT_RC:-?}"
	else
		kill -TERM "$ALICE"
		wait_exit "$ALICE" 5
		result FAIL "$name" "no '$pattern'; see $d"
	fi
}
expect_close not-found "session closed: 404 Not Found" sip:carol@sip.test
expect_close wrong-password "session closed: 407 Proxy Authentication Required" -a wrong-secret sip:bob@sip.test

# The ctrl client on a failing call: exit 1, and it still makes baresip quit.
name=ctrl-not-found
d=$work/$name
mkdir -p "$d"
cport=$(free_port)
start_alice "$d" -k "$KP" -c "$cport" -- -t 60
python3 "$here/baresip-ctrl.py" --port "$cport" --dial sip:carol@sip.test --quit >"$d/ctrl.out" 2>&1
crc=$?
if [ "$crc" = 1 ] && grep -q '"type": "CALL_CLOSED".*"param": "404 Not Found"' "$d/ctrl.out" &&
	wait_exit "$ALICE" 5 && [ "$EXIT_RC" = 0 ]; then
	result PASS "$name" "CALL_CLOSED param '404 Not Found', client exit 1, quit -> baresip exit 0 at $(($(now_ms) - T0)) ms"
else
	result FAIL "$name" "ctrl rc=$crc baresip rc=${EXIT_RC:-?}; see $d"
fi

# ---------------------------------------------- 7. DNS
if [ -s "$work/dns-queries.log" ]; then
	result FAIL "no-dns" "baresip sent DNS queries: $(head -3 "$work/dns-queries.log")"
else
	result PASS "no-dns" "with outbound=127.0.0.1, no baresip instance sent a single DNS query (dns_server pointed at a logging socket)"
fi

# ---------------------------------------------- Kamailio stop
kill -TERM "$KPID"
wait_exit "$KPID" 5
leftover=$(pgrep -f -- "-P $work/kamailio/run/kamailio.pid" || true)
if [ -z "$leftover" ]; then
	result PASS "kamailio stops"
else
	result FAIL "kamailio stops" "left: $leftover"
fi

echo
echo "== summary ($results)"
grep -c '^PASS' "$results" | sed 's/^/passed: /'
echo "failed: $failures"
[ "$failures" = 0 ]
