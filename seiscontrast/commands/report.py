"""Label-efficiency report: pretrain (or take --pretrained), fine-tune at each fraction, train the from-scratch
and PhaseNet baselines at each fraction, evaluate all on test; table (mean ± sd over seeds) and plots.

    seiscontrast report --config configs/report_small.yaml --data synth_ds --out runs/report
"""

from __future__ import annotations

import argparse

from . import configs_and_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", help="report YAML config(s), e.g. configs/report_small.yaml")
    p.add_argument("--data", nargs="+", required=True, help="SeisBench dataset names or folders with picks")
    p.add_argument("--out", required=True, help="report folder (runs/, report.csv, report.md, label_efficiency.png)")
    p.add_argument("--pretrained", help="skip pretraining and use this model.pt")
    p.add_argument("--fractions", nargs="+", type=float, help="training fractions (default 0.05 0.1 0.2 0.5 1.0)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default 0)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="report config overrides")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..report import ReportConfig, markdown_table, run_report, verdict

    configs, overrides = configs_and_overrides(args)
    if args.fractions:
        overrides.append(f"fractions={list(args.fractions)}")
    if args.seeds:
        overrides.append(f"seeds={list(args.seeds)}")
    cfg = load_config(ReportConfig, configs, overrides)
    summary = run_report(cfg, args.data, args.out, args.pretrained, progress=not args.quiet)
    print(markdown_table(summary))
    print(verdict(summary))
    print(f"wrote {args.out}/report.md, report.csv, label_efficiency.png")
    return 0
