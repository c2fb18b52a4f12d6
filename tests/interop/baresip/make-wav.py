#!/usr/bin/env python3
"""make-wav.py OUT.wav SECONDS [--rate 8000] [--channels 1] [--freq 440]

Writes the WAV file baresip's aufile module plays as the microphone:
PCM S16LE, RATE Hz, CHANNELS channels, a sine tone of FREQ Hz at -12 dBFS
(--freq 0: digital silence). RATE and CHANNELS must equal ausrc_srate and
ausrc_channels in the baresip config (8000 and 1 in config.in), or
aufile refuses the file. baresip hangs the call up when the file ends, so
SECONDS bounds the call length. Standard library only.
"""
import argparse
import math
import struct
import wave

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("seconds", type=float)
ap.add_argument("--rate", type=int, default=8000)
ap.add_argument("--channels", type=int, default=1)
ap.add_argument("--freq", type=float, default=440.0)
a = ap.parse_args()

n = int(a.seconds * a.rate)
amp = 8192  # -12 dBFS
# One second of samples, repeated: seamless for a whole-number --freq.
second = b"".join(
    struct.pack("<h", int(amp * math.sin(2 * math.pi * a.freq * i / a.rate)) if a.freq else 0) * a.channels
    for i in range(a.rate))
frame = 2 * a.channels
frames = (second * (n // a.rate + 1))[:n * frame]
with wave.open(a.out, "wb") as w:
    w.setnchannels(a.channels)
    w.setsampwidth(2)
    w.setframerate(a.rate)
    w.writeframes(bytes(frames))
