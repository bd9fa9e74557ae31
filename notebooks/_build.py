"""Writes the notebooks of this folder from the cell sources below (outputs stripped). Run after editing:
``python notebooks/_build.py``. The test suite executes every notebook (``SEISCONTRAST_FAST=1``: tiny runs)."""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).parent
SETUP = '''import os
from pathlib import Path
FAST = os.environ.get("SEISCONTRAST_FAST") == "1"   # the test suite runs the notebooks in a fast mode
ROOT = Path.cwd().parent if Path.cwd().name == "notebooks" else Path.cwd()
WORK = Path(os.environ.get("SEISCONTRAST_WORK", ROOT / "runs" / "notebooks"))
WORK.mkdir(parents=True, exist_ok=True)
%matplotlib inline'''

NOTEBOOKS = {
    "01_quickstart_picking.ipynb": [
        ("md", "# Quick start: pick phases with the bundled model\n\nThe package ships a small CPU-friendly picker "
               "and a real recording (BW.RJOB, a local event from ObsPy's examples). `seiscontrast pick --example` "
               "does the same from the command line."),
        ("code", SETUP),
        ("code", '''import obspy
from seiscontrast.picker import SeisContrastPicker, RESOURCES
model = SeisContrastPicker.default()
stream = obspy.read(str(RESOURCES / "example" / "*.mseed"))
print(stream)'''),
        ("md", "The picker is a SeisBench `WaveformModel`: `classify` returns a `PickList`, `annotate` the probability "
               "curves (sliding windows, stacking, resampling and component mapping are SeisBench's)."),
        ("code", '''picks = model.classify(stream).picks
for p in picks:
    print(p.phase, p.peak_time, round(p.peak_value, 3))
annotations = model.annotate(stream)
print(annotations)'''),
        ("code", '''import matplotlib.pyplot as plt
fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
t0 = stream[0].stats.starttime
for tr in stream:
    axes[0].plot(tr.times() , tr.data / abs(tr.data).max() + "ZNE".index(tr.stats.channel[-1]) * 2, lw=0.5, label=tr.id)
for tr in annotations:
    if tr.stats.channel[-1] in "PS":
        axes[1].plot(tr.times() + (tr.stats.starttime - t0), tr.data, label=tr.stats.channel)
for p in picks:
    for ax in axes:
        ax.axvline(p.peak_time - t0, color="b" if p.phase == "P" else "r", ls="--")
axes[0].legend(fontsize=7)
axes[1].legend(fontsize=7)
axes[1].set_xlabel("s after " + str(t0))'''),
        ("md", "The same from the shell, with a CSV, QuakeML or JSON file and per-station plots:\n\n"
               "```bash\nseiscontrast pick --example --out picks.xml --format quakeml --plot plots/\n```"),
        ("code", '''from seiscontrast.cli import main
main(["pick", "--example", "--out", str(WORK / "example_picks.csv"), "-q"])
import pandas as pd
pd.read_csv(WORK / "example_picks.csv")'''),
    ],
    "02_pretraining.ipynb": [
        ("md", "# Pretraining a tiny model\n\nwav2vec 2.0-style pretraining on a small synthetic dataset: the loss and "
               "the contrastive accuracy (chance = 1/101) curves, codebook perplexity and usage."),
        ("code", SETUP),
        ("code", '''from seiscontrast.data.synthetic import SynthConfig, write_synthetic_dataset
data = WORK / "synth_small"
if not (data / "metadata.csv").exists():
    write_synthetic_dataset(data, SynthConfig(n_traces=200 if FAST else 1000, seed=0), progress=False)'''),
        ("code", '''import shutil
from seiscontrast.config import load_config
from seiscontrast.pretrain import PretrainConfig, run_pretraining
overrides = [f"data.sources=['{data}']", "trainer.val_every_n_steps=0"]
if FAST:
    overrides += ["optim.max_steps=8", "optim.warmup_steps=2", "window.length=1024"]
cfg = load_config(PretrainConfig, ROOT / "configs" / "pretrain_tiny.yaml", overrides)
run = WORK / "pretrain_tiny"
shutil.rmtree(run, ignore_errors=True)
model_path = run_pretraining(cfg, run, progress=False)
model_path'''),
        ("code", '''from IPython.display import Image
from seiscontrast.plots import plot_pretraining
Image(filename=str(plot_pretraining(run)))'''),
        ("md", "`metrics.csv` holds every logged value; `codebook_usage.csv` the recent use of each of the 2 × 320 codes."),
        ("code", '''import pandas as pd
metrics = pd.read_csv(run / "metrics.csv")
metrics[["step", "train/contrastive_loss", "train/accuracy", "train/prob_perplexity", "train/gumbel_temperature"]].dropna().tail()'''),
    ],
    "03_finetuning_schedules.ipynb": [
        ("md", "# Fine-tuning with freeze/unfreeze schedules, and label efficiency\n\nEach schedule fine-tunes the "
               "pretrained backbone of notebook 2 (or a fresh tiny one); the report compares pretrained, from-scratch "
               "and PhaseNet pickers across training fractions."),
        ("code", SETUP),
        ("code", '''from seiscontrast.data.synthetic import SynthConfig, write_synthetic_dataset
from seiscontrast.config import load_config
from seiscontrast.pretrain import PretrainConfig, run_pretraining
data = WORK / "synth_small"
if not (data / "metadata.csv").exists():
    write_synthetic_dataset(data, SynthConfig(n_traces=200 if FAST else 1000, seed=0), progress=False)
small = ["window.length=1024"] if FAST else []
pretrained = WORK / "pretrain_for_ft" / "model.pt"
if not pretrained.exists():
    cfg = load_config(PretrainConfig, ROOT / "configs" / "pretrain_tiny.yaml",
                      [f"data.sources=['{data}']", "trainer.val_every_n_steps=0", *small,
                       f"optim.max_steps={4 if FAST else 200}"])
    run_pretraining(cfg, pretrained.parent, progress=False)'''),
        ("code", '''import shutil
from seiscontrast.finetune import FinetuneConfig, run_finetuning
from seiscontrast.evaluate import evaluate
steps = 6 if FAST else 300
results = {}
for schedule in ["full", "frozen", "unfreeze", "gradual"]:
    out = WORK / f"ft_{schedule}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_config(FinetuneConfig, ROOT / "configs" / f"finetune_{schedule}.yaml",
                      [f"data.sources=['{data}']", f"pretrained='{pretrained}'", f"optim.max_steps={steps}",
                       f"schedule.unfreeze_at_step={steps // 2}", f"schedule.gradual_every_steps={max(1, steps // 5)}",
                       "trainer.batch_size=8", f"trainer.val_every_n_steps={max(2, steps // 3)}",
                       "trainer.limit_val_batches=4", *(["window.length=1024"] if FAST else [])])
    results[schedule] = evaluate(run_finetuning(cfg, out, progress=False), [str(data)], None, progress=False, plots=False)["test"]
import pandas as pd
pd.DataFrame(results).T[["det_auc", "ps_mcc", "P_mae_s", "S_mae_s"]]'''),
        ("md", "The label-efficiency study (`seiscontrast report`) runs every schedule at one labelled-trace count, "
               "takes the best on dev as the headline, and trains it, from-scratch and PhaseNet at every count and "
               "seed; here with few counts and very short runs. Pick F1 within 0.1 s / 0.5 s comes with mean ± sd."),
        ("code", '''from seiscontrast.report import ReportConfig, run_report
from IPython.display import Image, Markdown
steps = 4 if FAST else 150
rcfg = ReportConfig(counts=[16] if FAST else [16, 64], include_all=not FAST, seeds=[0] if FAST else [0, 1],
                    select_schedule_at=16, finetune_configs=["configs/finetune_full.yaml", "configs/finetune_frozen.yaml"],
                    common_overrides=[f"optim.max_steps={steps}", "trainer.batch_size=8", "trainer.val_every_n_steps=0",
                                      "schedule.backbone_lr_mult=1.0", *(["window.length=1024"] if FAST else [])])
report_dir = WORK / "report"
shutil.rmtree(report_dir, ignore_errors=True)
summary = run_report(rcfg, [str(data)], report_dir, pretrained=str(pretrained), progress=False)
display(Markdown((report_dir / "report.md").read_text()))
Image(filename=str(report_dir / "label_efficiency.png"))'''),
    ],
    "04_embeddings.ipynb": [
        ("md", "# Embeddings: a 2-D view of what the backbone learned\n\nFrame embeddings of synthetic windows, "
               "labelled noise / P / S / coda per frame from the known onsets, projected to 2-D (PCA)."),
        ("code", SETUP),
        ("code", '''import numpy as np
from seiscontrast.data.synthetic import SynthConfig, synthesize_trace
from seiscontrast.picker import DEFAULT_MODEL
from seiscontrast.embed import load_backbone, embed_windows
model, window = load_backbone(DEFAULT_MODEL)   # the bundled picker's backbone; any model.pt works too
cfg = SynthConfig(seed=5, noise_fraction=0.0, second_event_fraction=0.0)
windows, labels = [], []
n = 12 if FAST else 60
hop = model.hop
for i in range(n):
    data, meta = synthesize_trace(cfg, i)
    p, s = meta["trace_p_arrival_sample"], meta["trace_s_arrival_sample"]
    if not (np.isfinite(p) and np.isfinite(s)):
        continue
    w = data[:, :window.length]
    centres = np.arange(window.length // hop) * hop + hop / 2
    lab = np.full(len(centres), "noise", dtype=object)
    lab[(centres >= p) & (centres < p + 100)] = "P"
    lab[(centres >= p + 100) & (centres < s)] = "P coda"
    lab[(centres >= s) & (centres < s + 100)] = "S"
    lab[centres >= s + 100] = "S coda"
    windows.append(w)
    labels.append(lab)
frames, pooled = embed_windows(model, np.stack(windows))
X = frames.reshape(-1, frames.shape[-1])
y = np.concatenate(labels)
X = X - X.mean(0)
_, _, vt = np.linalg.svd(X, full_matrices=False)
xy = X @ vt[:2].T
xy.shape'''),
        ("code", '''import matplotlib.pyplot as plt
fig, ax = plt.subplots(figsize=(7, 6))
for name, colour in [("noise", "lightgrey"), ("P coda", "lightblue"), ("S coda", "mistyrose"), ("P", "tab:blue"), ("S", "tab:red")]:
    sel = y == name
    ax.scatter(xy[sel, 0], xy[sel, 1], s=3 if "noise" in name or "coda" in name else 8, c=colour, label=f"{name} ({sel.sum()})")
ax.legend()
ax.set_title("frame embeddings, first two principal components")'''),
        ("md", "For many windows use the command line, which writes HDF5 with start times and station ids:\n\n"
               "```bash\nseiscontrast embed my_dataset --model runs/tiny/model.pt --out embeddings.h5 --no-frames\n```"),
    ],
}


def main():
    for name, cells in NOTEBOOKS.items():
        nb = nbf.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbf.v4.new_markdown_cell(src) if kind == "md" else nbf.v4.new_code_cell(src) for kind, src in cells]
        for i, cell in enumerate(nb.cells):   # fixed ids: rebuilding an unchanged notebook changes nothing
            cell.id = f"cell-{i}"
        nbf.write(nb, HERE / name)


if __name__ == "__main__":
    main()
