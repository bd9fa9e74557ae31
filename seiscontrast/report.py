"""Label-efficiency report: pretrained + fine-tuned vs the same architecture from scratch vs SeisBench PhaseNet,
each trained by the same trainer on the same nested training fractions, evaluated on the test split.

Every run lives in its own folder below ``out/runs/``; finished runs are reused, so an interrupted report
continues where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .config import config_from_dict, config_to_dict, load_config, save_config
from .evaluate import evaluate
from .finetune import FinetuneConfig, resolve_pretrained, run_finetuning
from .logs import get_logger
from .model import ModelConfig
from .pretrain import PretrainConfig, run_pretraining

log = get_logger(__name__)
METRICS = ["det_auc", "det_f1", "ps_mcc", "P_mae_s", "S_mae_s", "P_outlier_fraction", "S_outlier_fraction"]
MODELS = ("pretrained", "scratch", "phasenet")


@dataclass
class ReportConfig:
    """Attributes:
    fractions: training fractions (block-wise nested subsets of the train split).
    seeds: seeds; each (fraction, seed) trains all three models.
    pretrain_configs / pretrain_overrides: how to pretrain when no pretrained model is given.
    finetune_configs: configs of the pretrained fine-tuning (the schedule lives here).
    scratch_overrides: what differs for the from-scratch baseline (same architecture, random weights).
    phasenet_configs: configs of the PhaseNet baseline.
    common_overrides: applied to all three (steps, batch size, validation interval, …).
    """

    fractions: list[float] = field(default_factory=lambda: [0.05, 0.1, 0.2, 0.5, 1.0])
    seeds: list[int] = field(default_factory=lambda: [0])
    pretrain_configs: list[str] = field(default_factory=lambda: ["configs/pretrain_tiny.yaml"])
    pretrain_overrides: list[str] = field(default_factory=list)
    finetune_configs: list[str] = field(default_factory=lambda: ["configs/finetune_full.yaml"])
    scratch_overrides: list[str] = field(default_factory=lambda: ["schedule.name=full", "schedule.backbone_lr_mult=1.0"])
    phasenet_configs: list[str] = field(default_factory=lambda: ["configs/finetune_phasenet.yaml"])
    common_overrides: list[str] = field(default_factory=list)


def _finetune_config(configs, overrides) -> FinetuneConfig:
    return load_config(FinetuneConfig, configs, overrides)


def run_report(cfg: ReportConfig, sources: list[str], out_dir: str | Path, pretrained: str | None = None,
               progress: bool = True) -> pd.DataFrame:
    """Train and evaluate everything; write ``report.csv``, ``report.md`` and ``label_efficiency.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "report_config.yaml")
    data = [f"data.sources=[{','.join(repr(str(s)) for s in sources)}]"]
    if pretrained is None:
        pretrained_path = out / "pretrain" / "model.pt"
        if not pretrained_path.is_file():
            pcfg = load_config(PretrainConfig, cfg.pretrain_configs, [*cfg.pretrain_overrides, *data])
            run_pretraining(pcfg, out / "pretrain", progress=progress)
        pretrained = str(pretrained_path)
    model_cfg = config_to_dict(resolve_pretrained(load_config(FinetuneConfig, None, [f"pretrained='{pretrained}'"])).picker.model)
    rows = []
    for seed in cfg.seeds:
        for fraction in cfg.fractions:
            common = [*cfg.common_overrides, *data, f"data.fraction={fraction}", f"seed={seed}",
                      f"data.fraction_seed={seed}"]
            runs = {
                "pretrained": _finetune_config(cfg.finetune_configs, [*common, f"pretrained='{pretrained}'"]),
                "scratch": _finetune_config(cfg.finetune_configs, [*common, *cfg.scratch_overrides]),
                "phasenet": _finetune_config(cfg.phasenet_configs, common),
            }
            runs["scratch"].picker.model = config_from_dict(ModelConfig, model_cfg)   # same architecture
            for name, fcfg in runs.items():
                run_dir = out / "runs" / f"fraction{fraction:g}_seed{seed}" / name
                result_file = run_dir / "evaluation" / "results.json"
                if not result_file.is_file():
                    picker = run_dir / "picker.pt"
                    if not picker.is_file():
                        log.info("training %s at fraction %g, seed %d", name, fraction, seed)
                        run_finetuning(fcfg, run_dir, progress=progress)
                    evaluate(picker, sources, run_dir / "evaluation", progress=False, plots=False)
                test = json.loads(result_file.read_text())["test"]
                rows.append({"model": name, "fraction": fraction, "seed": seed, **{m: test[m] for m in METRICS}})
    table = pd.DataFrame(rows)
    table.to_csv(out / "report_runs.csv", index=False)
    summary = summarise(table)
    summary.to_csv(out / "report.csv", index=False)
    (out / "report.md").write_text(markdown_table(summary) + "\n\n" + verdict(summary) + "\n")
    plot_label_efficiency(table, out / "label_efficiency.png")
    return summary


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds for each (model, fraction)."""
    g = table.groupby(["model", "fraction"])[METRICS]
    mean, sd = g.mean(), g.std(ddof=1).fillna(0.0)
    out = mean.add_suffix("_mean").join(sd.add_suffix("_sd")).reset_index()
    out["n_seeds"] = g.size().to_numpy()
    return out


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table (mean ± sd over seeds)."""
    head = "| model | fraction | " + " | ".join(METRICS) + " |"
    lines = [head, "|" + "---|" * (len(METRICS) + 2)]
    for _, r in summary.sort_values(["fraction", "model"]).iterrows():
        cells = [f"{r[m + '_mean']:.3f} ± {r[m + '_sd']:.3f}" for m in METRICS]
        lines.append(f"| {r.model} | {r.fraction:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(summary: pd.DataFrame, fraction: float | None = None) -> str:
    """Plain statement of whether pretrained beats both baselines at the smallest fraction."""
    fraction = fraction if fraction is not None else summary.fraction.min()
    at = summary[summary.fraction == fraction].set_index("model")
    if not set(MODELS) <= set(at.index):
        return "incomplete report"
    lines = [f"At {fraction:g} of the labels:"]
    for metric, better in (("P_mae_s", "lower"), ("S_mae_s", "lower"), ("ps_mcc", "higher")):
        ours = at.loc["pretrained", metric + "_mean"]
        for base in ("scratch", "phasenet"):
            theirs = at.loc[base, metric + "_mean"]
            wins = ours < theirs if better == "lower" else ours > theirs
            lines.append(f"- {metric}: pretrained {ours:.3f} vs {base} {theirs:.3f} -> "
                         f"{'pretrained better' if wins else 'pretrained NOT better'}")
    return "\n".join(lines)


def plot_label_efficiency(table: pd.DataFrame, path: Path) -> Path:
    """One panel per metric: test value vs training fraction for the three models."""
    from .plots import plt

    fig, axes = plt.subplots(2, 4, figsize=(17, 7))
    for ax, metric in zip(axes.flat, METRICS):
        for model in MODELS:
            sub = table[table.model == model].groupby("fraction")[metric]
            m, s = sub.mean(), sub.std(ddof=1).fillna(0)
            if len(m):
                ax.errorbar(m.index, m.values, yerr=s.values, marker="o", capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xlabel("training fraction")
        ax.set_title(metric)
        ax.legend(fontsize=7)
    axes.flat[-1].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

