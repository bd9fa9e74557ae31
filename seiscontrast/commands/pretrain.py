"""Self-supervised pretraining (wav2vec 2.0 objective) on SeisBench datasets or continuous ObsPy archives.

Examples::

    seiscontrast pretrain --config configs/pretrain_tiny.yaml --data synthetic_ds --out runs/tiny
    seiscontrast pretrain --config configs/pretrain_base.yaml --data ETHZ GEOFON --out runs/base \\
        trainer.devices=4 trainer.strategy=ddp optim.lr=3e-4
    seiscontrast pretrain --out runs/base --resume          # continue where it stopped
"""

from __future__ import annotations

import argparse

from . import training_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", help="one or more YAML configs merged in order (default: built-in Config 2)")
    p.add_argument("--data", nargs="+", help="SeisBench dataset names, SeisBench folders, or waveform files/dirs/globs")
    p.add_argument("--out", required=True, help="run folder (config, metrics.csv, checkpoints, model.pt)")
    p.add_argument("--max-steps", type=int, help="optimiser steps (overrides optim.max_steps)")
    p.add_argument("--seed", type=int, help="random seed (overrides seed)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.ckpt")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. model.context.dim=128")


def run(args: argparse.Namespace) -> int:
    from ..pretrain import PretrainConfig, run_pretraining

    cfg = training_config(args, PretrainConfig)
    model_path = run_pretraining(cfg, args.out, resume=args.resume, progress=not args.quiet)
    print(f"pretrained model: {model_path}")
    return 0
