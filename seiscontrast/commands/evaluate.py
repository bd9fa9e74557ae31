"""Evaluate a picker with the SeisBench pick-benchmark protocol (detection, P/S identification, onsets)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="picker.pt from `seiscontrast finetune`")
    p.add_argument("--data", nargs="+", required=True, help="SeisBench dataset names or folders (dev/test used)")
    p.add_argument("--out", required=True, help="folder for results.json/csv, windows.csv and plots")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu", help="cpu or cuda")


def format_results(results: dict) -> str:
    """A short human-readable table of the test metrics."""
    t = results["test"]
    lines = [f"test split ({t['n_detection_windows']} detection windows, {t['n_phase_windows']} phase windows)",
             f"  detection   AUC {t['det_auc']:.3f}  precision {t['det_precision']:.3f}  recall {t['det_recall']:.3f}"
             f"  F1 {t['det_f1']:.3f}  (threshold {t['det_threshold']:.3f} from dev)",
             f"  P vs S      MCC {t['ps_mcc']:.3f}  (threshold {t['ps_threshold']:.3f} from dev)"]
    for ph in ("P", "S"):
        lines.append(f"  {ph} onsets    n {t[f'{ph}_n']}  mean {t[f'{ph}_residual_mean_s']:+.3f} s  RMSE "
                     f"{t[f'{ph}_rmse_s']:.3f} s  MAE {t[f'{ph}_mae_s']:.3f} s  outliers>0.5s "
                     f"{t[f'{ph}_outlier_fraction']:.3f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate

    results = evaluate(args.model, args.data, args.out, args.batch_size, args.device, progress=not args.quiet)
    print(format_results(results))
    print(f"wrote {args.out}/results.json")
    return 0
