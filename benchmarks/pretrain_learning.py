"""How well pretraining learns on 2 CPU cores: the tiny config on 4096-sample windows (300 steps) and the bundled
picker's backbone (tiny + picker_cpu, 800 steps), each with today's settings and with the settings before the
learning work (encoder kernels 8/4 resp. 8/8, feature penalty 10, 10-frame spans on the 6.25 Hz backbone, 32-wide
targets and tiny network, learning rate 2e-3, no entropy terms in the quantizer), on the same 600-trace synthetic
set (seed 1), in the same run.

Prints validation contrastive accuracy and codebook perplexity against the targets, writes one comparison plot
per config and ``learning.csv`` into ``--out``.

    python benchmarks/pretrain_learning.py --out runs/learning          # ~12 min on 2 cores
    python benchmarks/pretrain_learning.py --out runs/learning --only tiny --skip-before
    python benchmarks/pretrain_learning.py --out runs/ent --only tiny --skip-before \
        --set model.quantizer.batch_entropy_weight=5    # any config override, on top of each run's own
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from seiscontrast.config import load_config
from seiscontrast.data.synthetic import SynthConfig, write_synthetic_dataset
from seiscontrast.plots import plot_pretraining_comparison
from seiscontrast.pretrain import PretrainConfig, run_pretraining

ROOT = Path(__file__).resolve().parents[1]

#: name → (config files, steps, validation accuracy target, overrides that restore the settings before the fix);
#: the runs before the fix also take narrow_targets.yaml, the quantizer the configs had then
SETUPS = {
    "tiny": (["pretrain_tiny.yaml"], 300, 0.5,
             ["model.encoder.kernels=[8,4]", "loss.feature_penalty=10.0", "model.encoder.channels=[32,32]",
              "model.context.dim=32"]),
    "picker_backbone": (["pretrain_tiny.yaml", "picker_cpu.yaml"], 800, 0.45,
                        ["model.encoder.kernels=[8,8]", "loss.feature_penalty=10.0", "model.masking.mask_length=10"]),
}
PERPLEXITY_TARGET = 0.2  # share of groups x codes


def run(name: str, files: list[str], steps: int, data: Path, out: Path, overrides: list[str]
        ) -> tuple[PretrainConfig, pd.DataFrame]:
    cfg = load_config(PretrainConfig, [ROOT / "configs" / f for f in files],
                      [f"data.sources=['{data}']", f"optim.max_steps={steps}", "trainer.log_every_n_steps=1",
                       "trainer.val_every_n_steps=50", "trainer.limit_val_batches=4", "seed=0", *overrides])
    shutil.rmtree(out / name, ignore_errors=True)
    run_pretraining(cfg, out / name, progress=True)
    return cfg, pd.read_csv(out / name / "metrics.csv")


def summary(metrics: pd.DataFrame, groups_codes: int) -> dict[str, float]:
    val = metrics[["step", "val/accuracy"]].dropna()
    ppl = metrics[["step", "train/prob_perplexity"]].dropna().groupby("step")["train/prob_perplexity"].mean()
    val_ppl = metrics["val/prob_perplexity"].dropna() / groups_codes    # 32 windows each
    return {"val_accuracy_final": float(val["val/accuracy"].iloc[-1]), "val_accuracy_best": float(val["val/accuracy"].max()),
            "perplexity_final_share": float(ppl.iloc[-10:].mean() / groups_codes),
            "val_perplexity_min_share": float(val_ppl.min()),
            "perplexity_min_share": float(ppl.min() / groups_codes),     # single training batches of 8 windows
            "steps_below_target": float((ppl / groups_codes < PERPLEXITY_TARGET).mean())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs/learning"))
    p.add_argument("--only", choices=sorted(SETUPS), help="run one setup only")
    p.add_argument("--skip-before", action="store_true", help="do not re-run the settings before the fix")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="config overrides for every run (e.g. model.quantizer.selection_gradient=0.3)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "synth600"
    if not (data / "metadata.csv").is_file():
        write_synthetic_dataset(data, SynthConfig(n_traces=600, seed=1), n_jobs=2, progress=True)
    rows = []
    for name, (files, steps, target, before) in SETUPS.items():
        if args.only and name != args.only:
            continue
        variants = {f"{name}_now": (files, [])}
        if not args.skip_before:
            variants = {f"{name}_before": ([*files, "narrow_targets.yaml"], before), **variants}
        for run_name, (run_files, overrides) in variants.items():
            cfg, metrics = run(run_name, run_files, steps, data, args.out, [*overrides, *args.set])
            q = cfg.model.quantizer
            rows.append({"run": run_name, "steps": steps, "target_accuracy": target,
                         **summary(metrics, q.groups * q.codes)})
        plot_pretraining_comparison([args.out / r for r in variants], args.out / f"{name}_curves.png")
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "learning.csv", index=False)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    for row in rows:
        ok_acc = row["val_accuracy_final"] >= row["target_accuracy"]
        ok_ppl = min(row["perplexity_final_share"], row["val_perplexity_min_share"]) > PERPLEXITY_TARGET
        print(f"{row['run']}: accuracy target {row['target_accuracy']} {'met' if ok_acc else 'NOT met'}; "
              f"perplexity > {PERPLEXITY_TARGET:.0%} of max at the end and at every validation "
              f"{'met' if ok_ppl else 'NOT met'} ({row['steps_below_target']:.0%} of single training batches below)")


if __name__ == "__main__":
    main()
