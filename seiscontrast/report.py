"""Label-efficiency study: does pretraining give a better picker from fewer labels?

Models, all trained by the same trainer on the same windows for the same number of steps:

* ``pretrained/<schedule>``: the pretrained backbone fine-tuned with each freeze schedule (one config per
  schedule). Every schedule runs at ``select_schedule_at`` labelled traces; the one with the best pick F1 on
  **dev** becomes the headline and runs at every size.
* ``scratch``: the same architecture from random weights.
* ``phasenet``: SeisBench's PhaseNet.

Sizes are labelled-trace counts (and optionally fractions) of the training split, nested for each seed; every
(model, size, seed) cell is one run in ``out/runs/<size>/seed<seed>/<model>/``. A finished cell keeps its
``scores.json`` and is never recomputed, so an interrupted study continues where it stopped.

Each cell is scored with the SeisBench pick-benchmark tasks on the synthetic test split (``evaluate``) and with
pick-level precision/recall/F1 within 0.1 s and 0.5 s (:mod:`.pick_metrics`) on the test split and on real
recordings (``real_data``), at a probability threshold chosen on the dev split.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import pandas as pd

from .config import config_from_dict, config_to_dict, load_config, save_config
from .finetune import FinetuneConfig, resolve_pretrained
from .logs import get_logger, progress_bar
from .model import ModelConfig
from .pretrain import PretrainConfig

log = get_logger(__name__)
BENCHMARK = ["det_auc", "det_f1", "ps_mcc", "P_inlier_mae_s", "S_inlier_mae_s", "P_outlier_fraction",
             "S_outlier_fraction"]
HEADLINE = ["P_0.5s_f1", "S_0.5s_f1", "P_0.1s_f1", "S_0.1s_f1"]
SYNTHETIC = "synthetic test"


@dataclass
class ReportConfig:
    """Attributes:
    counts: labelled training traces per cell (nested subsets for each seed).
    include_all: also train on the whole training split.
    fractions: training fractions, next to the counts.
    seeds: fine-tuning seeds; each also draws its own nested subsets.
    pretrain_configs / pretrain_overrides: how to pretrain when no pretrained model is given.
    finetune_configs: one config per freeze schedule of the pretrained model.
    select_schedule_at: labelled traces at which every schedule runs; the best on dev is the headline.
    scratch_overrides: what differs for the from-scratch baseline (same architecture, random weights).
    phasenet_configs: configs of the PhaseNet baseline.
    common_overrides: applied to every fine-tuning run (steps, batch size, validation interval, …).
    real_data: SeisBench-format folders of real recordings (pick columns, or source + station coordinates
        for TauP reference onsets), scored at the dev threshold; never trained on.
    tolerances: pick-matching tolerances (s).
    jobs: cells trained at once (each process gets cores / jobs threads).
    """

    counts: list[int] = field(default_factory=lambda: [16, 64, 256])
    include_all: bool = True
    fractions: list[float] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    pretrain_configs: list[str] = field(default_factory=lambda: [
        "configs/pretrain_tiny.yaml", "configs/picker_cpu.yaml", "configs/narrow_targets.yaml"])
    pretrain_overrides: list[str] = field(default_factory=lambda: [
        "optim.max_steps=800", "trainer.val_every_n_steps=200", "model.quantizer.batch_entropy_weight=10"])
    finetune_configs: list[str] = field(default_factory=lambda: [
        "configs/finetune_full.yaml", "configs/finetune_frozen.yaml", "configs/finetune_unfreeze.yaml",
        "configs/finetune_gradual.yaml"])
    select_schedule_at: int = 64
    scratch_overrides: list[str] = field(default_factory=lambda: ["schedule.name=full", "schedule.backbone_lr_mult=1.0"])
    phasenet_configs: list[str] = field(default_factory=lambda: ["configs/finetune_phasenet.yaml"])
    common_overrides: list[str] = field(default_factory=list)
    real_data: list[str] = field(default_factory=list)
    tolerances: list[float] = field(default_factory=lambda: [0.1, 0.5])
    jobs: int = 1


@dataclass
class Cell:
    """One training run of the study."""

    model: str          # pretrained/<schedule>, scratch or phasenet
    size: str           # "16", "all", "f0.05"
    seed: int
    config: dict        # its FinetuneConfig
    n_traces: int = 0

    def folder(self, out: Path) -> Path:
        return out / "runs" / self.size / f"seed{self.seed}" / self.model.replace("/", "_")


def _sizes(cfg: ReportConfig) -> list[tuple[str, list[str]]]:
    """``(label, data overrides)`` per training-set size."""
    sizes = [(str(c), [f"data.max_traces={c}"]) for c in cfg.counts]
    sizes += [(f"f{f:g}", [f"data.fraction={f}"]) for f in cfg.fractions]
    return sizes + ([("all", [])] if cfg.include_all else [])


def _n_train(sources: list[str], window, data_cfg) -> int:
    from .data.seisbench_source import open_datasets, split

    return len(split(open_datasets(sources, window), "train", data_cfg))


def plan(cfg: ReportConfig, sources: list[str], pretrained: str) -> tuple[list[Cell], dict[str, list[Cell]]]:
    """Schedule-selection cells (every schedule at ``select_schedule_at``) and, per schedule, the cells that
    complete the study if that schedule is the headline (it at every size, and both baselines)."""
    data = [f"data.sources=[{','.join(repr(str(s)) for s in sources)}]"]
    model_cfg = config_to_dict(resolve_pretrained(load_config(FinetuneConfig, None, [f"pretrained='{pretrained}'"])).picker.model)

    def cell(model, configs, overrides, size, seed) -> Cell:
        fcfg = load_config(FinetuneConfig, configs, [*cfg.common_overrides, *data, *overrides, f"seed={seed}",
                                                     f"data.fraction_seed={seed}"])
        if model == "scratch":
            fcfg.picker.model = config_from_dict(ModelConfig, model_cfg)   # the same architecture
        return Cell(model, size, seed, config_to_dict(fcfg))

    schedules = {load_config(FinetuneConfig, [c]).schedule.name: c for c in cfg.finetune_configs}
    selection, rest = [], {name: [] for name in schedules}
    for label, size_over in _sizes(cfg):
        for seed in cfg.seeds:
            for name, path in schedules.items():
                c = cell(f"pretrained/{name}", [path], [*size_over, f"pretrained='{pretrained}'"], label, seed)
                if label == str(cfg.select_schedule_at) or len(schedules) == 1:
                    selection.append(c)
                else:
                    rest[name].append(c)
            first = next(iter(schedules.values()))
            baselines = [cell("scratch", [first], [*size_over, *cfg.scratch_overrides], label, seed),
                         cell("phasenet", cfg.phasenet_configs, size_over, label, seed)]
            for name in rest:
                rest[name] += baselines
    counts: dict[str, int] = {}
    for c in [*selection, *(c for cells in rest.values() for c in cells)]:
        if c.size not in counts:
            fcfg = config_from_dict(FinetuneConfig, c.config)
            counts[c.size] = _n_train(sources, fcfg.window, fcfg.data)
        c.n_traces = counts[c.size]
    return selection, rest


@lru_cache(maxsize=4)
def _reference_sets(sources: tuple[str, ...], real: tuple[str, ...]):
    from .pick_metrics import merge, reference_traces

    dev = merge([reference_traces(s, "dev") for s in sources], "dev")
    tests = {SYNTHETIC: merge([reference_traces(s, "test") for s in sources], SYNTHETIC)}
    for path in real:
        refs = reference_traces(path)
        tests[f"real: {refs.name}"] = refs
    return dev, tests


def run_cell(cell: Cell, out: Path, sources: list[str], real: list[str], tolerances: list[float],
             threads: int = 0) -> dict:
    """Train (unless ``picker.pt`` exists) and score one cell; writes and returns its ``scores.json``."""
    import torch

    from .evaluate import evaluate
    from .finetune import run_finetuning
    from .pick_metrics import evaluate_picks
    from .picker import load_picker_model

    if threads:
        torch.set_num_threads(threads)
    folder = cell.folder(out)
    result_file = folder / "scores.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    picker = folder / "picker.pt"
    if not picker.is_file():
        run_finetuning(config_from_dict(FinetuneConfig, cell.config), folder, progress=False)
    bench = evaluate(picker, sources, folder / "evaluation", progress=False, plots=False)
    dev, tests = _reference_sets(tuple(map(str, sources)), tuple(map(str, real)))
    picks = evaluate_picks(load_picker_model(str(picker)), dev, {"dev": dev, **tests}, tolerances)
    picks[SYNTHETIC].update({k: bench["test"][k] for k in BENCHMARK})
    picks["dev"].update({k: bench["dev"][k] for k in BENCHMARK})
    result = {"model": cell.model, "size": cell.size, "n_traces": cell.n_traces, "seed": cell.seed, "sets": picks}
    tmp = result_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(result_file)   # atomic: a killed run never leaves a half-written result
    return result


def _run_cells(cells: list[Cell], out: Path, sources, cfg: ReportConfig, progress: bool, desc: str) -> list[dict]:
    todo = [c for c in cells if not (c.folder(out) / "scores.json").is_file()]
    done = [json.loads((c.folder(out) / "scores.json").read_text()) for c in cells if c not in todo]
    if todo:
        log.info("%s: %d of %d runs to do (%d done earlier)", desc, len(todo), len(cells), len(done))
    bar = progress_bar(total=len(todo), desc=desc, unit="run", enabled=progress and bool(todo))
    args = (out, list(map(str, sources)), list(cfg.real_data), list(cfg.tolerances))
    if cfg.jobs <= 1:
        for c in todo:
            done.append(run_cell(c, *args))
            bar.update()
    else:
        import multiprocessing as mp

        threads = max(1, (os.cpu_count() or 1) // cfg.jobs)
        with ProcessPoolExecutor(cfg.jobs, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(run_cell, c, *args, threads) for c in todo]
            for f in as_completed(futures):
                done.append(f.result())
                bar.update()
    bar.close()
    return done


def long_table(results: list[dict]) -> pd.DataFrame:
    """One row per (model, size, seed, evaluation set, metric)."""
    rows = [{"model": r["model"], "size": r["size"], "n_traces": r["n_traces"], "seed": r["seed"], "set": name,
             "metric": metric, "value": value}
            for r in results for name, scores in r["sets"].items() for metric, value in scores.items()]
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds per (model, size, set, metric)."""
    g = table.groupby(["model", "size", "n_traces", "set", "metric"])["value"]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["sd"] = out["sd"].fillna(0.0)
    return out.sort_values(["set", "metric", "n_traces", "model"]).reset_index(drop=True)


def choose_schedule(selection: list[dict], tolerance: float) -> tuple[str, pd.DataFrame]:
    """The schedule with the best mean dev F1 (P and S within ``tolerance``) over seeds, and the table."""
    t = long_table(selection)
    t = t[(t.set == "dev") & t.metric.isin([f"P_{tolerance:g}s_f1", f"S_{tolerance:g}s_f1"])]
    per_model = t.groupby(["model", "metric"]).value.mean().unstack()
    per_model["mean"] = per_model.mean(axis=1)
    best = str(per_model["mean"].idxmax())
    return best, per_model.sort_values("mean", ascending=False)


def run_report(cfg: ReportConfig, sources: list[str], out_dir: str | Path, pretrained: str | None = None,
               progress: bool = True) -> pd.DataFrame:
    """Run (or continue) the study; write ``report.md``, ``report.csv``, ``report_runs.csv`` and the plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "report_config.yaml")
    if pretrained is None:
        pretrained = str(pretrain_once(cfg, sources, out / "pretrain", progress))
    selection, rest = plan(cfg, sources, pretrained)
    chosen_results = _run_cells(selection, out, sources, cfg, progress, "schedule selection")
    tol = max(cfg.tolerances)
    headline, selection_table = choose_schedule([r for r in chosen_results if r["model"].startswith("pretrained")], tol)
    log.info("headline schedule (best dev F1 within %g s at %d traces): %s", tol, cfg.select_schedule_at, headline)
    results = chosen_results + _run_cells(rest[headline.split("/", 1)[1]], out, sources, cfg, progress, "study")
    table = long_table(results)
    table.to_csv(out / "report_runs.csv", index=False)
    summary = summarise(table)
    summary.to_csv(out / "report.csv", index=False)
    plot_label_efficiency(summary, headline, out / "label_efficiency.png")
    (out / "report.md").write_text(markdown_report(summary, headline, selection_table, cfg))
    return summary


def pretrain_once(cfg: ReportConfig, sources: list[str], folder: Path, progress: bool) -> Path:
    """Pretrain on the study's data (unlabelled use of its training split) unless already done."""
    from .pretrain import run_pretraining

    path = folder / "model.pt"
    if not path.is_file():
        data = f"data.sources=[{','.join(repr(str(s)) for s in sources)}]"
        run_pretraining(load_config(PretrainConfig, cfg.pretrain_configs, [*cfg.pretrain_overrides, data]), folder,
                        progress=progress)
    return path


def _cell(summary: pd.DataFrame, model: str, size: str, set_name: str, metric: str) -> tuple[float, float]:
    row = summary[(summary.model == model) & (summary["size"] == size) & (summary.set == set_name)
                  & (summary.metric == metric)]
    return (float(row["mean"].iloc[0]), float(row["sd"].iloc[0])) if len(row) else (math.nan, math.nan)


def _sizes_in(summary: pd.DataFrame) -> list[str]:
    return list(summary.sort_values("n_traces").drop_duplicates("size")["size"])


def markdown_table(summary: pd.DataFrame, headline: str, set_name: str, metrics: list[str]) -> str:
    """Rows = size (labelled traces) × model, columns = metrics, cells = mean ± sd over seeds."""
    lines = ["| traces | model | " + " | ".join(metrics) + " |", "|---|---|" + "---|" * len(metrics)]
    for size in _sizes_in(summary):
        n = int(summary[summary["size"] == size].n_traces.iloc[0])
        for model in (headline, "scratch", "phasenet"):
            cells = [_cell(summary, model, size, set_name, m) for m in metrics]
            if all(math.isnan(c[0]) for c in cells):
                continue
            label = f"{size} ({n})" if size == "all" or size.startswith("f") else size
            lines.append(f"| {label} | {model} | " + " | ".join(f"{m:.3f} ± {s:.3f}" for m, s in cells) + " |")
    return "\n".join(lines)


def verdict(summary: pd.DataFrame, headline: str) -> str:
    """For each set and size: does the headline beat scratch and PhaseNet on P and S F1 within 0.5 s by more
    than one standard deviation (the larger of the two models' sds)?"""
    lines = []
    for set_name in sorted(s for s in summary.set.unique() if s != "dev"):
        for size in _sizes_in(summary):
            parts = []
            for metric in ("P_0.5s_f1", "S_0.5s_f1"):
                ours, sd_ours = _cell(summary, headline, size, set_name, metric)
                for base in ("scratch", "phasenet"):
                    theirs, sd_theirs = _cell(summary, base, size, set_name, metric)
                    if math.isnan(ours) or math.isnan(theirs):
                        continue
                    diff, sd = ours - theirs, max(sd_ours, sd_theirs)
                    word = "beats" if diff > sd else ("loses to" if diff < -sd else "ties")
                    parts.append(f"{metric[0]} {word} {base} ({ours:.3f} vs {theirs:.3f})")
            if parts:
                lines.append(f"- {set_name}, {size} traces: " + "; ".join(parts))
    return "\n".join(lines)


def markdown_report(summary: pd.DataFrame, headline: str, selection: pd.DataFrame, cfg: ReportConfig) -> str:
    sets = [s for s in summary.set.unique() if s != "dev"]
    sets = [SYNTHETIC] + sorted(s for s in sets if s != SYNTHETIC) if SYNTHETIC in sets else sorted(sets)
    parts = [f"# Label-efficiency study\n\nSeeds: {cfg.seeds}; mean ± sd over seeds. Headline schedule "
             f"(best mean dev F1 within {max(cfg.tolerances):g} s at {cfg.select_schedule_at} traces): "
             f"**{headline}**.\n\n## Schedule selection (dev)\n\n" + _frame_markdown(selection)]
    for s in sets:
        parts.append(f"## {s}: pick F1 within 0.5 s and 0.1 s\n\n" + markdown_table(summary, headline, s, HEADLINE))
    parts.append(f"## {SYNTHETIC}: pick-benchmark tasks\n\n" + markdown_table(summary, headline, SYNTHETIC, BENCHMARK))
    parts.append("## Verdict (beats = mean higher by more than the larger sd)\n\n" + verdict(summary, headline))
    return "\n\n".join(parts) + "\n"


def _frame_markdown(frame: pd.DataFrame) -> str:
    cols = list(frame.columns)
    lines = ["| | " + " | ".join(map(str, cols)) + " |", "|---|" + "---|" * len(cols)]
    lines += [f"| {idx} | " + " | ".join(f"{v:.3f}" for v in row) + " |" for idx, row in frame.iterrows()]
    return "\n".join(lines)


def plot_label_efficiency(summary: pd.DataFrame, headline: str, path: Path) -> Path:
    """Pick F1 vs labelled traces with ±1 sd error bars: one row per evaluation set, one column per metric."""
    from .plots import plt

    sets = [s for s in summary.set.unique() if s != "dev"]
    fig, axes = plt.subplots(len(sets), len(HEADLINE), figsize=(4.2 * len(HEADLINE), 3.4 * len(sets)),
                             squeeze=False)
    for row, set_name in zip(axes, sorted(sets, key=lambda s: s != SYNTHETIC)):
        for ax, metric in zip(row, HEADLINE):
            for model in (headline, "scratch", "phasenet"):
                sub = summary[(summary.model == model) & (summary.set == set_name) & (summary.metric == metric)]
                sub = sub.sort_values("n_traces")
                if len(sub):
                    ax.errorbar(sub.n_traces, sub["mean"], yerr=sub["sd"], marker="o", capsize=3, label=model)
            ax.set_xscale("log")
            ax.set_xlabel("labelled training traces")
            ax.set_title(f"{set_name}: {metric.replace('_', ' ')}", fontsize=9)
            ax.set_ylim(0, 1)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
