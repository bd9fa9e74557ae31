"""Write a realistic labelled synthetic dataset (SeisBench format) with known P and S onsets."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("out_dir", help="output folder (metadata.csv + waveforms.hdf5)")
    p.add_argument("--n-traces", type=int, default=1000, help="number of traces")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    p.add_argument("--noise-fraction", type=float, default=0.12, help="share of noise-only traces")
    p.add_argument("--real-noise", nargs="+", metavar="SOURCE",
                   help="put the events into real noise: a noise bank (.h5) or recordings (files, folders, globs, "
                        "SeisBench datasets) whose quiet parts become one (OUT_DIR/noise_bank.h5)")
    p.add_argument("--real-noise-fraction", type=float, default=0.7, help="share of traces with real noise")
    p.add_argument("--realistic", action="store_true",
                   help="also accelerometers (10 %%), vertical-only stations (5 %%) and low-rate records resampled "
                        "through their original rate (data.synthetic.REALISTIC; off by default so that data sets "
                        "stay as they were)")
    p.add_argument("--microseisms", type=float, nargs=2, default=[0.3, 8.0], metavar=("LOW", "HIGH"),
                   help="range of the microseism / high-frequency noise ratio on broadband stations (real "
                        "broadband records have tens)")
    p.add_argument("--nucleation", type=float, default=0.0, metavar="FRACTION",
                   help="share of events that start with a weak nucleation sub-event before the main release")
    p.add_argument("--site-resonance", type=float, default=0.0, metavar="FRACTION",
                   help="share of stations on a soft surface layer that makes every arrival ring")
    p.add_argument("--linear-phase", type=float, default=0.0, metavar="FRACTION",
                   help="share of recordings whose digitiser anti-alias filter is linear-phase (as most modern "
                        "digitisers' are: onsets ring before the arrival) instead of minimum-phase")
    p.add_argument("--colocated-accelerometers", type=float, default=0.0, metavar="FRACTION",
                   help="share of the real-noise traces from velocity sensors seen by an accelerometer beside the "
                        "sensor instead (the noise differentiated, the event through an accelerometer)")
    p.add_argument("--crust", type=float, default=0.0, metavar="FRACTION",
                   help="share of events in a crust over the mantle: beyond the crossover distance weak head waves "
                        "(Pn, Sn) arrive before the direct waves (Pg, Sg)")
    p.add_argument("--distance-range", type=float, nargs=2, default=[3.0, 200.0], metavar=("MIN", "MAX"),
                   help="epicentral distances (km, log-uniform); head waves need regional ones (e.g. 3 400)")
    p.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1), help="worker processes")


def run(args: argparse.Namespace) -> int:
    from ..data.synthetic import REALISTIC, SynthConfig, write_synthetic_dataset

    cfg = SynthConfig(n_traces=args.n_traces, seed=args.seed, noise_fraction=args.noise_fraction,
                      real_noise_fraction=args.real_noise_fraction, broadband_microseisms=list(args.microseisms),
                      nucleation_fraction=args.nucleation, site_resonance_fraction=args.site_resonance,
                      linear_phase_fraction=args.linear_phase,
                      colocated_accelerometer_fraction=args.colocated_accelerometers,
                      crust_fraction=args.crust, distance_range=list(args.distance_range),
                      **(REALISTIC if args.realistic else {}))
    if cfg.colocated_accelerometer_fraction and not args.real_noise:
        raise ValueError(f"--colocated-accelerometers {args.colocated_accelerometers:g} records real noise as "
                         "acceleration: it needs --real-noise")
    out = Path(args.out_dir)
    if (out / "metadata.csv").exists():
        raise FileExistsError(f"{out} already holds a data set (metadata.csv); choose another folder")
    if args.real_noise:
        cfg.noise_bank = str(noise_bank(args.real_noise, out / "noise_bank.h5", not args.quiet).resolve())
    t0 = time.perf_counter()
    out = write_synthetic_dataset(args.out_dir, cfg, n_jobs=args.jobs, progress=not args.quiet)
    dt = time.perf_counter() - t0
    print(f"wrote {cfg.n_traces} traces to {out} in {dt:.1f} s ({cfg.n_traces / dt:.0f} traces/s)")
    return 0


def noise_bank(sources: list[str], out: Path, progress: bool) -> Path:
    """The bank file given, or one cut from the given recordings into ``out``."""
    if len(sources) == 1 and sources[0].endswith((".h5", ".hdf5")) and Path(sources[0]).is_file():
        return Path(sources[0])
    from ..data.noise_bank import build_noise_bank

    out.parent.mkdir(parents=True, exist_ok=True)
    path, summary = build_noise_bank(sources, out, progress)
    kinds = ", ".join(f"{kind} {secs / 60:.0f} min" for kind, secs in summary["seconds_by_kind"].items())
    print(f"noise bank {path}: {summary['segments']} quiet segments ({kinds}) from {len(summary['seconds_by_source'])}"
          " source(s)")
    return path
