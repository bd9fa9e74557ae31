"""Plot loss, accuracy, perplexity, temperature and learning-rate curves and codebook usage of a pretraining run."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="the --out folder of `seiscontrast pretrain`")
    p.add_argument("--out", help="image file (default RUN_DIR/pretraining.png)")


def run(args: argparse.Namespace) -> int:
    from ..plots import plot_pretraining

    print(f"wrote {plot_pretraining(args.run_dir, args.out)}")
    return 0
