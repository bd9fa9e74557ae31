"""Plot loss, accuracy, perplexity, temperature and learning-rate curves and codebook usage of a pretraining run,
or overlay the curves of several runs."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="the --out folder(s) of `seiscontrast pretrain`; "
                   "with several, their curves are overlaid in one comparison figure")
    p.add_argument("--out", help="image file (default RUN_DIR/pretraining.png; with several runs required)")


def run(args: argparse.Namespace) -> int:
    from ..plots import plot_pretraining, plot_pretraining_comparison

    if len(args.run_dirs) == 1:
        print(f"wrote {plot_pretraining(args.run_dirs[0], args.out)}")
        return 0
    if not args.out:
        raise ValueError("plot-pretrain: comparing several runs needs --out FILE.png")
    print(f"wrote {plot_pretraining_comparison(args.run_dirs, args.out)}")
    return 0
