"""Write a realistic labelled synthetic dataset (SeisBench format) with known P and S onsets."""

from __future__ import annotations

import argparse
import os
import time


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("out_dir", help="output folder (metadata.csv + waveforms.hdf5)")
    p.add_argument("--n-traces", type=int, default=1000, help="number of traces")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    p.add_argument("--noise-fraction", type=float, default=0.12, help="share of noise-only traces")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import SynthConfig, write_synthetic_dataset

    cfg = SynthConfig(n_traces=args.n_traces, seed=args.seed, noise_fraction=args.noise_fraction)
    t0 = time.perf_counter()
    out = write_synthetic_dataset(args.out_dir, cfg, n_jobs=args.jobs, progress=not args.quiet)
    dt = time.perf_counter() - t0
    print(f"wrote {cfg.n_traces} traces to {out} in {dt:.1f} s ({cfg.n_traces / dt:.0f} traces/s)")
    return 0
