"""Score a picker against your catalogue: recall within 0.1/0.2/0.5 s, residuals and extra picks, by phase and by
instrument (HH broadband, EH short-period, HN accelerometer, …).

The waveforms are picked as `seiscontrast pick` picks them (or give --picks to score picks made earlier, by any
picker); references are analyst picks from QuakeML or a CSV (network, station, phase, time; optionally channel).

examples:
  seiscontrast score-picks --catalog events.xml waveforms/ --out scores/
  seiscontrast score-picks --catalog picks.csv "data/*.mseed" --model seisbench:PhaseNet:instance --out pn/
  seiscontrast score-picks --catalog events.xml waveforms/ --picks my_picks.csv   # no model run
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("paths", nargs="+", help="waveform files, directories (recursive) or glob patterns")
    p.add_argument("--catalog", required=True, help="reference picks: QuakeML (or any obspy.read_events format) "
                   "or CSV with columns network, station, phase, time (optional: channel, location)")
    p.add_argument("--picks", help="score these picks (CSV or QuakeML) instead of picking the waveforms")
    p.add_argument("--model", default="default", help="the picker, as for `seiscontrast pick` (default: bundled)")
    p.add_argument("--out", help="folder for references.csv, extra_picks.csv, summary.csv, picks.csv, scores.png")
    p.add_argument("--tolerances", type=float, nargs="+", default=[0.1, 0.2, 0.5], help="seconds (default 0.1 0.2 "
                   "0.5); the largest also bounds MAE, bias and extra picks")
    p.add_argument("--margin", type=float, default=30.0, help="score an instrument's picks within this many "
                   "seconds of its references (default 30; negative: all its picks)")
    p.add_argument("--p-threshold", type=float, default=0.3, help="P probability threshold (default 0.3)")
    p.add_argument("--s-threshold", type=float, default=0.3, help="S probability threshold (default 0.3)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")


def run(args: argparse.Namespace) -> int:
    from ..catalog_scores import ScoreConfig, coverage_from_files, format_summary, plot_scores, score_picks
    from ..data.convert import read_picks
    from ..data.obspy_source import InputReport

    cfg = ScoreConfig(tuple(args.tolerances), None if args.margin < 0 else args.margin)
    references = read_picks(args.catalog)
    if not len(references):
        raise ValueError(f"--catalog {args.catalog}: no P or S picks in it")
    report = InputReport()
    coverage = coverage_from_files(args.paths, report)
    if args.picks:
        picks = read_picks(args.picks)
        picks["time"] = picks["time"].astype(str)
    else:
        from ..pick import PickSettings, pick_files
        from ..picker import load_picker_model

        model = load_picker_model(args.model)
        result = pick_files(args.paths, model, PickSettings(args.p_threshold, args.s_threshold, device=args.device))
        picks = result.picks
        report.extend(result.report)
    scores = score_picks(picks, references, coverage, cfg)
    print(f"{len(references)} reference picks, {len(picks)} picks; matched one to one per phase and instrument")
    print(format_summary(scores))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        scores.references.to_csv(out / "references.csv", index=False)
        scores.extra.to_csv(out / "extra_picks.csv", index=False)
        scores.no_data.to_csv(out / "no_data.csv", index=False)
        scores.summary.to_csv(out / "summary.csv", index=False)
        picks.to_csv(out / "picks.csv", index=False)
        plot_scores(scores, out / "scores.png")
        print(f"wrote {out}/summary.csv, references.csv, extra_picks.csv, picks.csv and scores.png")
    return 1 if report.errors else 0
