"""Does the study's checkpoint choice decide its failed runs? Scores each cell's last checkpoint (the final step)
next to the one the study kept (the best dev loss), on the same dev/test/real sets and dev threshold rule.

    python benchmarks/last_checkpoint_scores.py runs/study --size 16 --data runs/study_data \
        --real-data ../shared/data/seisbench-dummy
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from seiscontrast.checkpoints import read_model_file, save_model_file
from seiscontrast.pick_metrics import evaluate_picks
from seiscontrast.picker import load_picker_model
from seiscontrast.report import SYNTHETIC, _reference_sets


def f1(scores: dict, name: str) -> str:
    """``P / S`` pick F1 within 0.5 s of one scored set."""
    return f"{scores[name]['P_0.5s_f1']:.2f} / {scores[name]['S_0.5s_f1']:.2f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study", type=Path, help="a folder written by seiscontrast report")
    p.add_argument("--size", default="16", help="cell size (labelled traces, or 'all')")
    p.add_argument("--models", nargs="+", default=["pretrained_full", "scratch"])
    p.add_argument("--data", nargs="+", required=True, help="the study's --data")
    p.add_argument("--real-data", nargs="+", default=[], help="the study's --real-data")
    a = p.parse_args()
    dev, tests = _reference_sets(tuple(a.data), tuple(a.real_data))
    sets = [SYNTHETIC, *(k for k in tests if k != SYNTHETIC)]
    print("model | seed | " + " | ".join(f"{s}: P / S F1 0.5 s, kept → last" for s in sets))
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models:
            for cell in sorted((a.study / "runs" / a.size).glob(f"seed*/{model}")):
                spec = read_model_file(cell / "picker.pt")[0]
                last = Path(tmp) / f"{model}_{cell.parent.name}.pt"
                save_model_file(last, spec, read_model_file(cell / "checkpoints" / "last.ckpt")[1])
                now = evaluate_picks(load_picker_model(str(last)), dev, {"dev": dev, **tests}, [0.5])
                kept = json.loads((cell / "scores.json").read_text())["sets"]
                print(f"{model} | {cell.parent.name} | " + " | ".join(f"{f1(kept, s)} → {f1(now, s)}" for s in sets),
                      flush=True)


if __name__ == "__main__":
    main()
