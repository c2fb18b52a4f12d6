#!/usr/bin/env bash
# Builds and starts Switchboard's desktop app. With no SIP account set up it offers a demo line
# on this computer (it answers and speaks), so a first call needs no server.
#
#   scripts/run.sh              the desktop app
#   scripts/run.sh --headless   the headless agent instead: answers calls on udp:127.0.0.1:5070
#                               with the default sound devices (extra arguments go to
#                               `switchboard-cli listen`, e.g. --hangup-after 10)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
export PATH="$HOME/.cargo/bin:$PATH"

if [ "${1:-}" = --headless ]; then
  shift
  cargo build --release --locked -p switchboard-cli
  bind=${SWITCHBOARD_BIND:-udp:127.0.0.1:5070}
  cat >&2 <<MSG
Switchboard agent: answering calls on ${bind} (Ctrl-C to stop; events are JSON lines below).
Call it from another terminal, for example:
  target/release/switchboard-cli call sip:agent@${bind#udp:} --bind udp:127.0.0.1:0 --hangup-after 3
  (add --play speech.wav --record heard.wav to either side to send and keep audio;
   switchboard-cli devices lists the sound devices, --input/--output/--ringer choose them)
  sipp -sn uac ${bind#udp:} -m 10 -r 5 -i 127.0.0.1     (Debian package sip-tester)
MSG
  exec target/release/switchboard-cli listen --bind "$bind" --auto-answer --devices "$@"
fi

if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  cat >&2 <<'MSG'
There is no display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop app
cannot open its window. The headless agent works without one:
  scripts/run.sh --headless
MSG
  exit 2
fi
scripts/ui.sh
cargo build --release --locked -p switchboard-app
exec target/release/switchboard "$@"
