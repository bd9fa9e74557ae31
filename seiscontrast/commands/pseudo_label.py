"""Pseudo-label unlabelled real records with a picker's own confident, augmentation-consistent picks.

Example (self-training: label the real records, then fine-tune on them next to the synthetic data)::

    seiscontrast pseudo-label my_archive_ds --out runs/pseudo --model runs/ft/picker.pt
    seiscontrast finetune --config configs/finetune_full.yaml --data synth_ds runs/pseudo --out runs/self \\
        --init-from runs/ft/picker.pt "data.repeats=[1,20]"
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.ArgumentDefaultsHelpFormatter
    p.add_argument("data", help="real records: a SeisBench-format folder (e.g. from `seiscontrast convert`) or a "
                   "SeisBench dataset name")
    p.add_argument("--out", required=True, help="new SeisBench folder for the labelled records (+ pseudo_labels.csv)")
    p.add_argument("--model", default="default", help="the teacher: picker.pt, 'default' or seisbench:NAME:WEIGHTS")
    p.add_argument("--splits", nargs="+", default=["train"], help="which splits of DATA to label")
    p.add_argument("--min-probability", type=float, default=0.5, help="peak probability a label needs")
    p.add_argument("--agreement", type=float, default=0.2, help="seconds within which all augmented runs must agree")
    p.add_argument("--require", default="PS", help="phases every kept record must have ('' for any)")


def run(args: argparse.Namespace) -> int:
    from ..picker import load_picker_model
    from ..pseudo_labels import PseudoLabelConfig, write_pseudo_labels

    cfg = PseudoLabelConfig(min_probability=args.min_probability, agreement=args.agreement, require=args.require)
    table = write_pseudo_labels(load_picker_model(args.model), args.data, args.out, cfg, tuple(args.splits),
                                progress=not args.quiet)
    print(f"kept {int((table.decision == 'kept').sum())} of {len(table)} records in {args.out}")
    print(table.decision.value_counts().to_string())
    return 0
