"""wav2vec 2.0-style pretraining on Lightning: loss, optimiser, schedules, checkpoints, logs, DDP.

``PretrainModule`` holds a :class:`~seiscontrast.model.SeisContrastModel`; :func:`run_pretraining` builds the
data, the Trainer (CSV + TensorBoard loggers, ``ModelCheckpoint``, progress bar) and writes into ``out_dir``:
``config.yaml``, ``metrics.csv``, ``checkpoints/``, ``tensorboard/``, ``codebook_usage.csv`` and ``model.pt``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from .checkpoints import save_model_file
from .config import config_from_dict, config_to_dict, save_config
from .contrastive import ContrastiveConfig, info_nce
from .data.seisbench_source import DatasetConfig
from .data.sources import pretraining_datasets
from .data.windows import WindowConfig
from .logs import get_logger, quiet_third_party
from .model import ModelConfig, build_model
from .schedules import OptimConfig, WarmupCosineLR, param_groups

log = get_logger(__name__)


@dataclass
class LossConfig:
    """Attributes:
    contrastive: InfoNCE temperature τ and number of negatives.
    diversity_weight: weight of the codebook diversity loss (0.1).
    feature_penalty: weight of the encoder-feature L2 penalty. wav2vec 2.0 uses 10; here, with layer norms in and
        after the encoder, 10 mainly shrinks the encoder's norm gains (the penalty is ~half the loss at first) and
        delays learning: validation accuracy 0.13 vs 0.23 after 50 steps of the tiny config.
    """

    contrastive: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    diversity_weight: float = 0.1
    feature_penalty: float = 1.0


@dataclass
class TrainerConfig:
    """Lightning Trainer settings.

    Attributes:
        batch_size: windows per device and step.
        num_workers: DataLoader worker processes.
        accelerator: ``auto``, ``cpu``, ``gpu``/``cuda``.
        devices: ``auto``, a count (``"4"``) or ``"-1"`` for all.
        num_nodes: machines (multi-node DDP).
        strategy: ``auto``, ``ddp``, ``ddp_spawn``, … (Lightning's own strategies).
        precision: ``auto`` = bf16-mixed on GPU, 32-true on CPU; or any Lightning precision string.
        log_every_n_steps: metrics logging interval.
        checkpoint_every_n_steps: checkpoint interval (``last.ckpt`` is always kept).
        val_every_n_steps: validation interval (0 disables validation).
        limit_val_batches: validation batches per validation run.
    """

    batch_size: int = 8
    num_workers: int = 0
    accelerator: str = "auto"
    devices: str = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "auto"
    log_every_n_steps: int = 10
    checkpoint_every_n_steps: int = 1000
    val_every_n_steps: int = 1000
    limit_val_batches: int = 20


@dataclass
class PretrainConfig:
    """Everything a pretraining run needs; ``configs/pretrain_*.yaml`` override parts of it.

    Attributes:
        window: window length (samples), sampling rate (Hz), normalisation.
        data: data sources, training fraction and SeisBench options.
        model: the network (encoder, context network, quantizer, masking).
        loss: InfoNCE, diversity and feature-penalty settings.
        optim: AdamW and the warm-up/cosine schedule.
        trainer: Lightning Trainer settings (devices, precision, logging, checkpoints).
        obspy_overlap: overlap in samples of consecutive windows cut from ObsPy (continuous) sources.
        seed: seed of everything (weights, masks, negatives, data order).
    """

    window: WindowConfig = field(default_factory=WindowConfig)
    data: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    obspy_overlap: int = 0
    seed: int = 0


class PretrainModule(L.LightningModule):
    """LightningModule for the contrastive objective. Hyper-parameters: the config as a plain dict."""

    def __init__(self, config: dict):
        super().__init__()
        self.save_hyperparameters({"config": config, "kind": "pretrained", "model_prefix": "model."})
        self.cfg: PretrainConfig = config_from_dict(PretrainConfig, config)
        self.model = build_model(self.cfg.model)
        q = self.cfg.model.quantizer
        self.register_buffer("code_counts", torch.zeros(q.groups, q.codes))

    def _step(self, batch, stage: str) -> torch.Tensor:
        cfg = self.cfg
        out = self.model.pretrain_forward(batch["X"])
        nce = info_nce(out.context, out.targets, out.mask, cfg.loss.contrastive, codes=out.quantizer.codes)
        loss = (nce.loss + cfg.loss.diversity_weight * out.quantizer.diversity_loss
                + cfg.loss.feature_penalty * out.feature_penalty)
        metrics = {"loss": loss, "contrastive_loss": nce.loss, "diversity_loss": out.quantizer.diversity_loss,
                   "feature_penalty": out.feature_penalty, "accuracy": nce.accuracy,
                   "prob_perplexity": out.quantizer.prob_perplexity,
                   "code_perplexity": out.quantizer.code_perplexity}
        on_step = stage == "train"
        self.log_dict({f"{stage}/{k}": v.detach() for k, v in metrics.items()}, on_step=on_step,
                      on_epoch=not on_step, prog_bar=False, sync_dist=not on_step, batch_size=len(batch["X"]))
        self.log(f"{stage}_acc", nce.accuracy.detach(), prog_bar=True, on_step=on_step, on_epoch=not on_step,
                 batch_size=len(batch["X"]), sync_dist=not on_step)
        if stage == "train":
            codes = out.quantizer.codes[out.mask]                              # [M, groups]
            counts = torch.zeros_like(self.code_counts)
            counts.scatter_add_(1, codes.T, torch.ones_like(codes.T, dtype=counts.dtype))
            self.code_counts.mul_(0.98).add_(counts)                           # recent usage (EMA)
        return loss

    def on_train_batch_start(self, batch, batch_idx):
        temperature = self.cfg.model.quantizer.temperature(self.global_step / max(1, self.cfg.optim.max_steps))
        self.model.quantizer.temperature = temperature
        self.log("train/gumbel_temperature", temperature, on_step=True, on_epoch=False)

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        o = self.cfg.optim
        opt = torch.optim.AdamW(param_groups(self.model, o.weight_decay, o.lr), lr=o.lr, betas=tuple(o.betas))
        sched = WarmupCosineLR(opt, o.warmup_steps, o.max_steps, o.min_lr_ratio)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def resolve_precision(trainer_cfg: TrainerConfig) -> str:
    """``auto`` → bf16-mixed on CUDA, 32-true otherwise."""
    if trainer_cfg.precision != "auto":
        return trainer_cfg.precision
    gpu = trainer_cfg.accelerator in ("gpu", "cuda") or (trainer_cfg.accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


def _devices(value: str):
    return int(value) if value.lstrip("-").isdigit() else value


class StderrProgressBar(TQDMProgressBar):
    """Lightning's bar, on stderr like every other bar and message (Lightning writes it to stdout)."""

    @staticmethod
    def _on_stderr(make):
        stdout, sys.stdout = sys.stdout, sys.stderr   # Lightning passes file=sys.stdout when it makes a bar
        try:
            return make()
        finally:
            sys.stdout = stdout

    def init_sanity_tqdm(self):
        return self._on_stderr(super().init_sanity_tqdm)

    def init_train_tqdm(self):
        return self._on_stderr(super().init_train_tqdm)

    def init_validation_tqdm(self):
        return self._on_stderr(super().init_validation_tqdm)


def build_trainer(cfg_trainer: TrainerConfig, max_steps: int, grad_clip: float, out: Path, progress: bool,
                  callbacks: list, val_every: int | None, monitor: str | None = None, mode: str = "max") -> L.Trainer:
    """A Lightning Trainer writing CSV + TensorBoard logs and checkpoints below ``out``.

    ``val_every``: validate every that many steps (across epochs); ``None`` disables validation.
    """
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
                           every_n_train_steps=cfg_trainer.checkpoint_every_n_steps, save_last=True,
                           save_top_k=-1 if monitor is None else 1, monitor=monitor, mode=mode)
    quiet_third_party()
    cbs = [ckpt, LearningRateMonitor(logging_interval="step"), *callbacks]
    progress = progress and sys.stderr.isatty()   # bars belong on a terminal, not in batch-job logs
    if progress:
        cbs.append(StderrProgressBar(refresh_rate=1))
    return L.Trainer(
        max_steps=max_steps, accelerator=cfg_trainer.accelerator, devices=_devices(cfg_trainer.devices),
        num_nodes=cfg_trainer.num_nodes, strategy=cfg_trainer.strategy, precision=resolve_precision(cfg_trainer),
        gradient_clip_val=grad_clip or None, log_every_n_steps=cfg_trainer.log_every_n_steps,
        logger=[CSVLogger(out, name="", version=""), TensorBoardLogger(out, name="tensorboard", version="")],
        callbacks=cbs, enable_progress_bar=progress, enable_model_summary=False,
        val_check_interval=val_every, check_val_every_n_epoch=None if val_every else 1, num_sanity_val_steps=0,
        limit_val_batches=cfg_trainer.limit_val_batches if val_every else 0, use_distributed_sampler=True,
    )


def fit_keeping_metrics(trainer: L.Trainer, module, out: Path, resume_from: Path | None, **fit_kwargs) -> None:
    """``trainer.fit``; on resume the earlier ``metrics.csv`` rows (before the checkpoint's step) are kept.

    Lightning's CSVLogger starts a fresh file in an existing log folder, so the earlier rows are first saved to
    ``metrics_history.csv`` (atomically) and merged back when training ends. A resumed run that dies keeps that
    file, and the next resume adds to it, so no row logged before a checkpoint is ever lost.
    """
    metrics, history = out / "metrics.csv", out / "metrics_history.csv"
    if resume_from is not None and trainer.global_rank == 0:
        step = torch.load(resume_from, map_location="cpu", weights_only=True).get("global_step", 0)
        parts = [pd.read_csv(f) for f in (history, metrics) if f.is_file() and f.stat().st_size > 0]
        if parts:
            earlier = pd.concat(parts, ignore_index=True)
            earlier = earlier[earlier["step"] < step].drop_duplicates()
            tmp = history.with_suffix(".tmp")
            earlier.to_csv(tmp, index=False)
            tmp.replace(history)
            metrics.unlink(missing_ok=True)
    trainer.fit(module, ckpt_path=str(resume_from) if resume_from else None, **fit_kwargs)
    if trainer.global_rank == 0 and history.is_file() and metrics.is_file():
        merged = pd.concat([pd.read_csv(history), pd.read_csv(metrics)], ignore_index=True)
        tmp = metrics.with_suffix(".tmp")
        merged.to_csv(tmp, index=False)
        tmp.replace(metrics)
        history.unlink()


def loader(dataset, batch_size: int, workers: int, shuffle: bool) -> torch.utils.data.DataLoader:
    """DataLoader over a window dataset (training loaders shuffle and drop the last partial batch)."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, drop_last=shuffle,
                                       num_workers=workers, persistent_workers=workers > 0)


def start_run(cfg, out_dir: str | Path, resume: bool) -> tuple[Path, Path]:
    """Check the run folder (a new run must not overwrite one, ``--resume`` needs a checkpoint), write the
    resolved ``config.yaml`` and seed everything. Returns ``(folder, path of last.ckpt)``."""
    out = Path(out_dir)
    last = out / "checkpoints" / "last.ckpt"
    if resume and not last.is_file():
        raise FileNotFoundError(f"--resume: no checkpoint at {last}")
    if not resume and last.is_file():
        raise FileExistsError(f"{out} already holds a run; use --resume to continue it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    return out, last


def run_pretraining(cfg: PretrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Pretrain and write ``out_dir/model.pt``; with ``resume`` continue from ``checkpoints/last.ckpt``."""
    out, last = start_run(cfg, out_dir, resume)
    train, val = pretraining_datasets(cfg.data, cfg.window, cfg.obspy_overlap)
    t = cfg.trainer
    use_val = val is not None and t.val_every_n_steps > 0
    trainer = build_trainer(t, cfg.optim.max_steps, cfg.optim.grad_clip, out, progress, [],
                            t.val_every_n_steps if use_val else None)
    module = PretrainModule(config_to_dict(cfg))
    log.info("pretraining %.2f M parameters on %d windows for %d steps (%s)",
             sum(p.numel() for p in module.parameters()) / 1e6, len(train), cfg.optim.max_steps,
             resolve_precision(t))
    fit_keeping_metrics(trainer, module, out, last if resume else None,
                        train_dataloaders=loader(train, t.batch_size, t.num_workers, True),
                        val_dataloaders=loader(val, t.batch_size, t.num_workers, False) if use_val else None)
    if trainer.global_rank == 0:
        usage = module.code_counts.cpu().numpy()
        np.savetxt(out / "codebook_usage.csv", usage, delimiter=",", fmt="%.4f")
        save_model_file(out / "model.pt", "pretrained", config_to_dict(cfg), module.model.state_dict(),
                        {"global_step": trainer.global_step})
        log.info("wrote %s", out / "model.pt")
    return out / "model.pt"
