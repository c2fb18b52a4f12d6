#!/bin/sh
# make-ref.sh OUT.wav: the reference speech for PESQ, reproducible on any Debian/Ubuntu:
# three Harvard sentences from espeak-ng, S16LE 16 kHz mono, peak-normalised to -3 dBFS,
# with 0.5 s of silence at both ends (about 8 s in all).
set -eu
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/tts.wav" \
  "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. \
It is easy to tell the depth of a well."
sox "$tmp/tts.wav" -r 16000 -c 1 -b 16 -e signed-integer "$out" gain -n -3 pad 0.5 0.5
