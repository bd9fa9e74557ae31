"""Picking throughput and peak memory on one station-day of 3-component 100 Hz data.

Our default picker vs SeisBench ``PhaseNet`` and ``EQTransformer``, measured in the same run on the same
station-day, through two paths:

- ``classify``: ``model.classify(stream)`` with each model's default arguments, the stream already in memory;
- ``pick_files``: the path ``seiscontrast pick`` takes (a miniSEED file read, chunked, picked, picks collected;
  batches of 64 for every model, the CLI's default), timed twice: the picking alone, and the whole process from
  its start (imports and model loading included). For our model the ``seiscontrast pick`` command itself is timed too.

Each model runs in its own subprocess so that its peak resident memory (max RSS) is its own. Weights do not
change the cost, so the SeisBench baselines use their architectures with random weights (pretrained weights
cannot be downloaded here).

    python benchmarks/pick_throughput.py [--hours 24] [--threads 2] [--model picker.pt] [--tune-baselines]

``--model`` measures another picker file in place of the bundled one (a retrained candidate must keep the targets).
Our picker and the ``pick_files`` path keep freed memory (``seiscontrast.memory``); SeisBench's ``classify`` of its
own models does not, unless ``--tune-baselines``. ``SEISCONTRAST_KEEP_FREED_MEMORY=0`` turns it off everywhere.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("seiscontrast", "PhaseNet", "EQTransformer")
PATHS = ("classify", "pick_files")
#: the performance issue's targets: throughput relative to each baseline, our peak memory
TARGETS = {"PhaseNet": 1.0, "EQTransformer": 3.0}
MEMORY_TARGET_MB = 1536


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


def load(name: str, model: str | None = None):
    if name == "seiscontrast":
        from seiscontrast.picker import SeisContrastPicker

        return SeisContrastPicker.from_file(model) if model else SeisContrastPicker.default()
    import seisbench.models as sbm

    return getattr(sbm, name)().eval()


def worker(name: str, path: str, hours: float, threads: int, mseed: str, model_file: str | None,
           tune_baselines: bool) -> None:
    import torch

    torch.set_num_threads(threads)
    if tune_baselines:   # ours tunes malloc itself (seiscontrast.memory); give SeisBench's models the same
        from seiscontrast.memory import keep_freed_memory

        keep_freed_memory()
    model = load(name, model_file)
    stream = station_day(hours) if path == "classify" else None
    t0 = time.perf_counter()
    with torch.inference_mode():
        if path == "classify":
            picks = len(model.classify(stream).picks)
        else:
            from seiscontrast.pick import pick_files

            picks = len(pick_files([mseed], model).picks)
    dt = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB → MB on Linux
    print(json.dumps({"model": name, "path": path, "seconds": dt, "station_days_per_s": hours / 24 / dt,
                      "peak_rss_mb": rss, "picks": picks}))


def run_worker(name: str, path: str, args, mseed: str) -> dict | None:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--worker", name, "--path", path, "--hours", str(args.hours),
                          "--threads", str(args.threads), "--mseed", mseed,
                          *(["--model", args.model] if args.model else []),
                          *(["--tune-baselines"] if args.tune_baselines else [])], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        print(f"{name} ({path}): failed\n{out.stderr[-2000:]}")
        return None
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = wall
    return result


def time_cli(mseed: str, threads: int, work: Path, model: str | None) -> float:
    """Wall time of ``seiscontrast pick FILE`` (process start to exit)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "seiscontrast.cli", "pick", mseed, "--out", str(work / "picks.csv"), "-q",
                    *(["--model", str(Path(model).resolve())] if model else [])], check=True, env=env, cwd=work)
    return time.perf_counter() - t0


def report(results: dict) -> None:
    for path in PATHS:
        ours = results.get(("seiscontrast", path))
        if ours is None:
            continue
        print(f"\n{path}:")
        for (name, p), r in results.items():
            if p == path:
                print(f"  {name:14} {r['seconds']:6.1f} s picking ({r['station_days_per_s']:.4f} station-days/s), "
                      f"{r['process_seconds']:6.1f} s with start-up, peak RSS {r['peak_rss_mb']:5.0f} MB")
        for name, target in TARGETS.items():
            base = results.get((name, path))
            if base is None:
                continue
            ratio = base["seconds"] / ours["seconds"]
            start_up = base["process_seconds"] / ours["process_seconds"]
            print(f"  seiscontrast / {name} throughput: {ratio:.2f} (target >= {target}: "
                  f"{'met' if ratio >= target else 'NOT met'}); with start-up {start_up:.2f}")
        mem = ours["peak_rss_mb"]
        print(f"  seiscontrast peak memory: {mem:.0f} MB (target < {MEMORY_TARGET_MB} MB: "
              f"{'met' if mem < MEMORY_TARGET_MB else 'NOT met'})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", help="our picker file to measure (default: the bundled model)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pick_throughput.json"))
    ap.add_argument("--tune-baselines", action="store_true",
                    help="run SeisBench's models with malloc tuned as ours is (seiscontrast.memory) in the classify "
                         "path too (pick_files tunes it for every model)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    ap.add_argument("--mseed", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.path, args.hours, args.threads, args.mseed, args.model, args.tune_baselines)
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        mseed = str(work / "day.mseed")
        station_day(args.hours).write(mseed, format="MSEED")
        results = {}
        for path in PATHS:
            for name in MODELS:
                r = run_worker(name, path, args, mseed)
                if r is not None:
                    results[(name, path)] = r
                    print(f"{name:14} {path:10} {r['seconds']:6.1f} s  ({r['process_seconds']:.1f} s with start-up)",
                          flush=True)
        cli = time_cli(mseed, args.threads, work, args.model)
    report(results)
    print(f"\nseiscontrast pick day.mseed (the command, start-up included): {cli:.1f} s")
    target = Path(args.out)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"hours": args.hours, "threads": args.threads, "model": args.model or "bundled",
                                  "tune_baselines": args.tune_baselines,
                                  "cli_seconds": cli,
                                  "results": [r for r in results.values()]}, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
