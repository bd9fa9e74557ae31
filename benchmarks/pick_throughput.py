"""Picking throughput and peak memory on one station-day of 3-component 100 Hz data.

Our default picker vs SeisBench ``PhaseNet`` and ``EQTransformer`` (``classify`` with each model's default
arguments), measured in the same run on the same stream. Each model runs in its own subprocess so that its peak
resident memory (max RSS) is its own. Weights do not change the cost, so the SeisBench baselines use their
architectures with random weights (pretrained weights cannot be downloaded here).

    python benchmarks/pick_throughput.py [--hours 24] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("seiscontrast", "PhaseNet", "EQTransformer")


def station_day(hours: float):
    from obspy import Stream, Trace, UTCDateTime

    rng = np.random.default_rng(0)
    st = Stream()
    for comp in "ZNE":
        tr = Trace(rng.standard_normal(int(hours * 3600 * 100)).astype(np.float32))
        tr.stats.update(dict(network="XX", station="DAY", channel=f"HH{comp}", sampling_rate=100.0,
                             starttime=UTCDateTime(2024, 1, 1)))
        st += tr
    return st


def worker(name: str, hours: float, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    if name == "seiscontrast":
        from seiscontrast.picker import SeisContrastPicker

        model = SeisContrastPicker.default()
    else:
        import seisbench.models as sbm

        model = getattr(sbm, name)()
    model.eval()
    st = station_day(hours)
    t0 = time.perf_counter()
    with torch.inference_mode():
        picks = model.classify(st).picks
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB → MB on Linux
    print(json.dumps({"model": name, "seconds": dt, "station_days_per_s": hours / 24 / dt, "peak_rss_mb": rss,
                      "picks": len(picks)}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.hours, args.threads)
        return
    results = {}
    for name in MODELS:
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--hours", str(args.hours),
                              "--threads", str(args.threads)], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name}: failed\n{out.stderr[-2000:]}")
            continue
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        r = results[name]
        print(f"{name:14} {r['seconds']:8.1f} s  {r['station_days_per_s']:.4f} station-days/s  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)
    if {"seiscontrast", "PhaseNet", "EQTransformer"} <= set(results):
        ours = results["seiscontrast"]["station_days_per_s"]
        pn, eqt = results["PhaseNet"]["station_days_per_s"], results["EQTransformer"]["station_days_per_s"]
        mem = results["seiscontrast"]["peak_rss_mb"]
        print(f"\nseiscontrast / PhaseNet throughput: {ours / pn:.2f} (target >= 0.5: {'met' if ours / pn >= 0.5 else 'NOT met'})")
        print(f"seiscontrast / EQTransformer throughput: {ours / eqt:.2f} (target >= 2: {'met' if ours / eqt >= 2 else 'NOT met'})")
        print(f"seiscontrast peak memory: {mem:.0f} MB (target < 2048 MB: {'met' if mem < 2048 else 'NOT met'})")
    target = ROOT / "benchmarks" / "results" / "pick_throughput.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"hours": args.hours, "threads": args.threads, "results": results}, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
