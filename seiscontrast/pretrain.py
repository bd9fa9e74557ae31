"""wav2vec 2.0-style pretraining: the contrastive objective and its run.

``PretrainModule`` holds a :class:`~seiscontrast.model.SeisContrastModel`; :func:`run_pretraining` trains it with
the shared harness (:mod:`.training`) and writes into ``out_dir``: ``config.yaml``, ``metrics.csv``, ``logs/``,
``checkpoints/``, ``tensorboard/``, ``codebook_usage.csv`` and ``model.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoints import ModelSpec, save_model_file
from .config import config_from_dict, config_to_dict
from .contrastive import ContrastiveConfig, info_nce
from .data.seisbench_source import DatasetConfig
from .data.sources import pretraining_datasets
from .data.windows import WindowConfig
from .logs import get_logger
from .model import ModelConfig, build_model
from .schedules import OptimConfig, param_groups
from .training import TrainerConfig, TrainingModule, WindowDataModule, fit, resolve_precision, start_run

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
class PretrainConfig:
    """Everything a pretraining run needs; ``configs/pretrain_*.yaml`` override parts of it.

    Attributes:
        window: window length (samples), sampling rate (Hz), normalisation.
        data: data sources, training fraction and SeisBench options.
        model: the network (encoder, context network, quantizer, masking).
        loss: InfoNCE, diversity and feature-penalty settings.
        optim: AdamW and the warm-up/cosine schedule.
        trainer: Lightning Trainer settings (devices, precision, logging, checkpoints).
        obspy_overlap: overlap in samples of consecutive traces converted from ObsPy (continuous) sources.
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


def effective_rank(features: torch.Tensor) -> torch.Tensor:
    """Effective rank of ``[..., width]`` features as a share of ``width`` (exp of the entropy of the normalised
    singular-value energies of the centred feature matrix; Roy & Vetterli 2007).

    A collapse monitor: pretraining narrows the encoder's features (the picker backbone's use 0.16–0.20 of
    their width after 800 steps, 0.49 with random weights; README, "How well pretraining learns").
    """
    f = features.detach().float().reshape(-1, features.shape[-1])
    energy = torch.linalg.svdvals(f - f.mean(0)).pow(2)
    p = energy / energy.sum().clamp_min(1e-12)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum()) / f.shape[-1]


class PretrainData(WindowDataModule):
    """Pretraining windows from the run's ``--data`` sources (:func:`~.data.sources.pretraining_datasets`)."""

    cfg: PretrainConfig

    def datasets(self):
        return pretraining_datasets(self.cfg.data, self.cfg.window, self.cfg.obspy_overlap)


class PretrainModule(TrainingModule):
    """LightningModule for the contrastive objective. Hyper-parameters: the config as a plain dict."""

    def __init__(self, config: dict):
        super().__init__(config, kind="pretrained", model_prefix="model.")
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
        if stage == "val":
            metrics["feature_rank"] = effective_rank(out.features)
        self.log_stage(stage, metrics, len(batch["X"]), prog_bar=("accuracy",))
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

    def parameter_groups(self) -> list[dict]:
        o = self.cfg.optim
        return param_groups(self.model, o.weight_decay, o.lr)


def run_pretraining(cfg: PretrainConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Pretrain and write ``out_dir/model.pt``; with ``resume`` continue from ``checkpoints/last.ckpt``."""
    out, last = start_run(cfg, out_dir, resume)
    data, module = PretrainData(cfg), PretrainModule(config_to_dict(cfg))
    data.setup("fit")
    log.info("pretraining %.2f M parameters on %d windows for %d steps (%s)",
             sum(p.numel() for p in module.parameters()) / 1e6, len(data.train_set), cfg.optim.max_steps,
             resolve_precision(cfg.trainer))
    trainer = fit(module, data, out, last if resume else None, progress)
    if trainer.global_rank == 0:
        usage = module.code_counts.cpu().numpy()
        np.savetxt(out / "codebook_usage.csv", usage, delimiter=",", fmt="%.4f")
        save_model_file(out / "model.pt", ModelSpec("pretrained", cfg.window, model=cfg.model),
                        module.model.state_dict(), {"global_step": trainer.global_step}, config_to_dict(cfg))
        log.info("wrote %s", out / "model.pt")
    return out / "model.pt"
