"""Matplotlib figures: pretraining curves, codebook usage, picks over waveforms, residual histograms."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; works without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

PRETRAIN_PANELS = [
    ("loss", ["train/loss", "val/loss"]),
    ("contrastive loss", ["train/contrastive_loss", "val/contrastive_loss"]),
    ("accuracy (masked frames)", ["train/accuracy", "val/accuracy"]),
    ("codebook perplexity", ["train/prob_perplexity", "train/code_perplexity"]),
    ("Gumbel temperature", ["train/gumbel_temperature"]),
    ("learning rate", [c for c in ("lr-AdamW", "lr-AdamW/pg1") if c]),
]


def _series(metrics: pd.DataFrame, column: str) -> pd.Series:
    s = metrics[["step", column]].dropna() if column in metrics else pd.DataFrame(columns=["step", column])
    return s.groupby("step")[column].mean()


def plot_pretraining(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Curves from ``metrics.csv`` and codebook usage from ``codebook_usage.csv`` → ``pretraining.png``."""
    run = Path(run_dir)
    if not (run / "metrics.csv").is_file():
        raise FileNotFoundError(f"{run}: no metrics.csv (is this a pretraining run folder?)")
    metrics = pd.read_csv(run / "metrics.csv")
    fig, axes = plt.subplots(2, 4, figsize=(17, 7))
    for ax, (title, columns) in zip(axes.flat, PRETRAIN_PANELS):
        for col in columns:
            s = _series(metrics, col)
            if len(s):
                ax.plot(s.index, s.values, ".-" if col.startswith("val") else "-", label=col, lw=1)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.lines:
            ax.legend(fontsize=7)
    usage_file = run / "codebook_usage.csv"
    ax_u, ax_h = axes.flat[6], axes.flat[7]
    if usage_file.is_file():
        usage = np.atleast_2d(np.loadtxt(usage_file, delimiter=","))
        for g, row in enumerate(usage):
            share = row / max(row.sum(), 1e-12)
            ax_u.plot(np.sort(share)[::-1], label=f"group {g}: {int((share > 1e-4).sum())}/{len(row)} used")
            ax_h.hist(np.log10(share + 1e-6), bins=40, alpha=0.6, label=f"group {g}")
        ax_u.set_yscale("log")
        ax_u.set_title("codebook usage (sorted)")
        ax_u.set_xlabel("code rank")
        ax_u.legend(fontsize=7)
        ax_h.set_title("log10 code share")
        ax_h.legend(fontsize=7)
    fig.suptitle(f"pretraining run {run.name}")
    fig.tight_layout()
    target = Path(out) if out else run / "pretraining.png"
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
