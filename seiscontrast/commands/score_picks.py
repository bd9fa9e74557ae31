"""Score a picker against your catalogue: recall within 0.1/0.2/0.5 s, residuals and extra picks, by phase and by
instrument (HH broadband, EH short-period, HN accelerometer, …).

The waveforms are picked as `seiscontrast pick` picks them (or give --picks to score picks made earlier, by any
picker); references are analyst picks from QuakeML or a CSV (network, station, phase, time; optionally channel).

examples:
  seiscontrast score-picks --catalog events.xml waveforms/ --out scores/
  seiscontrast score-picks --catalog events.xml --sds /data/SDS --out scores/     # only around the references
  seiscontrast score-picks --catalog picks.csv "data/*.mseed" --model seisbench:PhaseNet:instance --out pn/
  seiscontrast score-picks --catalog events.xml waveforms/ --picks my_picks.csv   # no model run
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("paths", nargs="*", help="waveform files, directories (recursive) or glob patterns")
    p.add_argument("--sds", metavar="ROOT", help="an SDS archive instead of paths: only the spans within --margin of "
                   "each station's references are read and picked")
    p.add_argument("--catalog", required=True, help="reference picks: QuakeML (or any obspy.read_events format) "
                   "or CSV with columns network, station, phase, time (optional: channel, location)")
    p.add_argument("--picks", help="score these picks (CSV or QuakeML) instead of picking the waveforms")
    p.add_argument("--model", default="default", help="the picker, as for `seiscontrast pick` (default: bundled)")
    p.add_argument("--out", help="folder for references.csv, extra_picks.csv, summary.csv, picks.csv, scores.png")
    p.add_argument("--tolerances", type=float, nargs="+", default=[0.1, 0.2, 0.5], help="seconds (default 0.1 0.2 "
                   "0.5); the largest also bounds MAE, bias and extra picks")
    p.add_argument("--margin", type=float, default=30.0, help="score an instrument's picks within this many "
                   "seconds of its references (default 30; negative: all its picks)")
    p.add_argument("--p-threshold", type=float, help="P probability threshold (default: the "
                   "model's own, see `seiscontrast calibrate`; 0.3 where it has none)")
    p.add_argument("--s-threshold", type=float, help="S probability threshold (default: the "
                   "model's own, see `seiscontrast calibrate`; 0.3 where it has none)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--thresholds", type=float, nargs="+", metavar="T", help="also score at these probability "
                   "thresholds (from the same probabilities) and name the best per phase by F1 within the largest "
                   "tolerance, e.g. --thresholds 0.1 0.2 0.3 0.4 0.5 0.6 0.7")


def _model(args):
    from ..picker import load_picker_model

    return load_picker_model(args.model).to(args.device).eval()


def run(args: argparse.Namespace) -> int:
    from .. import catalog_scores as cs
    from ..archive import ArchiveConfig, plan_files
    from ..data.convert import read_picks
    from ..pick import PickSettings, context_pad, pick_plan

    cfg = cs.ScoreConfig(tuple(args.tolerances), None if args.margin < 0 else args.margin)
    if bool(args.paths) == bool(args.sds):
        raise ValueError("give waveform paths or --sds ROOT (one of them)")
    if args.sds and cfg.margin is None:
        raise ValueError("--sds picks only around the references: give --margin >= 0")
    if args.thresholds and args.picks:
        raise ValueError("--thresholds needs the waveforms picked here (not --picks)")
    references = read_picks(args.catalog)
    if not len(references):
        raise ValueError(f"--catalog {args.catalog}: no P or S picks in it")
    settings = PickSettings(args.p_threshold, args.s_threshold, device=args.device, sweep=tuple(args.thresholds or ()))
    model = None if args.picks else _model(args)
    pad = context_pad(model) if model is not None else 0.0
    if args.sds:
        plan = cs.plan_sds_around(args.sds, references, cfg.margin, pad)
    else:
        plan = plan_files(args.paths, ArchiveConfig(), pad)
    coverage = cs.coverage_of(plan)
    if model is None:
        picks, swept, report = read_picks(args.picks), {}, plan.report
    else:
        result = pick_plan(plan, model, settings, progress=not args.quiet)
        picks, swept, report = result.picks, result.sweep, result.report
    scores = cs.score_picks(picks, references, coverage, cfg)
    print(f"{len(references)} reference picks, {len(picks)} picks; matched one to one per phase and instrument")
    print(cs.format_summary(scores))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        scores.references.to_csv(out / "references.csv", index=False)
        scores.extra.to_csv(out / "extra_picks.csv", index=False)
        scores.no_data.to_csv(out / "no_data.csv", index=False)
        scores.summary.to_csv(out / "summary.csv", index=False)
        picks.to_csv(out / "picks.csv", index=False)
        cs.plot_scores(scores, out / "scores.png")
        print(f"wrote {out}/summary.csv, references.csv, extra_picks.csv, picks.csv and scores.png")
    if swept:
        table, best = cs.threshold_table(swept, references, coverage, cfg)
        print(f"\nby threshold (within {cfg.tolerances[-1]:g} s; precision = matched / (matched + extra picks)):")
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print("best F1: " + ", ".join(f"{ph} at {t:g}" for ph, t in best.items())
              + " (use --p-threshold/--s-threshold with `seiscontrast pick`)")
        if args.out:
            table.to_csv(Path(args.out) / "thresholds.csv", index=False)
    return 1 if report.errors else 0
