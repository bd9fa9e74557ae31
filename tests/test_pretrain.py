"""Tiny pretraining runs on the synthetic dataset (CPU): learning, resume, DDP, plots."""

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from seiscontrast.checkpoints import load_model, read_model_file
from seiscontrast.config import load_config
from seiscontrast.pretrain import PretrainConfig, run_pretraining
from seiscontrast.schedules import WarmupCosine

TINY = ["window.length=1024", "trainer.log_every_n_steps=1", "trainer.limit_val_batches=2"]


def tiny_config(synth_dir, *extra):
    return load_config(PretrainConfig, "configs/pretrain_tiny.yaml",
                       [*TINY, f"data.sources=['{synth_dir}']", *extra])


def _series(metrics, column):
    return metrics[["step", column]].dropna().groupby("step")[column].mean()


@pytest.fixture(scope="module")
def trained_run(synth_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    cfg = tiny_config(synth_dir, "optim.max_steps=160", "optim.warmup_steps=10", "trainer.val_every_n_steps=80")
    run_pretraining(cfg, out, progress=False)
    return out


def test_tiny_pretraining_learns(trained_run):
    metrics = pd.read_csv(trained_run / "metrics.csv")
    loss = _series(metrics, "train/contrastive_loss")
    acc = _series(metrics, "train/accuracy")
    # the run is deterministic (test_same_seed_gives_the_same_curve); with the tiny config's 256-wide targets and
    # entropy terms, seeds 0-3 gave a loss drop of 1.22-1.36, train accuracy 0.23-0.25 (seed 0: 0.25), final
    # validation accuracy 0.30-0.40 (seed 0: 0.295; chance is 1/101) and soft-code perplexity 72-172 of 640 at the
    # validations (seed 0: 163); the previous tiny config (32-wide targets, no entropy terms) ended its runs with
    # 22-25 codes in use. On these 256-frame windows learning starts later than on 1024-frame ones: after 80 steps
    # seed 0 was at 0.17. With the former codebook initialisation (uniform in [0, 1)) seed 0 stayed at chance.
    assert loss.iloc[-10:].mean() < loss.iloc[:5].mean() - 0.5
    assert acc.iloc[-10:].mean() > 0.15
    val = metrics["val/accuracy"].dropna()
    assert len(val) >= 2 and val.iloc[-1] > 0.2
    ppl = _series(metrics, "train/prob_perplexity")
    assert (ppl > 2).all() and (ppl <= 640).all()
    assert (metrics["val/prob_perplexity"].dropna() > 0.1 * 640).all()     # the codebook did not collapse
    temp = _series(metrics, "train/gumbel_temperature")
    assert temp.iloc[0] == pytest.approx(2.0, rel=0.02) and temp.iloc[-1] < 0.6
    rank = metrics["val/feature_rank"].dropna()
    assert len(rank) == len(val) and ((rank > 0) & (rank <= 1)).all()


def test_effective_rank_counts_the_directions_features_use():
    from seiscontrast.pretrain import effective_rank

    g = torch.Generator().manual_seed(0)
    isotropic = torch.randn(4, 500, 32, generator=g)
    one_direction = torch.randn(4, 500, 1, generator=g) * torch.randn(1, 1, 32, generator=g)
    four = torch.randn(4, 500, 4, generator=g) @ torch.linalg.qr(torch.randn(32, 4, generator=g))[0].T
    assert effective_rank(isotropic) > 0.9
    assert effective_rank(one_direction) == pytest.approx(1 / 32, abs=1e-3)
    assert effective_rank(four) == pytest.approx(4 / 32, rel=0.05)


def test_same_seed_gives_the_same_curve(synth_dir, tmp_path):
    """Weights, masks, negatives, Gumbel noise and data order all follow the seed: two runs log identical rows."""
    short = ("optim.max_steps=6", "optim.warmup_steps=2", "trainer.val_every_n_steps=0")
    cfg = tiny_config(synth_dir, *short)
    curves = []
    for name in ("a", "b"):
        run_pretraining(cfg, tmp_path / name, progress=False)
        metrics = pd.read_csv(tmp_path / name / "metrics.csv")
        curves.append(metrics[["step", "train/contrastive_loss", "train/accuracy", "train/prob_perplexity"]].dropna())
    assert len(curves[0]) == 6
    pd.testing.assert_frame_equal(curves[0].reset_index(drop=True), curves[1].reset_index(drop=True))
    other = tiny_config(synth_dir, *short, "seed=1")
    run_pretraining(other, tmp_path / "c", progress=False)
    changed = pd.read_csv(tmp_path / "c" / "metrics.csv")["train/contrastive_loss"].dropna().to_numpy()
    assert not np.allclose(changed, curves[0]["train/contrastive_loss"].to_numpy())


def test_model_file_loads_weights_only_and_rebuilds(trained_run):
    from seiscontrast.model import SeisContrastModel

    loaded = load_model(trained_run / "model.pt", kind="pretrained")
    assert isinstance(loaded.net, SeisContrastModel) and loaded.meta["global_step"] == 160
    assert loaded.spec.window.length == 1024 and loaded.spec.model.encoder.channels == [64, 64]
    # the Lightning checkpoint of the run gives the same spec and weights, also where the run ended between two
    # periodic checkpoints (every 100 steps in the tiny config)
    spec, state, meta = read_model_file(trained_run / "checkpoints" / "last.ckpt")
    assert meta["global_step"] == 160
    assert spec == loaded.spec and torch.equal(state["project_context.weight"], loaded.net.project_context.weight)
    torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)  # Lightning checkpoint: safe load
    usage = np.loadtxt(trained_run / "codebook_usage.csv", delimiter=",")
    assert usage.shape == (2, 320) and usage.sum() > 0


def test_plot_pretrain(trained_run, tmp_path):
    from seiscontrast.cli import main

    assert main(["plot-pretrain", str(trained_run), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 20_000
    # several runs: one comparison figure, which needs an explicit --out
    assert main(["plot-pretrain", str(trained_run), str(trained_run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 20_000
    assert main(["plot-pretrain", str(trained_run), str(trained_run)]) == 2
    assert main(["plot-pretrain", str(trained_run), str(tmp_path), "--out", str(tmp_path / "d.png")]) == 2


def test_resume_continues_steps_and_schedule(synth_dir, tmp_path):
    cfg = tiny_config(synth_dir, "optim.max_steps=12", "optim.warmup_steps=4", "trainer.checkpoint_every_n_steps=6",
                      "trainer.val_every_n_steps=0")
    run_pretraining(cfg, tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "checkpoints"
    # pretend the run died after step 6: the step-6 checkpoint becomes the last one
    shutil.copy(ckpt / "step0000006.ckpt", ckpt / "last.ckpt")
    with pytest.raises(FileExistsError):
        run_pretraining(cfg, tmp_path / "run", progress=False)
    run_pretraining(cfg, tmp_path / "run", resume=True, progress=False)
    resumed = pd.read_csv(tmp_path / "run" / "logs" / "version_1" / "metrics.csv")
    assert resumed["step"].min() == 6                      # the resume logs into its own version, from step 6
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert sorted(metrics["step"].dropna().unique()) == list(range(12))   # both versions joined, no step twice
    assert metrics.dropna(subset=["train/loss"])["step"].is_unique
    assert read_model_file(tmp_path / "run" / "model.pt")[2]["global_step"] == 12
    lr = metrics[["step", "lr-AdamW/pg1"]].dropna().set_index("step")["lr-AdamW/pg1"]
    sched = WarmupCosine(4, 12, cfg.optim.min_lr_ratio)
    for step, value in lr.items():
        assert value == pytest.approx(cfg.optim.lr * sched(int(step)), rel=1e-4)


def test_resume_is_exact(synth_dir, tmp_path):
    """Resumed mid-epoch, at an epoch's end and between validations, a run logs exactly the numbers of the
    uninterrupted run: data order, window draws, masks, negatives and Gumbel noise all continue where they were."""
    cfg = tiny_config(synth_dir, "optim.max_steps=9", "optim.warmup_steps=2", "trainer.checkpoint_every_n_steps=1",
                      "trainer.val_every_n_steps=3", "data.fraction=0.1", "trainer.batch_size=8")
    run_pretraining(cfg, tmp_path / "full", progress=False)
    full = pd.read_csv(tmp_path / "full" / "metrics.csv")
    train = full.dropna(subset=["train/loss"])
    assert train["epoch"].nunique() >= 3                    # several epochs: resumes cross epoch boundaries
    columns = ["step", "train/contrastive_loss", "train/accuracy", "train/prob_perplexity", "train/feature_penalty"]
    for step in (4, 5):
        run = tmp_path / f"resumed{step}"
        shutil.copytree(tmp_path / "full", run)
        shutil.rmtree(run / "logs")
        shutil.copy(run / "checkpoints" / f"step{step:07d}.ckpt", run / "checkpoints" / "last.ckpt")
        run_pretraining(cfg, run, resume=True, progress=False)
        resumed = pd.read_csv(run / "logs" / "version_0" / "metrics.csv")
        for stage, cols in (("train", columns), ("val", ["step", "val/contrastive_loss", "val/accuracy"])):
            got = resumed.dropna(subset=[cols[1]])[cols].reset_index(drop=True)
            want = full[full.step >= step].dropna(subset=[cols[1]])[cols].reset_index(drop=True)
            assert len(got) > 0
            pd.testing.assert_frame_equal(got, want, check_exact=True, obj=f"{stage} after resuming at {step}")


def test_a_resumed_run_that_dies_keeps_its_history(synth_dir, tmp_path, monkeypatch):
    cfg = tiny_config(synth_dir, "optim.max_steps=8", "optim.warmup_steps=2", "trainer.checkpoint_every_n_steps=4",
                      "trainer.val_every_n_steps=0")
    run_pretraining(cfg, tmp_path / "run", progress=False)
    ckpt = tmp_path / "run" / "checkpoints"
    shutil.copy(ckpt / "step0000004.ckpt", ckpt / "last.ckpt")
    first = pd.read_csv(tmp_path / "run" / "metrics.csv")

    class Killed(Exception):
        pass

    def killed(self, *args, **kwargs):   # the resumed run dies after logging two steps
        if self.global_step >= 6:
            raise Killed

    from seiscontrast.pretrain import PretrainModule

    with monkeypatch.context() as m:
        m.setattr(PretrainModule, "on_train_batch_end", killed, raising=False)
        with pytest.raises(Killed):
            run_pretraining(cfg, tmp_path / "run", resume=True, progress=False)
    from seiscontrast.training import read_metrics

    history = read_metrics(tmp_path / "run")
    steps = set(history["step"].dropna())
    assert set(range(6)) <= steps                      # nothing logged before or after the checkpoint is lost
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "metrics.csv"), history)
    run_pretraining(cfg, tmp_path / "run", resume=True, progress=False)  # and the next resume finishes the run
    final = pd.read_csv(tmp_path / "run" / "metrics.csv").dropna(subset=["train/loss"])
    assert list(final["step"]) == list(range(8))
    before = first.dropna(subset=["train/loss"]).set_index("step")["train/loss"]
    assert np.array_equal(final.set_index("step")["train/loss"].to_numpy(), before.to_numpy())   # exact, too


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(synth_dir, tmp_path):
    cmd = [sys.executable, "-m", "seiscontrast.cli", "pretrain", "-q", "--config", "configs/pretrain_tiny.yaml",
           "--data", str(synth_dir), "--out", str(tmp_path / "ddp"), "--max-steps", "3", *TINY,
           "window.length=512", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp",
           "trainer.val_every_n_steps=0", "trainer.batch_size=4"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert read_model_file(tmp_path / "ddp" / "model.pt")[2]["global_step"] == 3


def test_bad_override_is_reported(synth_dir):
    from seiscontrast.config import ConfigError

    with pytest.raises(ConfigError, match="modle"):
        tiny_config(synth_dir, "modle.width=3")
    with pytest.raises(ConfigError):
        tiny_config(synth_dir, "optim.lr=fast")
