"""Label-efficiency study: pretrain (or take --pretrained), fine-tune with every freeze schedule and choose one on
dev, train the from-scratch and PhaseNet baselines, at each labelled-trace count and seed; score all on the test
split and on real recordings; tables (mean ± sd over seeds) and plots. Re-running continues an interrupted study.

    seiscontrast report --config configs/report.yaml --data synth_ds --real-data real_ds --out runs/study --jobs 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import configs_and_overrides


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", nargs="+", help="report YAML config(s), e.g. configs/report.yaml")
    p.add_argument("--data", nargs="+", required=True, help="SeisBench dataset names or folders with picks")
    p.add_argument("--out", required=True, help="report folder (runs/, report.csv, report.md, label_efficiency.png)")
    p.add_argument("--pretrained", help="skip pretraining and use this model.pt")
    p.add_argument("--real-data", nargs="+", help="SeisBench folders of real recordings to score on (not trained on)")
    p.add_argument("--counts", nargs="+", type=int, help="labelled training traces per cell (default 16 64 256)")
    p.add_argument("--fractions", nargs="+", type=float, help="training fractions next to the counts (default none)")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default 0 1 2)")
    p.add_argument("--jobs", type=int, help="runs trained at once (default 1)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="report config overrides")


def run(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..report import ReportConfig, run_report

    configs, overrides = configs_and_overrides(args)
    for key in ("real_data", "counts", "fractions", "seeds"):
        if getattr(args, key):
            overrides.append(f"{key}=[{','.join(repr(str(v)) if key == 'real_data' else str(v) for v in getattr(args, key))}]")
    if args.jobs:
        overrides.append(f"jobs={args.jobs}")
    cfg = load_config(ReportConfig, configs, overrides)
    run_report(cfg, args.data, args.out, args.pretrained, progress=not args.quiet)
    print((Path(args.out) / "report.md").read_text())
    print(f"wrote {args.out}/report.md, report.csv, report_runs.csv, label_efficiency.png")
    return 0
