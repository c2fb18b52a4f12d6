#!/usr/bin/env python3
"""delay.py SENT.wav SENT.times HEARD.wav HEARD.times: one-way delay from encoder input to
decoder output. Both phones write those frames to WAV as they happen; the .times files say
when each file grew ("seconds bytes" per line, one clock for both). Each half second of
speech heard is matched to the audio sent by cross-correlation (locally: the jitter buffer's
delay changes during a call), and the delay is when the heard samples reached the disk minus
when the same samples sent did. Prints JSON: median, 10th and 90th percentile in ms."""
import json
import sys

import numpy as np


def load(path):
    data = open(path, "rb").read()
    i, rate, offset = 12, None, None
    while i + 8 <= len(data):
        chunk, size = data[i:i + 4], int.from_bytes(data[i + 4:i + 8], "little")
        if chunk == b"fmt ":
            rate = int.from_bytes(data[i + 12:i + 16], "little")
        if chunk == b"data":
            offset = i + 8
            break
        i += 8 + size + (size & 1)
    usable = (len(data) - offset) // 2 * 2
    pcm = np.frombuffer(data[offset:offset + usable], dtype="<i2").astype(np.float64)
    return rate, offset, pcm


def growth(path):
    rows = np.loadtxt(path, ndmin=2)
    return rows[:, 0], rows[:, 1]


def written_at(times, sizes, offset, index):
    """When sample `index` was on disk (the first observation of a size covering it)."""
    k = np.searchsorted(sizes, offset + 2 * (index + 1))
    return times[k] if k < len(times) else None


def decimate(x, factor):
    n = len(x) // factor * factor
    return x[:n].reshape(-1, factor).mean(axis=1)


def main():
    sent_path, sent_times, heard_path, heard_times = sys.argv[1:5]
    rate, sent_off, sent = load(sent_path)
    rate_h, heard_off, heard = load(heard_path)
    assert rate == rate_h, "both files at one rate"
    st, ss = growth(sent_times)
    ht, hs = growth(heard_times)
    factor = max(1, rate // 4000)
    low_rate = rate / factor
    s_low, h_low = decimate(sent, factor), decimate(heard, factor)
    # The overall lag first (heard[j] ~ sent[j - lag]), by FFT cross-correlation.
    size = 1 << int(np.ceil(np.log2(len(s_low) + len(h_low))))
    corr = np.fft.irfft(np.fft.rfft(h_low, size) * np.conj(np.fft.rfft(s_low, size)), size)
    lags = np.concatenate([np.arange(0, size // 2), np.arange(-size // 2, 0)])
    # Only delays a call can have (the speech may repeat itself: do not match a repeat).
    plausible = (lags >= -0.05 * low_rate) & (lags <= 1.5 * low_rate)
    overall = int(lags[plausible][np.argmax(corr[plausible])])
    window = int(0.5 * low_rate)
    search = int(0.15 * low_rate)
    delays = []
    for start in range(0, len(h_low) - window, window):
        seg = h_low[start:start + window]
        if np.sqrt(np.mean(seg ** 2)) < 300:
            continue  # a pause: nothing to match
        best, best_c = None, 0.6
        for lag in range(overall - search, overall + search + 1):
            a = start - lag
            if a < 0 or a + window > len(s_low):
                continue
            ref = s_low[a:a + window]
            c = np.dot(seg, ref) / (np.linalg.norm(seg) * np.linalg.norm(ref) + 1e-9)
            if c > best_c:
                best, best_c = lag, c
        if best is None:
            continue
        centre = (start + window // 2) * factor
        t_heard = written_at(ht, hs, heard_off, centre)
        t_sent = written_at(st, ss, sent_off, centre - best * factor)
        if t_heard is not None and t_sent is not None:
            delays.append((t_heard - t_sent) * 1000.0)
    if not delays:
        print(json.dumps({"error": "no speech matched"}))
        sys.exit(1)
    d = np.array(delays)
    print(json.dumps({
        "median_ms": round(float(np.median(d)), 1),
        "p10_ms": round(float(np.percentile(d, 10)), 1),
        "p90_ms": round(float(np.percentile(d, 90)), 1),
        "windows": len(delays),
        "overall_lag_ms": round(overall / low_rate * 1000.0, 1),
    }))


if __name__ == "__main__":
    main()
