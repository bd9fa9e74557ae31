"""The training harness shared by pretraining and fine-tuning.

Run folder, Lightning Trainer (CSV + TensorBoard logs, checkpoints, progress bar), AdamW with warm-up + cosine,
stage-prefixed logging, window data modules and **exact resume**: a run continued from a checkpoint logs the same
numbers as one that was never interrupted. Three things make that so:

* the training order is a permutation seeded by ``(seed, epoch)`` (:class:`EpochSampler`), and a resumed run starts
  at the batch the interrupted run would have drawn next;
* every window's random draws (SeisBench augmentations use NumPy's global generator) are seeded by the seed and the
  window's place in the run (:class:`SeededItems`), so they do not depend on worker processes or on history;
* the checkpoint stores the random state of the model's own draws (masks, negatives, Gumbel noise, dropout), which
  is restored when training resumes.

Each run, and each resume of it, logs into its own ``logs/version_N/metrics.csv`` (Lightning's versioning); nothing
logged is ever rewritten. :func:`read_metrics` joins the versions, and ``metrics.csv`` in the run folder is that
join, written when training stops.
"""

from __future__ import annotations

import random
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import (
    Callback,
    EMAWeightAveraging,
    LearningRateMonitor,
    ModelCheckpoint,
    TQDMProgressBar,
)
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from .config import save_config
from .files import atomic_write
from .logs import quiet_third_party
from .memory import keep_freed_memory
from .schedules import OptimConfig, WarmupCosineLR


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


def resolve_precision(trainer_cfg: TrainerConfig) -> str:
    """``auto`` → bf16-mixed on CUDA, 32-true otherwise."""
    if trainer_cfg.precision != "auto":
        return trainer_cfg.precision
    gpu = trainer_cfg.accelerator in ("gpu", "cuda") or (trainer_cfg.accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else "32-true"


# --------------------------------------------------------------------------------------------------- data


def _rank_and_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class EpochSampler(torch.utils.data.Sampler):
    """This process's share of one epoch, as keys ``epoch × n + index`` (see :class:`SeededItems`).

    Training order is a permutation seeded by ``(seed, epoch)``; evaluation order is the dataset order with keys
    that do not change between epochs (the same windows at every validation). Under DDP each process takes every
    ``world``-th item (Lightning's own sampler injection is off: it would hide :meth:`resume_at`).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool):
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.epoch, self._resume_step = 0, None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume_at(self, step: int) -> None:
        """The next iteration continues a run after ``step`` optimiser steps (one batch per step)."""
        self._resume_step = step

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        return self.n // world if self.shuffle else len(range(rank, self.n, world))

    def __iter__(self):
        rank, world = _rank_and_world()
        epoch, skip = self.epoch, 0
        if self._resume_step is not None:
            # Lightning creates the first iterator before it sets the epoch, so the epoch comes from the step
            epoch, skip = divmod(self._resume_step, max(1, len(self) // self.batch_size))
            self._resume_step, self.epoch = None, epoch
        if not self.shuffle:
            yield from range(rank, self.n, world)
            return
        order = np.random.default_rng([self.seed, epoch]).permutation(self.n)[rank::world][: len(self)]
        yield from (int(epoch * self.n + i) for i in order[skip * self.batch_size:])


class SeededItems(torch.utils.data.Dataset):
    """Serves item ``key % n`` with NumPy's and Python's global random state seeded by ``(seed, key)``.

    SeisBench's window selection and augmentations draw from the global generators; seeding them per item makes
    each window a function of the run's seed and its place in the run, whichever worker process (or resumed run)
    draws it. The caller's random state is left as it was.
    """

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: int):
        seed = int(np.random.SeedSequence([self.seed, int(key)]).generate_state(1)[0])
        np_state, py_state = np.random.get_state(), random.getstate()
        np.random.seed(seed)
        random.seed(seed)
        try:
            return self.dataset[int(key) % len(self.dataset)]
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def window_loader(dataset, batch_size: int, workers: int, seed: int, train: bool) -> torch.utils.data.DataLoader:
    """DataLoader over a window dataset; training loaders shuffle (per epoch) and drop the last partial batch."""
    sampler = EpochSampler(len(dataset), batch_size, seed, shuffle=train)
    return torch.utils.data.DataLoader(
        SeededItems(dataset, seed), batch_size=batch_size, sampler=sampler, drop_last=train, num_workers=workers,
        persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed))  # keeps global RNG untouched


class WindowDataModule(L.LightningDataModule):
    """Training and validation windows of one task's run config ``cfg`` (with ``trainer`` and ``seed``);
    subclasses say where the windows come from (:meth:`datasets`).

    Its checkpoint state is the step reached, from which a resumed run finds its place in the data.
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.train_set = self.val_set = None
        self._resume_step: int | None = None

    def datasets(self) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
        """``(training windows, validation windows or None)``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set, self.val_set = self.datasets()

    def train_dataloader(self):
        t = self.cfg.trainer
        dl = window_loader(self.train_set, t.batch_size, t.num_workers, self.cfg.seed, train=True)
        if self._resume_step is not None:
            dl.sampler.resume_at(self._resume_step)
            self._resume_step = None
        return dl

    def val_dataloader(self):
        t = self.cfg.trainer
        return [] if self.val_set is None else window_loader(self.val_set, t.batch_size, t.num_workers,
                                                             self.cfg.seed, train=False)

    def state_dict(self) -> dict:
        return {"global_step": self.trainer.global_step if self.trainer is not None else 0}

    def load_state_dict(self, state: dict) -> None:
        self._resume_step = int(state.get("global_step", 0))


# ------------------------------------------------------------------------------------------------- module


def rng_state() -> dict:
    """Torch (CPU and CUDA), NumPy and Python global random states, as tensors and numbers (safe to load)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos, "has_gauss": has_gauss,
                      "gauss": gauss},
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


class TrainingModule(L.LightningModule):
    """What pretraining and fine-tuning modules share: hyper-parameters (the run's config as a plain dict),
    stage-prefixed logging, AdamW + warm-up/cosine over :meth:`parameter_groups`, and the random state in
    checkpoints. Subclasses set ``self.cfg`` (with an ``optim`` part) and implement :meth:`parameter_groups`."""

    def __init__(self, config: dict, kind: str, model_prefix: str):
        super().__init__()
        self.save_hyperparameters({"config": config, "kind": kind, "model_prefix": model_prefix})
        self._rng_to_restore: dict | None = None

    def parameter_groups(self) -> list[dict]:
        """AdamW parameter groups (each may carry a ``start_step``, see :class:`~.schedules.WarmupCosineLR`)."""
        raise NotImplementedError

    def log_stage(self, stage: str, metrics: dict[str, torch.Tensor], batch_size: int, prog_bar=()) -> None:
        """Log ``stage/name`` per step while training, as epoch means (synced across processes) in validation."""
        on_step = stage == "train"
        for name, value in metrics.items():
            self.log(f"{stage}/{name}", value.detach(), on_step=on_step, on_epoch=not on_step,
                     prog_bar=name in prog_bar, batch_size=batch_size, sync_dist=not on_step)

    def configure_optimizers(self):
        o = self.cfg.optim
        opt = torch.optim.AdamW(self.parameter_groups(), lr=o.lr, betas=tuple(o.betas))
        sched = WarmupCosineLR(opt, o.warmup_steps, o.max_steps, o.min_lr_ratio)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._rng_to_restore = checkpoint.get("rng")

    def on_train_start(self) -> None:
        # restored here, not on load: Lightning draws from the global generator while it sets up
        if self._rng_to_restore is not None:
            set_rng_state(self._rng_to_restore)
            self._rng_to_restore = None


# ---------------------------------------------------------------------------------------------- the run


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


class SaveLastAtEnd(Callback):
    """Writes ``last.ckpt`` at the end of training unless it already holds the final step. Lightning's
    ``ModelCheckpoint`` writes it with the periodic checkpoints and, at the end, only if it never saved any, so a
    run that ended between two periodic checkpoints left it behind the final weights. Listed before weight
    averaging, whose ``on_train_end`` swaps the average into the module; saving through the checkpoint callback
    records the save, so its own ``on_train_end`` does not write the swapped weights over it."""

    def __init__(self, checkpoint: ModelCheckpoint):
        self.checkpoint = checkpoint

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ckpt = self.checkpoint
        if ckpt._last_global_step_saved != trainer.global_step:   # every rank calls it; rank 0 writes
            ckpt._save_last_checkpoint(trainer, ckpt._monitor_candidates(trainer))


def build_trainer(t: TrainerConfig, optim: OptimConfig, out: Path, progress: bool, validate: bool,
                  monitor: str | None = None, mode: str = "max") -> L.Trainer:
    """A Lightning Trainer logging into ``out/logs`` and ``out/tensorboard`` (a new version per run or resume)
    and checkpointing into ``out/checkpoints``; with ``monitor`` only the best checkpoint (and ``last``) is kept;
    with ``optim.ema_decay`` it averages the weights."""
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="step{step:07d}", auto_insert_metric_name=False,
                           every_n_train_steps=t.checkpoint_every_n_steps, save_last=True,
                           save_top_k=-1 if monitor is None else 1, monitor=monitor, mode=mode)
    quiet_third_party()
    callbacks = [ckpt, SaveLastAtEnd(ckpt), LearningRateMonitor(logging_interval="step")]
    if optim.ema_decay:
        callbacks.append(EMAWeightAveraging(decay=optim.ema_decay, update_starting_at_step=optim.warmup_steps))
    progress = progress and sys.stderr.isatty()   # bars belong on a terminal, not in batch-job logs
    if progress:
        callbacks.append(StderrProgressBar(refresh_rate=1))
    val_every = t.val_every_n_steps if validate and t.val_every_n_steps > 0 else None
    return L.Trainer(
        max_steps=optim.max_steps, accelerator=t.accelerator, devices=_devices(t.devices), num_nodes=t.num_nodes,
        strategy=t.strategy, precision=resolve_precision(t), gradient_clip_val=optim.grad_clip or None,
        log_every_n_steps=t.log_every_n_steps,
        logger=[CSVLogger(out, name="logs"), TensorBoardLogger(out, name="tensorboard")],
        callbacks=callbacks, enable_progress_bar=progress, enable_model_summary=False,
        val_check_interval=val_every, check_val_every_n_epoch=None if val_every else 1, num_sanity_val_steps=0,
        limit_val_batches=t.limit_val_batches if val_every else 0, use_distributed_sampler=False,
    )


def fit(module: TrainingModule, data: WindowDataModule, out: Path, resume_from: Path | None, progress: bool,
        monitor: str | None = None, mode: str = "max") -> L.Trainer:
    """Train ``module`` on ``data`` (continuing from ``resume_from``); ``out/metrics.csv`` is rewritten from the
    logs when training stops, however it stops."""
    keep_freed_memory(every_block=True)
    data.setup("fit")
    trainer = build_trainer(module.cfg.trainer, module.cfg.optim, out, progress, data.val_set is not None,
                            monitor, mode)
    try:
        with warnings.catch_warnings():
            # the sampler continues mid-epoch (EpochSampler.resume_at), which Lightning cannot see
            warnings.filterwarnings("ignore", message=".*ended before the epoch ended.*")
            trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
    finally:
        if trainer.global_rank == 0:
            write_metrics(out)
    return trainer


def read_metrics(run: str | Path) -> pd.DataFrame:
    """Every row logged by a run and its resumes (``logs/version_*/metrics.csv``), in step order.

    A resumed run repeats the steps after its checkpoint, so rows of an earlier version at or after the first step
    of a later version are superseded by the later ones.
    """
    run = Path(run)
    parts = sorted((run / "logs").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    frames = [pd.read_csv(p) for p in parts if p.stat().st_size > 0]
    if not frames:
        if (run / "metrics.csv").is_file():          # a run folder copied without its logs
            return pd.read_csv(run / "metrics.csv")
        raise FileNotFoundError(f"{run}: no logged metrics (logs/version_*/metrics.csv); is this a run folder?")
    kept = []
    for i, frame in enumerate(frames):
        later = [f["step"].min() for f in frames[i + 1:] if len(f)]
        kept.append(frame[frame["step"] < min(later)] if later else frame)
    return pd.concat(kept, ignore_index=True)


def write_metrics(run: str | Path) -> Path | None:
    """Write :func:`read_metrics` to ``run/metrics.csv`` (atomically); ``None`` when nothing was logged yet."""
    run = Path(run)
    try:
        metrics = read_metrics(run)
    except FileNotFoundError:
        return None
    atomic_write(run / "metrics.csv", lambda tmp: metrics.to_csv(tmp, index=False))
    return run / "metrics.csv"
