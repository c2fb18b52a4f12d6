#!/usr/bin/env bash
# Builds and starts the headless Switchboard agent, answering calls on udp:127.0.0.1:5070 with
# the system's default microphone, speaker and ringer (when there are none it says so and the
# calls go on without sound).
# Extra arguments go to `switchboard-cli listen` (e.g. --hangup-after 10).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh run
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -p switchboard-cli
bind=${SWITCHBOARD_BIND:-udp:127.0.0.1:5070}
cat >&2 <<MSG
Switchboard agent: answering calls on ${bind} (Ctrl-C to stop; events are JSON lines below).
Call it from another terminal, for example:
  target/release/switchboard-cli call sip:agent@${bind#udp:} --bind udp:127.0.0.1:0 --hangup-after 3
  (add --play speech.wav --record heard.wav to either side to send and keep audio;
   switchboard-cli devices lists the sound devices, --input/--output/--ringer choose them)
  sipp -sn uac ${bind#udp:} -m 10 -r 5 -i 127.0.0.1     (Debian package sip-tester)
The desktop app is not built yet; this is the headless agent it will run on.
MSG
exec target/release/switchboard-cli listen --bind "$bind" --auto-answer --devices "$@"
