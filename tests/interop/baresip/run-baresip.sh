#!/bin/sh
# run-baresip.sh: render the baresip config for the interop caller "alice"
# and start baresip 1.0 in the foreground.
#
# Also the reference for what a test harness must do: it writes
# DIR/config and DIR/accounts from config.in and accounts.in (plain
# @NAME@ substitution), prints the baresip command line to stderr and
# exec()s it, so this script's pid becomes baresip's pid.
#
# usage: run-baresip.sh -d DIR -k KAMAILIO_PORT [options] [-- baresip args]
#   -d DIR     config dir to create (config, accounts; sndfile dumps in DIR/snd)
#   -k PORT    Kamailio port on 127.0.0.1 (its UDP port; its TCP or TLS
#              port with -T tcp / -T tls)
#   -T PROTO   alice's transport to Kamailio: udp (default), tcp or tls
#   -A FILE    append "sip_cafile FILE" (CA for TLS; baresip 1.0 does not
#              verify the server certificate either way, see README.md)
#   -w FILE    microphone WAV (S16LE, 8000 Hz, mono). Default: DIR/alice.wav,
#              created with make-wav.py, 60 s of a 440 Hz tone
#   -c PORT    ctrl_tcp port on 127.0.0.1 (default 0: any free port, unused)
#   -s PORT    sip_listen port; TLS takes PORT+1 (default 0: any free ports)
#   -a PW      alice's password (default alice-secret)
#   -C LIST    audio_codecs (default PCMU/8000/1,opus/48000/2)
#   -E MENC    media encryption: srtp-mand (SDES-SRTP only), srtp, or none (default)
#   -N IP:PORT append "dns_server IP:PORT" (default: none, so baresip's own
#              DNS client uses /etc/resolv.conf; see README.md, "DNS")
# Everything after "--" goes to baresip, e.g.
#   -- -e "/dial sip:bob@sip.test" -t 5
#
# stdin: give baresip /dev/null (no stdio module is loaded). Stop it with
# the "quit" command (ctrl_tcp), -t, or SIGTERM/SIGINT: each hangs up the
# call (BYE), waits for the BYE's answer and exits 0.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=
kport=
transport=udp
wav=
ctrl=0
sip=0
alice=alice-secret
codecs=PCMU/8000/1,opus/48000/2
dns=
cafile=
mediaenc=

while getopts d:k:T:A:w:c:s:a:C:N:E: opt; do
	case $opt in
	d) dir=$OPTARG ;;
	k) kport=$OPTARG ;;
	T) transport=$OPTARG ;;
	A) cafile=$OPTARG ;;
	w) wav=$OPTARG ;;
	c) ctrl=$OPTARG ;;
	s) sip=$OPTARG ;;
	a) alice=$OPTARG ;;
	C) codecs=$OPTARG ;;
	N) dns=$OPTARG ;;
	E) mediaenc=$OPTARG ;;
	*) sed -n '2,34p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = "--" ] && shift
if [ -z "$dir" ] || [ -z "$kport" ]; then
	sed -n '2,34p' "$0" >&2
	exit 2
fi
case $transport in udp | tcp | tls) ;; *) echo "-T must be udp, tcp or tls" >&2; exit 2 ;; esac
case "$alice$wav$dir" in
*'|'* | *'&'* | *'\'*) echo "password and paths must not contain | & or \\" >&2; exit 2 ;;
esac

mkdir -p "$dir/snd"
dir=$(cd "$dir" && pwd)
if [ -z "$wav" ]; then
	wav=$dir/alice.wav
	[ -e "$wav" ] || python3 "$here/make-wav.py" "$wav" 60
fi

sed -e "s|@SIP_PORT@|$sip|" -e "s|@WAV_FILE@|$wav|" -e "s|@CTRL_PORT@|$ctrl|" \
	-e "s|@SND_PATH@|$dir/snd|" "$here/config.in" >"$dir/config"
sed -e "s|@ALICE_PASSWORD@|$alice|" -e "s|@KAMAILIO_PORT@|$kport|" \
	-e "s|@TRANSPORT@|$transport|g" -e "s|@AUDIO_CODECS@|$codecs|" \
	-e "s|@MEDIAENC@|${mediaenc:+;mediaenc=$mediaenc}|" \
	"$here/accounts.in" >"$dir/accounts"
[ -z "$cafile" ] || printf 'sip_cafile\t\t%s\n' "$cafile" >>"$dir/config"
[ -z "$dns" ] || printf 'dns_server\t\t%s\n' "$dns" >>"$dir/config"

echo "+ baresip -f $dir $*" >&2
exec baresip -f "$dir" "$@"
