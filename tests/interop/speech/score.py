#!/usr/bin/env python3
"""score.py: PESQ (ITU-T P.862 / P.862.2) MOS-LQO of a degraded WAV against a reference WAV.

usage: score.py REF.wav DEG.wav [--mode wb|nb] [--max-seconds N] [--json]

* Reads 16-bit PCM WAV (stdlib `wave`), any channel count (averaged to mono);
  other encodings (u-law, float, ...) are converted with `sox` first.
* Resamples both files to 16 kHz (wb) or 8 kHz (nb, if the ref is 8 kHz;
  otherwise nb is scored at 16 kHz) with scipy.signal.resample_poly
  when the rates differ (scipy needed only then).
* Trims leading silence of both files (10 ms frames, -40 dB below the
  file's peak frame), then finds the lag of DEG against REF by FFT
  cross-correlation and shifts DEG so the two line up; both are cut to the
  common length. PESQ does its own fine alignment; this step only removes
  the big offsets (jitter buffer, call set-up, leading silence) that PESQ
  handles badly.
* Prints "MOS-LQO <score>" (plus lag/correlation info) and exits 0;
  exits 1 if PESQ fails (e.g. no utterances detected).

Needs: numpy, pesq (PyPI), and scipy only when resampling is needed.
"""
import argparse
import json
import sys
import wave

import numpy as np
from pesq import pesq, PesqError


def read_wav(path):
    try:
        w = wave.open(path, "rb")
    except wave.Error:
        # not 16-bit PCM (e.g. u-law, float): let sox convert it
        import os
        import subprocess
        import tempfile

        fd, tmp = tempfile.mkstemp(suffix=".wav")
        os.close(fd)
        subprocess.run(["sox", path, "-e", "signed-integer", "-b", "16", tmp], check=True)
        try:
            return read_wav(tmp)
        finally:
            os.unlink(tmp)
    with w:
        ch, sw, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
        raw = w.readframes(n)
    if sw != 2:
        sys.exit(f"{path}: only 16-bit PCM WAV is supported (sample width {sw})")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    if ch > 1:
        x = x.reshape(-1, ch).mean(axis=1)
    return x, rate


def resample(x, rate_in, rate_out):
    if rate_in == rate_out:
        return x
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g)


def trim_leading_silence(x, rate, thresh_db=-40.0):
    frame = rate // 100  # 10 ms
    nfr = len(x) // frame
    if nfr == 0:
        return x, 0
    e = (x[: nfr * frame].reshape(nfr, frame) ** 2).mean(axis=1)
    peak = e.max()
    if peak <= 0:
        return x, 0
    db = 10 * np.log10(e / peak + 1e-20)
    idx = int(np.argmax(db > thresh_db))
    start = max(0, idx - 2) * frame  # keep 20 ms before the onset
    return x[start:], start


def best_lag(ref, deg):
    """lag such that deg[n + lag] ~ ref[n] (positive: deg is late)."""
    n = len(ref) + len(deg) - 1
    nfft = 1 << (n - 1).bit_length()
    r = np.fft.rfft(ref, nfft)
    d = np.fft.rfft(deg, nfft)
    cc = np.fft.irfft(d * np.conj(r), nfft)
    # cc[k] = sum deg[n+k] ref[n]; negative lags wrap to the end
    cc = np.concatenate((cc[-(len(ref) - 1):], cc[: len(deg)]))
    lags = np.arange(-(len(ref) - 1), len(deg))
    i = int(np.argmax(np.abs(cc)))
    return int(lags[i]), float(cc[i])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ref")
    ap.add_argument("deg")
    ap.add_argument("--mode", choices=("wb", "nb"), default="wb")
    ap.add_argument("--max-seconds", type=float, default=0.0,
                    help="score only the first N seconds after alignment (0 = all)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    ref, rr = read_wav(a.ref)
    deg, dr = read_wav(a.deg)
    fs = 8000 if (a.mode == "nb" and rr == 8000) else 16000
    ref = resample(ref, rr, fs)
    deg = resample(deg, dr, fs)

    ref, ref_trim = trim_leading_silence(ref, fs)
    deg, deg_trim = trim_leading_silence(deg, fs)
    lag, peak = best_lag(ref, deg)
    if lag > 0:
        deg = deg[lag:]
    elif lag < 0:
        ref = ref[-lag:]
    n = min(len(ref), len(deg))
    if a.max_seconds > 0:
        n = min(n, int(a.max_seconds * fs))
    ref, deg = ref[:n], deg[:n]
    denom = np.sqrt((ref ** 2).sum() * (deg ** 2).sum()) or 1.0
    corr = float((ref * deg).sum() / denom)

    info = {
        "fs": fs, "mode": a.mode, "ref_rate": rr, "deg_rate": dr,
        "ref_trim_s": ref_trim / fs, "deg_trim_s": deg_trim / fs,
        "lag_s": lag / fs, "scored_s": n / fs, "corr": round(corr, 4),
    }
    try:
        score = pesq(fs, ref.astype(np.float32), deg.astype(np.float32), a.mode)
    except PesqError as e:
        info["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(info) if a.json else f"PESQ failed: {info['error']}  {info}")
        return 1
    info["mos_lqo"] = round(float(score), 3)
    if a.json:
        print(json.dumps(info))
    else:
        print(f"MOS-LQO {score:.3f}  ({a.mode}, fs={fs}, lag {lag / fs:+.3f} s, "
              f"trim ref {ref_trim / fs:.3f} s / deg {deg_trim / fs:.3f} s, "
              f"{n / fs:.2f} s scored, corr {corr:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
