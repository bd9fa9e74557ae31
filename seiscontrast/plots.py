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
    from .training import read_metrics

    metrics = read_metrics(run)
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


COMPARE_PANELS = [
    ("contrastive loss (train)", "train/contrastive_loss"),
    ("accuracy (validation)", "val/accuracy"),
    ("accuracy (train)", "train/accuracy"),
    ("codebook perplexity (train, soft)", "train/prob_perplexity"),
]


def plot_pretraining_comparison(run_dirs: list[str | Path], out: str | Path, smooth: int = 10) -> Path:
    """Overlay the curves of several pretraining runs (e.g. before/after a change) → one PNG.

    Training curves are smoothed with a centred rolling mean over ``smooth`` logged steps.
    """
    from .training import read_metrics

    runs = {Path(r).name: read_metrics(Path(r)) for r in run_dirs}  # all read before a figure is opened
    fig, axes = plt.subplots(1, len(COMPARE_PANELS), figsize=(4.5 * len(COMPARE_PANELS), 3.6))
    for name, metrics in runs.items():
        for ax, (_, col) in zip(axes, COMPARE_PANELS):
            s = _series(metrics, col)
            if col.startswith("train/"):
                s = s.rolling(smooth, center=True, min_periods=1).mean()
            ax.plot(s.index, s.values, ".-" if col.startswith("val/") else "-", lw=1.2, label=name)
    for ax, (title, _) in zip(axes, COMPARE_PANELS):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return Path(out)


def plot_evaluation(scored: pd.DataFrame, probs: np.ndarray, windows, window, out_dir: Path,
                    n_examples: int = 4) -> list[Path]:
    """Residual histograms (P, S), detection score distributions, and example windows with probability curves.

    ``windows`` gives the input window of each scored row (``windows[k]["X"]``, e.g. the evaluation's
    ``SteeredGenerator``)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fs = window.sampling_rate
    ph = scored[scored.task == "phase"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, phase, colour in ((axes[0], "P", "tab:blue"), (axes[1], "S", "tab:red")):
        r = ph[ph.phase == phase].residual_s.dropna()
        ax.hist(r.clip(-1.5, 1.5), bins=np.linspace(-1.5, 1.5, 61), color=colour)
        ax.axvspan(-0.5, 0.5, color="grey", alpha=0.15, label="|residual| <= 0.5 s")
        ax.set_title(f"{phase} onset residuals (n={len(r)}, MAE {r.abs().mean():.3f} s)")
        ax.set_xlabel("predicted - labelled (s), clipped to ±1.5")
        ax.legend(fontsize=8)
    d = scored[scored.task == "detection"]
    for label, name in ((1, "event windows"), (0, "noise windows")):
        axes[2].hist(d[d.label == label].det_score, bins=np.linspace(0, 1, 41), alpha=0.6, label=name)
    axes[2].set_title("detection score (max event probability)")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    paths = [out_dir / "residuals.png"]
    fig.savefig(paths[0], dpi=100)
    plt.close(fig)

    examples = ph.groupby("phase").head(n_examples // 2).index[:n_examples]
    if len(examples):
        fig, axes = plt.subplots(len(examples), 1, figsize=(13, 2.6 * len(examples)), squeeze=False)
        for ax, k in zip(axes[:, 0], examples):
            row = scored.loc[k]
            seg = windows[int(k)]["X"]
            t = np.arange(window.length) / fs
            scale = np.abs(seg).max() or 1.0
            for c in range(3):  # Z, N, E from top to bottom
                ax.plot(t, seg[c] / scale * 0.45 + 2.5 - c, lw=0.5, color="k")
            ax.plot(t, probs[k, 0] * 0.9 - 1.2, color="tab:blue", label="P probability")
            ax.plot(t, probs[k, 1] * 0.9 - 1.2, color="tab:red", label="S probability")
            ax.axvline(row.onset / fs, color="tab:blue" if row.phase == "P" else "tab:red", ls="--",
                       label=f"labelled {row.phase}")
            ax.set_yticks([])
            ax.set_xlim(0, t[-1])
            ax.legend(fontsize=7, loc="upper right")
        axes[-1, 0].set_xlabel("time in window (s)")
        fig.tight_layout()
        paths.append(out_dir / "examples.png")
        fig.savefig(paths[-1], dpi=90)
        plt.close(fig)
    return paths
