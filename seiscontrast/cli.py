"""The ``seiscontrast`` command line: one subcommand per job, ``-v/--verbose`` and ``-q/--quiet`` everywhere.

Expected failures (bad paths, bad configs, unreadable inputs) end with a one-line ``error:`` message and a
non-zero exit status, never a traceback (``-v`` shows the traceback for bug reports).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .logs import get_logger, setup_logging
from .memory import keep_freed_memory

log = get_logger("cli")

#: subcommand name → (module, function that adds its arguments); the module's ``run(args) -> int`` does the work.
COMMANDS: list[tuple[str, str, str]] = [
    ("synth", "seiscontrast.commands.synth", "write a realistic labelled synthetic SeisBench dataset"),
    ("convert", "seiscontrast.commands.convert", "turn miniSEED (+ picks CSV/QuakeML) into a SeisBench dataset"),
    ("pretrain", "seiscontrast.commands.pretrain", "self-supervised pretraining (wav2vec 2.0 objective)"),
    ("plot-pretrain", "seiscontrast.commands.plot_pretrain", "plot pretraining curves and codebook usage"),
    ("finetune", "seiscontrast.commands.finetune", "fine-tune a phase picker (or train a baseline)"),
    ("pseudo-label", "seiscontrast.commands.pseudo_label",
     "label real records with a picker's confident, augmentation-consistent picks (self-training)"),
    ("evaluate", "seiscontrast.commands.evaluate", "pick-benchmark evaluation on dev/test"),
    ("report", "seiscontrast.commands.report", "label-efficiency report: pretrained vs scratch vs PhaseNet"),
    ("calibrate", "seiscontrast.commands.calibrate", "set a picker's default P/S thresholds (best F1 on dev)"),
    ("pick", "seiscontrast.commands.pick", "pick P and S phases in miniSEED/ObsPy files"),
    ("score-picks", "seiscontrast.commands.score_picks", "score a picker against your catalogue's picks"),
    ("embed", "seiscontrast.commands.embed", "frame-level and pooled embeddings to HDF5"),
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one sub-parser per command."""
    import importlib

    parser = argparse.ArgumentParser(prog="seiscontrast", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"seiscontrast {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more output (-vv: debug)")
    common.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        mod = importlib.import_module(module)
        p = sub.add_parser(name, parents=[common], help=help_text, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seiscontrast`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(-1 if args.quiet else args.verbose)
    keep_freed_memory()
    run: Callable[[argparse.Namespace], int] = args._run
    try:
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, OSError) as err:
        if args.verbose:
            logging.getLogger("seiscontrast").exception("failed")
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
