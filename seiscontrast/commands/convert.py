"""Convert miniSEED (or any ObsPy-readable) files into a SeisBench-format dataset, with picks if given."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="files, directories (recursive) or glob patterns")
    p.add_argument("--out", required=True, help="output folder (metadata.csv + waveforms.hdf5)")
    p.add_argument("--picks", help="picks as CSV (network,station,phase,time[,location]) or QuakeML")
    p.add_argument("--trace-length", type=float, default=60.0, help="seconds per trace (default 60)")
    p.add_argument("--sampling-rate", type=float, default=100.0, help="output rate in Hz (default 100)")
    p.add_argument("--seed", type=int, default=0, help="seed of the train/dev/test assignment")


def run(args: argparse.Namespace) -> int:
    from ..data.convert import ConvertConfig, convert_archive
    from ..data.windows import WindowConfig

    out, report, n = convert_archive(args.inputs, args.out, args.picks,
                                     WindowConfig(sampling_rate=args.sampling_rate),
                                     ConvertConfig(trace_length=args.trace_length, seed=args.seed),
                                     progress=not args.quiet)
    print(f"wrote {n} traces to {out}")
    for src, msg in report.errors:
        print(f"skipped {src}: {msg}")
    for src, msg in report.warnings:
        print(f"used with changes {src}: {msg}")
    return 1 if report.errors or report.warnings else 0
