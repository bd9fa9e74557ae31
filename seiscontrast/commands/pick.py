"""Pick P and S phases in miniSEED (or any ObsPy-readable) files or an SDS archive, station-chunk by station-chunk.

Memory stays flat however large the archive; picks are saved as each chunk finishes, and re-running the same
command continues where a killed run stopped.

examples:
  seiscontrast pick --example                                     # the bundled real recording
  seiscontrast pick /data/archive/2024/ --out picks.csv           # files, directories, globs
  seiscontrast pick --sds /data/SDS --start 2024-01-01 --end 2025-01-01 --select "CH.*..HH?" --out picks.csv --jobs 2
  seiscontrast pick "/data/*.mseed" --out picks.xml --plot plots/  # QuakeML, one figure per station
  seiscontrast pick day.mseed --model seisbench:PhaseNet:instance # any SeisBench picker (downloaded on first use)
  seiscontrast pick --sds /data/SDS --start 2024-01-01 --end 2025-01-01 --out picks.csv \\
      --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT        # one shard per SLURM array task
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from ..logs import get_logger

log = get_logger(__name__)


def _duration(text: str) -> float:
    """``1d``, ``6h``, ``30m``, ``600s`` or plain seconds."""
    units = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
    try:
        value = float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 1d, 6h, 30m, 600)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be positive")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    src = p.add_argument_group("input")
    src.add_argument("paths", nargs="*", help="files, directories (recursive) or glob patterns")
    src.add_argument("--example", action="store_true", help="pick the bundled example recording (BW.RJOB, ObsPy)")
    src.add_argument("--sds", metavar="ROOT", help="an SDS archive (ROOT/YEAR/NET/STA/CHA.D/...); needs --start/--end")
    src.add_argument("--start", help="SDS: first time to pick (e.g. 2024-01-01)")
    src.add_argument("--end", help="SDS: end of the time to pick (exclusive)")
    src.add_argument("--select", nargs="+", default=[], metavar="NET.STA.LOC.CHA",
                     help="SDS: channels to pick, wildcards allowed (default: all)")
    src.add_argument("--inventory", metavar="XML", help="StationXML: rotate Z/1/2 channels to Z/N/E by azimuth")
    p.add_argument("--model", default="default",
                   help="'default' (bundled), a picker.pt, a SeisBench .json/.pt, or seisbench:CLASS:WEIGHTS "
                        "(e.g. seisbench:PhaseNet:instance, seisbench:EQTransformer:original)")
    out = p.add_argument_group("output")
    out.add_argument("--out", help="output file (default: print the picks); work folder beside it: NAME_chunks/")
    out.add_argument("--format", choices=["csv", "quakeml", "json", "jsonl"],
                     help="output format (default from the --out suffix: .xml/.qml quakeml, .json, .jsonl; else csv)")
    out.add_argument("--plot", metavar="DIR", help="a figure of each station's first chunk (first 2 h) into DIR")
    out.add_argument("--restart", action="store_true", help="discard the picks of an earlier run of this --out")
    pk = p.add_argument_group("picking")
    pk.add_argument("--p-threshold", type=float, help="P probability threshold (default: the "
                   "model's own, see `seiscontrast calibrate`; 0.3 where it has none)")
    pk.add_argument("--s-threshold", type=float, help="S probability threshold (default: the "
                   "model's own, see `seiscontrast calibrate`; 0.3 where it has none)")
    pk.add_argument("--overlap", type=float, help="window overlap in samples (>= 1) or as a fraction of a window "
                    "(default: the model's own; 0.25 for seiscontrast models)")
    pk.add_argument("--highpass", type=float, help="corner (Hz) of the causal high-pass before picking (default: the "
                    "model's own window.highpass, 0.5 for the bundled model; 0: off; seiscontrast models only)")
    pk.add_argument("--batch-size", type=int, default=64, help="windows per forward pass (default 64)")
    pk.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ar = p.add_argument_group("archive")
    ar.add_argument("--chunk", type=_duration, default=21600.0, help="chunk length, e.g. 1d, 6h (default 6h)")
    ar.add_argument("--max-gap", type=_duration, default=120.0,
                    help="longer gaps start a new record instead of being zero-filled (default 120 s)")
    ar.add_argument("--min-rate", type=float, default=10.0, help="skip channels sampled below this, Hz (default 10)")
    ar.add_argument("--jobs", type=int, default=1, help="worker processes on this machine (default 1)")
    ar.add_argument("--shard", metavar="I/N", help="pick only shard I of N (0-based), e.g. a SLURM array task")


def _plan(args, model, archive):
    from obspy import UTCDateTime

    from ..archive import plan_files, plan_sds
    from ..pick import context_pad
    from ..picker import RESOURCES

    paths = list(args.paths) + ([str(RESOURCES / "example")] if args.example else [])
    if args.sds:
        if paths:
            raise ValueError("give either --sds or paths, not both")
        if not (args.start and args.end):
            raise ValueError("--sds needs --start and --end")
        try:
            start, end = UTCDateTime(args.start), UTCDateTime(args.end)
        except Exception:
            raise ValueError(f"--start {args.start!r} / --end {args.end!r}: not a time ObsPy understands") from None
        return plan_sds(args.sds, start, end, args.select, archive, context_pad(model))
    if not paths:
        raise ValueError("nothing to pick: give files/directories/patterns, --sds ROOT, or --example")
    return plan_files(paths, archive, context_pad(model))


def run(args: argparse.Namespace) -> int:
    from ..archive import ArchiveConfig, parse_shard
    from ..pick import PickSettings
    from ..pick_output import format_from_suffix, summary, write_picks
    from ..pick_run import RunSettings, WorkDir, assemble, run_plan, work_dir_for
    from ..picker import describe_model, load_picker_model

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
    if args.jobs < 1:
        raise ValueError(f"--jobs {args.jobs}: need at least 1")
    if args.inventory and not Path(args.inventory).is_file():
        raise FileNotFoundError(f"--inventory {args.inventory}: no such file")
    shard = parse_shard(args.shard) if args.shard else (0, 1)
    picking = PickSettings(args.p_threshold, args.s_threshold, args.overlap, args.batch_size, args.device,
                           highpass=args.highpass)   # checks the values before the model loads
    model = load_picker_model(args.model).to(args.device).eval()
    picking = picking.for_model(model)   # run.json records the thresholds used, the model's own included
    log.info("thresholds: P %g, S %g", picking.p_threshold, picking.s_threshold)
    name, version = describe_model(args.model, model)
    archive = ArchiveConfig(args.chunk, args.max_gap, args.min_rate,
                            str(Path(args.inventory).resolve()) if args.inventory else None)
    settings = RunSettings(name, version, picking, archive, args.plot)
    plan = _plan(args, model, archive)
    with tempfile.TemporaryDirectory() as tmp:
        work = WorkDir(work_dir_for(args.out) if args.out else Path(tmp) / "work", settings, args.restart)
        work.log(plan.report.errors, "ERROR")
        work.log(plan.report.warnings, "WARNING")
        chunks = plan.shard(*shard)
        run_plan(plan, chunks, work, model, args.model, args.jobs, progress=not args.quiet)
        result = assemble(plan, work)
        if result is None:
            done = sum(c.id in work.done for c in plan.chunks)
            print(f"shard {shard[0]}/{shard[1]} finished; {done} of {len(plan.chunks)} chunks of the archive are "
                  "picked. The last shard to finish writes the output; or re-run this command without --shard.")
            mine = [work.load(c) for c in chunks]
            return 1 if any(r.report.errors or r.report.warnings for r in mine) or plan.report.errors else 0
    fmt = args.format or format_from_suffix(args.out)
    if args.out:
        write_picks(result.picks, args.out, fmt, name, version)
        if not args.quiet:
            print(f"wrote {len(result.picks)} picks to {args.out} ({fmt}); chunk results and pick.log in "
                  f"{work.root}/")
    elif len(result.picks):
        print(result.picks.to_string(index=False))
    if args.plot and not args.quiet:
        print(f"plots in {args.plot}/")
    if not args.quiet:
        print(summary(result), file=sys.stderr if args.out is None and len(result.picks) else sys.stdout)
    return 1 if result.report.errors or result.report.warnings else 0
