"""Fine-tuning a picker (P/S/noise per sample + detection) with freeze/unfreeze schedules, on Lightning.

Schedules (``schedule.name``):

* ``full``: everything trains from the start (backbone at ``backbone_lr_mult`` × lr, times ``layer_decay`` per
  part further from the head when that is below 1).
* ``frozen``: the backbone stays frozen, only the head trains (a probe of the pretrained features).
* ``freeze_then_unfreeze``: head only until ``unfreeze_at_step``, then the whole backbone joins at
  ``backbone_lr_mult`` × lr.
* ``gradual``: every ``gradual_every_steps`` steps the next part joins, from the head down, in the order the
  network lists its parts (``stages()``; for the xLSTM U-Net: up path → bottleneck → down path → encoder).

Every part that will ever train is in the optimizer from step 0, as its own group with a ``start_step``: its
learning rate is 0 until then (:class:`~seiscontrast.schedules.WarmupCosineLR`). Nothing about the model or the
optimizer changes during training, so DDP (which fixes the set of trained parameters when it wraps the model)
trains the unfrozen parts identically on every process, and a resumed run restores the groups as they were.
Only parts that never train (the backbone of ``frozen``) have ``requires_grad=False``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoints import ModelSpec, read_model_file, save_model_file
from .config import config_from_dict, config_to_dict
from .data.augmentations import AugmentConfig
from .data.seisbench_source import DatasetConfig, open_datasets, picking_generator, split
from .data.windows import WindowConfig
from .distill import DistillConfig, load_teacher, soft_cross_entropy, teacher_probs
from .heads import PickerConfig, PickerOutput, build_picker, picker_labels
from .logs import get_logger
from .pick_metrics import window_pick_counts
from .schedules import OptimConfig, param_groups
from .training import TrainerConfig, TrainingModule, WindowDataModule, fit, start_run

log = get_logger(__name__)

SCHEDULES = ("full", "frozen", "freeze_then_unfreeze", "gradual")


@dataclass
class ScheduleConfig:
    """Attributes:
    name: one of ``full``, ``frozen``, ``freeze_then_unfreeze``, ``gradual``.
    unfreeze_at_step: step at which ``freeze_then_unfreeze`` releases the backbone.
    gradual_every_steps: steps between two parts joining in ``gradual``.
    backbone_lr_mult: learning rate of backbone parameters relative to the head's.
    layer_decay: layer-wise learning-rate decay: the ``i``-th backbone part from the head down (``stages()``
        order) trains at ``backbone_lr_mult × layer_decay**i`` × lr, so the parts nearest the waveform, whose
        pretrained features are the most general, move least. 1.0: off.
    """

    name: str = "full"
    unfreeze_at_step: int = 200
    gradual_every_steps: int = 100
    backbone_lr_mult: float = 0.1
    layer_decay: float = 1.0

    def __post_init__(self):
        if self.name not in SCHEDULES:
            raise ValueError(f"schedule.name must be one of {SCHEDULES}, got {self.name!r}")
        if not 0.0 < self.layer_decay <= 1.0:
            raise ValueError(f"schedule.layer_decay must be in (0, 1], got {self.layer_decay!r}")

    def lr_mults(self, parts: list[str]) -> dict[str, float]:
        """Learning rate of each backbone part (head side first) relative to the head's."""
        return {name: self.backbone_lr_mult * self.layer_decay ** i for i, name in enumerate(parts)}

    def start_steps(self, parts: list[str]) -> dict[str, int | None]:
        """Step at which each backbone part (head side first) starts training; ``None`` = never."""
        if self.name == "full":
            return dict.fromkeys(parts, 0)
        if self.name == "frozen":
            return dict.fromkeys(parts, None)
        if self.name == "freeze_then_unfreeze":
            return dict.fromkeys(parts, self.unfreeze_at_step)
        every = max(1, self.gradual_every_steps)
        return {name: (i + 1) * every for i, name in enumerate(parts)}


@dataclass
class LabelConfig:
    """Attributes:
    sigma: standard deviation of the Gaussian pick labels (samples; 20 = 0.2 s at 100 Hz).
    noise_share: share of training windows drawn at random positions (mostly noise) instead of around picks.
    detection_weight: weight of the detection loss next to the picking loss (a head without a detection
        output, ``picker.head.detection=false``, has none).
    """

    sigma: float = 20.0
    noise_share: float = 1 / 3
    detection_weight: float = 0.5


#: what ``picker.pt`` can hold, and the validation metric (and direction) that chooses it
KEEP = {"best": ("val/loss", "min"), "best_f1": ("val/pick_f1", "max"), "last": ("val/loss", "min")}
#: the dev pick F1 of ``keep=best_f1``: probability peaks above this, within this many seconds of an onset
F1_THRESHOLD, F1_TOLERANCE_S = 0.3, 0.5


@dataclass
class FinetuneConfig:
    """A fine-tuning (or supervised baseline) run.

    Attributes:
        window: window length (samples), sampling rate (Hz), normalisation.
        data: data sources (with P/S picks), training fraction and its seed.
        picker: network to train (architecture, backbone config, head).
        schedule: freeze/unfreeze schedule.
        labels: label shape and window sampling.
        augment: augmentations of the training windows (none by default).
        distill: a trained picker whose probabilities this one learns (knowledge distillation, :mod:`.distill`).
        optim: AdamW and the warm-up/cosine schedule.
        trainer: Lightning Trainer settings.
        pretrained: ``model.pt`` from ``seiscontrast pretrain`` (its model config replaces ``picker.model``);
            ``None`` trains from random weights.
        init_from: a picker file (``picker.pt``) the run starts from instead: its picker config replaces
            ``picker`` and all its weights are loaded (more training on new data, e.g. self-training on
            pseudo-labelled records, :mod:`~seiscontrast.pseudo_labels`).
        seed: seed of everything (weights, data order, windows).
        keep: which weights ``picker.pt`` holds: ``best`` (the checkpoint with the lowest dev loss), ``best_f1``
            (the highest dev pick F1: P and S peaks above 0.3 within 0.5 s of the labelled onsets in the dev
            windows, ``val/pick_f1``) or ``last`` (the final step). With few labels the dev loss can rise from the
            first validation on while the network is still learning to pick, and ``best`` then keeps a network
            that picks nothing (README, "The checkpoint choice decides the failed runs").
    """

    window: WindowConfig = field(default_factory=WindowConfig)
    data: DatasetConfig = field(default_factory=DatasetConfig)
    picker: PickerConfig = field(default_factory=PickerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    labels: LabelConfig = field(default_factory=LabelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-3, warmup_steps=50, max_steps=1000))
    trainer: TrainerConfig = field(default_factory=lambda: TrainerConfig(batch_size=16, val_every_n_steps=100,
                                                                       checkpoint_every_n_steps=100))
    pretrained: str | None = None
    init_from: str | None = None
    seed: int = 0
    keep: str = "best"

    def __post_init__(self):
        if self.pretrained and self.init_from:
            raise ValueError("give either pretrained (a backbone) or init_from (a picker), not both")
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, got {self.keep!r}")


def picking_loss(out: PickerOutput, labels: torch.Tensor, detections: torch.Tensor | None,
                 detection_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(total, pick)``: soft-label cross-entropy over P/S/noise per sample (+ weighted detection BCE)."""
    pick = soft_cross_entropy(out.log_probs, labels)
    total = pick
    if out.detection_logits is not None and detections is not None and detection_weight > 0:
        total = total + detection_weight * torch.nn.functional.binary_cross_entropy_with_logits(
            out.detection_logits, detections.float())
    return total, pick


class PickingData(WindowDataModule):
    """Labelled windows around picks (and random ones) from the ``train`` and ``dev`` splits."""

    cfg: FinetuneConfig

    def datasets(self):
        cfg = self.cfg
        data = open_datasets(cfg.data.sources, cfg.window, cfg.data.missing_components, cfg.data.cache)

        def windows(part, augment=cfg.augment):
            return picking_generator(part, cfg.window, cfg.labels.sigma, cfg.labels.noise_share, augment=augment)

        dev = windows(split(data, "dev"), augment=None)
        if not cfg.data.repeats:
            return windows(split(data, "train", cfg.data)), dev
        if len(cfg.data.repeats) != len(cfg.data.sources):
            raise ValueError(f"data.repeats has {len(cfg.data.repeats)} numbers for {len(cfg.data.sources)} sources")
        parts = data.datasets if len(cfg.data.sources) > 1 else [data]
        trains = [windows(split(d, "train", cfg.data)) for d in parts]
        return torch.utils.data.ConcatDataset([g for g, r in zip(trains, cfg.data.repeats) for _ in range(r)]), dev


class PickerModule(TrainingModule):
    """LightningModule training any picker network (``net``) with :func:`picking_loss`."""

    def __init__(self, config: dict):
        super().__init__(config, kind="picker", model_prefix="net.")
        self.cfg: FinetuneConfig = config_from_dict(FinetuneConfig, config)
        self.net = build_picker(self.cfg.picker, self.cfg.window.sampling_rate)
        # parts that never train are frozen before any wrapping (DDP), and so are the pretraining-only
        # parameters (quantizer, contrastive projections) that no stage lists: DDP expects a gradient for
        # every parameter that requires one
        stages, start = self.net.stages(), self.start_steps()
        trained = {id(p) for name, ms in stages.items() if start[name] is not None for m in ms for p in m.parameters()}
        for p in self.net.parameters():
            if id(p) not in trained:
                p.requires_grad_(False)
        # in a list, so that it is neither saved with the picker nor trained nor wrapped by DDP
        d = self.cfg.distill
        self._teacher = [load_teacher(d.teacher, self.cfg.window, picker_labels(self.cfg.picker))] if d.teacher else []

    def start_steps(self) -> dict[str, int | None]:
        """Step at which each trainable part starts (``head`` at 0); ``None`` = never trains."""
        parts = [k for k in self.net.stages() if k != "head"]
        return {"head": 0, **self.cfg.schedule.start_steps(parts)}

    def _step(self, batch, stage: str) -> tuple[torch.Tensor, PickerOutput]:
        out = self.net(batch["X"])
        total, pick = picking_loss(out, batch["y"], batch.get("detections"), self.cfg.labels.detection_weight)
        logged = {"loss": total, "pick_loss": pick}
        if self._teacher:
            w = self.cfg.distill.weight
            logged["distill_loss"] = soft_cross_entropy(out.log_probs, teacher_probs(self._teacher[0], batch["X"]))
            total = logged["loss"] = total - w * pick + w * logged["distill_loss"]
        self.log_stage(stage, logged, len(batch["X"]), prog_bar=("loss", "pick_loss"))
        return total, out

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx):
        _, out = self._step(batch, "val")
        if self.cfg.keep == "best_f1":   # P and S curves (not noise) against their labels, same channel order
            probs = out.probs[:, :-1].float().cpu().numpy()
            counts = window_pick_counts(probs, batch["y"][:, :probs.shape[1]].float().cpu().numpy(), F1_THRESHOLD,
                                        round(F1_TOLERANCE_S * self.cfg.window.sampling_rate))
            self._pick_counts += torch.as_tensor(counts, device=self._pick_counts.device)

    def on_validation_epoch_start(self):
        self._pick_counts = torch.zeros(3, dtype=torch.long, device=self.device)

    def on_validation_epoch_end(self):
        if self.cfg.keep == "best_f1":
            tp, false, missed = (self.all_gather(self._pick_counts).reshape(-1, 3).sum(0)).tolist()
            f1 = 2 * tp / max(2 * tp + false + missed, 1)
            self.log("val/pick_f1", torch.tensor(f1, dtype=torch.float32))   # the same on every process

    def parameter_groups(self) -> list[dict]:
        """One pair of AdamW groups per part, each with its ``start_step`` (lr 0 before it)."""
        o, s = self.cfg.optim, self.cfg.schedule
        stages, groups = self.net.stages(), []
        mults = {"head": 1.0, **s.lr_mults([k for k in stages if k != "head"])}
        for name, start in self.start_steps().items():
            if start is None:
                continue
            lr = o.lr * mults[name]
            for g in param_groups(torch.nn.ModuleList(stages[name]), o.weight_decay, lr):
                if g["params"]:
                    groups.append({**g, "part": name, "start_step": start})
        return groups


def load_pretrained_into(cfg: FinetuneConfig, module: PickerModule) -> None:
    """Replace the backbone weights by the pretrained ones (the config was taken from the same file)."""
    missing, unexpected = module.net.backbone.load_state_dict(read_model_file(cfg.pretrained)[1], strict=False)
    if missing or unexpected:
        raise ValueError(f"{cfg.pretrained}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]})")


def resolve_pretrained(cfg: FinetuneConfig) -> FinetuneConfig:
    """Take the backbone config from the pretrained model file (or the picker config from ``init_from``), so
    the weights fit."""
    if cfg.init_from:
        spec = read_model_file(cfg.init_from)[0]
        if spec.kind != "picker":
            raise ValueError(f"{cfg.init_from} is a {spec.kind} model, not a picker (init_from needs picker.pt)")
        cfg.picker = spec.picker
    if cfg.pretrained:
        spec = read_model_file(cfg.pretrained)[0]
        if spec.kind != "pretrained":
            raise ValueError(f"{cfg.pretrained} is a {spec.kind} model, not a pretrained backbone")
        cfg.picker.model = spec.model
        if cfg.picker.arch != "seiscontrast":
            raise ValueError("--pretrained needs picker.arch=seiscontrast")
    return cfg


def run_finetuning(cfg: FinetuneConfig, out_dir: str | Path, resume: bool = False, progress: bool = True) -> Path:
    """Train a picker and write ``out_dir/picker.pt`` (weights of the best dev-loss checkpoint, or of the final
    step with ``keep=last``)."""
    cfg = resolve_pretrained(cfg)
    out, last = start_run(cfg, out_dir, resume)
    data, module = PickingData(cfg), PickerModule(config_to_dict(cfg))
    data.setup("fit")
    if cfg.pretrained and not resume:
        load_pretrained_into(cfg, module)
    if cfg.init_from and not resume:
        module.net.load_state_dict(read_model_file(cfg.init_from)[1])
    log.info("fine-tuning %s (%s schedule, %s) on %d training traces for %d steps", cfg.picker.arch,
             cfg.schedule.name, "pretrained" if cfg.pretrained else f"from {cfg.init_from}" if cfg.init_from
             else "random init", len(data.train_set),
             cfg.optim.max_steps)
    trainer = fit(module, data, out, last if resume else None, progress, *KEEP[cfg.keep])
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback and cfg.keep != "last" else ""
    state = read_model_file(best)[1] if best else module.net.state_dict()
    path = out / "picker.pt"
    if trainer.global_rank == 0:
        spec = ModelSpec("picker", cfg.window, picker=cfg.picker, labels=picker_labels(cfg.picker))
        save_model_file(path, spec, state, {"global_step": trainer.global_step,
                                            "best_checkpoint": Path(best).name if best else None}, config_to_dict(cfg))
        log.info("wrote %s", path)
    return path
