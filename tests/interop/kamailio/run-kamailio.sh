#!/bin/sh
# run-kamailio.sh: start the interop Kamailio in the foreground.
#
# Also the reference for the exact command line a test harness must use:
# it prints the command to stderr and then exec()s it, so this script's pid
# becomes Kamailio's main pid. Stop it with SIGTERM or Ctrl-C (SIGINT):
# Kamailio then stops all its worker processes and removes its pid file.
# Do NOT stop it with SIGKILL: the workers survive the main process and
# keep the ports bound (see README.md, "Stopping").
#
# usage: run-kamailio.sh [options]
#   -u PORT    UDP port on 127.0.0.1                 (default 5060)
#   -t PORT    TCP port on 127.0.0.1                 (default: same as -u)
#   -s PORT    also listen on TLS on this port       (default: no TLS)
#   -c DIR     TLS material from make-certs.sh DIR: DIR/server.pem + .key
#   -C FILE    a rendered tls.cfg instead of -c      (see tls.cfg)
#   -r DIR     runtime dir: pid file, -Y dir, cwd    (default: mktemp -d)
#   -a PW      password of alice                     (default alice-secret)
#   -b PW      password of bob                       (default bob-secret)
#   -2         SHA-256 digest instead of MD5
#   -d         debug logging (debug=3)
# Anything after "--" is appended to the kamailio command line.
#
# Example:
#   ./make-certs.sh /tmp/sb-certs
#   ./run-kamailio.sh -u 15060 -s 15061 -c /tmp/sb-certs -r /tmp/sb-kam
set -eu

here=$(cd "$(dirname "$0")" && pwd)
udp=5060
tcp=
tls=
certdir=
tlsconfig=
rundir=
alice=alice-secret
bob=bob-secret
sha256=
debug=

while getopts u:t:s:c:C:r:a:b:2d opt; do
	case $opt in
	u) udp=$OPTARG ;;
	t) tcp=$OPTARG ;;
	s) tls=$OPTARG ;;
	c) certdir=$OPTARG ;;
	C) tlsconfig=$OPTARG ;;
	r) rundir=$OPTARG ;;
	a) alice=$OPTARG ;;
	b) bob=$OPTARG ;;
	2) sha256=1 ;;
	d) debug=1 ;;
	*) sed -n '2,30p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
[ -n "$tcp" ] || tcp=$udp

case "$alice$bob" in
*'"'*) echo "passwords must not contain a double quote" >&2; exit 2 ;;
esac

if [ -z "$rundir" ]; then
	rundir=$(mktemp -d /tmp/switchboard-kamailio.XXXXXX)
else
	mkdir -p "$rundir"
fi
rundir=$(cd "$rundir" && pwd)

set -- \
	-f "$here/kamailio.cfg" \
	-L /usr/lib/x86_64-linux-gnu/kamailio/modules \
	-P "$rundir/kamailio.pid" \
	-Y "$rundir" \
	-w "$rundir" \
	-DD -E \
	-m 64 -M 8 \
	-A "UDP_PORT=$udp" \
	-A "TCP_PORT=$tcp" \
	-A "ALICE_PASSWORD=\"$alice\"" \
	-A "BOB_PASSWORD=\"$bob\"" \
	"$@"

if [ -n "$tls" ]; then
	set -- "$@" -A WITH_TLS -A "TLS_PORT=$tls"
	if [ -n "$tlsconfig" ]; then
		tlsconfig=$(cd "$(dirname "$tlsconfig")" && pwd)/$(basename "$tlsconfig")
		set -- "$@" -A "TLS_CONFIG=\"$tlsconfig\""
	elif [ -n "$certdir" ]; then
		certdir=$(cd "$certdir" && pwd)
		set -- "$@" -A "TLS_CERT=\"$certdir/server.pem\"" -A "TLS_KEY=\"$certdir/server.key\""
	else
		echo "TLS needs -c CERTDIR or -C tls.cfg" >&2
		exit 2
	fi
fi
[ -n "$sha256" ] && set -- "$@" -A DIGEST_SHA256
[ -n "$debug" ] && set -- "$@" -A WITH_DEBUG

cd "$rundir"
{
	printf 'runtime dir: %s\n+ kamailio' "$rundir"
	for arg in "$@"; do printf " '%s'" "$arg"; done
	printf '\n'
} >&2
exec kamailio "$@"
