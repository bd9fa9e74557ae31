"""Fine-tune a phase picker (P/S/noise + detection) from a pretrained model, or train a baseline.

Examples::

    seiscontrast finetune --config configs/finetune_full.yaml --data synth_ds --out runs/ft \\
        --pretrained runs/tiny/model.pt --fraction 0.05
    seiscontrast finetune --config configs/finetune_full.yaml --data ETHZ --out runs/scratch    # no pretraining
    seiscontrast finetune --config configs/finetune_phasenet.yaml --data ETHZ --out runs/phasenet
    seiscontrast finetune --config configs/finetune_full.yaml --data synth_ds pseudo_ds --out runs/self \
        --init-from runs/ft/picker.pt "data.repeats=[1,20]"        # self-training (seiscontrast pseudo-label)
"""

from __future__ import annotations

import argparse

from . import training_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", help="one or more YAML configs merged in order (e.g. configs/finetune_gradual.yaml)")
    p.add_argument("--data", nargs="+", help="SeisBench dataset names or SeisBench-format folders with picks")
    p.add_argument("--out", required=True, help="run folder (config, metrics.csv, checkpoints, picker.pt)")
    p.add_argument("--pretrained", help="model.pt from `seiscontrast pretrain` (omit: random initialisation)")
    p.add_argument("--init-from", help="picker.pt to continue training from (its network and weights), e.g. "
                   "on synthetic plus pseudo-labelled real data (`seiscontrast pseudo-label`)")
    p.add_argument("--fraction", type=float, help="share of the training split to use (block-wise, nested)")
    p.add_argument("--schedule", choices=["full", "frozen", "freeze_then_unfreeze", "gradual"],
                   help="freeze/unfreeze schedule (overrides schedule.name)")
    p.add_argument("--max-steps", type=int, help="optimiser steps")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. labels.sigma=10")


def run(args: argparse.Namespace) -> int:
    from ..finetune import FinetuneConfig, run_finetuning

    cfg = training_config(args, FinetuneConfig)
    print(f"picker: {run_finetuning(cfg, args.out, resume=args.resume, progress=not args.quiet)}")
    return 0
