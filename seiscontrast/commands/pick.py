"""Pick P and S phases in miniSEED (or any ObsPy-readable) files with the bundled or a fine-tuned model.

Examples::

    seiscontrast pick --example                                   # the bundled real recording
    seiscontrast pick /data/archive/2024/ --out picks.csv
    seiscontrast pick "/data/*.mseed" --format quakeml --out picks.xml --plot plots/
    seiscontrast pick day.mseed --model runs/ft/picker.pt --p-threshold 0.5 --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", help="files, directories (recursive) or glob patterns")
    p.add_argument("--example", action="store_true", help="pick the bundled example recording (BW.RJOB, ObsPy)")
    p.add_argument("--model", default="default", help="'default' (bundled), a picker.pt, or a SeisBench .json/.pt")
    p.add_argument("--out", help="output file (default: print the picks)")
    p.add_argument("--format", choices=["csv", "quakeml", "json"], help="output format (default from --out suffix, else csv)")
    p.add_argument("--p-threshold", type=float, default=0.3, help="P probability threshold (default 0.3)")
    p.add_argument("--s-threshold", type=float, default=0.3, help="S probability threshold (default 0.3)")
    p.add_argument("--overlap", type=float, help="window overlap in samples (>= 1) or as a fraction (default 0.5)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--plot", metavar="DIR", help="write a figure per station into DIR")


def _format(args) -> str:
    if args.format:
        return args.format
    suffix = Path(args.out).suffix.lower() if args.out else ""
    return {".xml": "quakeml", ".qml": "quakeml", ".quakeml": "quakeml", ".json": "json", ".jsonl": "json"}.get(suffix, "csv")


def run(args: argparse.Namespace) -> int:
    from ..pick import PickSettings, pick_files, plot_station, summary, write_picks
    from ..picker import RESOURCES, load_picker_model

    paths = list(args.paths)
    if args.example:
        paths.append(str(RESOURCES / "example"))
    if not paths:
        raise ValueError("nothing to pick: give files/directories/patterns or --example")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: no CUDA device is available")
    model = load_picker_model(args.model)
    settings = PickSettings(args.p_threshold, args.s_threshold, args.overlap, args.batch_size, args.device)
    result = pick_files(paths, model, settings, keep_annotations=bool(args.plot), progress=not args.quiet)
    fmt = _format(args)
    if args.out:
        write_picks(result.picks, args.out, fmt)
        print(f"wrote {len(result.picks)} picks to {args.out} ({fmt})")
    elif len(result.picks):
        print(result.picks.to_string(index=False))
    if args.plot:
        for station, (rec, annotations, picks) in result.annotations.items():
            plot_station(station, rec, annotations, picks, Path(args.plot))
        print(f"plots in {args.plot}/")
    print(summary(result), file=sys.stderr if args.out is None and len(result.picks) else sys.stdout)
    return 1 if result.report.errors else 0
