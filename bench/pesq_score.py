"""Scores pairs of WAV files with ITU-T P.862 (PyPI `pesq`) for ipphone's bench.

Reads a JSON list of jobs on stdin, each {"reference": path, "degraded": path,
"mode": "wb" | "nb"}, and prints a JSON list of scores (null where PESQ could
not score the pair, e.g. no speech found). Both files must share one rate:
16 kHz for wideband (P.862.2), 8 or 16 kHz for narrowband.
"""

import json
import sys
import wave

import numpy as np
from pesq import pesq


def read(path):
    with wave.open(path, "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2, path
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return w.getframerate(), data.astype(np.float32) / 32768.0


def main():
    scores = []
    for job in json.load(sys.stdin):
        rate, reference = read(job["reference"])
        rate2, degraded = read(job["degraded"])
        assert rate == rate2, job
        try:
            scores.append(float(pesq(rate, reference, degraded, job["mode"])))
        except Exception as e:  # noqa: BLE001 - reported as "no score"
            print(f"pesq: {job['degraded']}: {e}", file=sys.stderr)
            scores.append(None)
    json.dump(scores, sys.stdout)


if __name__ == "__main__":
    main()
