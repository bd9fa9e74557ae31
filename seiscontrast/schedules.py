"""Learning-rate schedule shared by pretraining and fine-tuning: linear warm-up, then cosine decay."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch


@dataclass
class OptimConfig:
    """AdamW + warm-up/cosine schedule.

    Attributes:
        lr: peak learning rate.
        weight_decay: AdamW decoupled weight decay (not applied to biases, norms, embeddings, codebooks).
        betas: AdamW betas.
        warmup_steps: linear warm-up from 0 to ``lr``.
        max_steps: total optimiser steps; the cosine reaches ``min_lr_ratio × lr`` here.
        min_lr_ratio: final learning rate as a share of ``lr``.
        grad_clip: clip the global gradient norm to this (0 disables).
        ema_decay: keep an exponential moving average of the weights with this decay per step, from the end of
            the warm-up on (0: off). Validation, checkpoints and the written model then hold the average
            (Lightning's ``EMAWeightAveraging``); 0.999 averages over about the last 1000 steps.
    """

    lr: float = 5e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    warmup_steps: int = 1000
    max_steps: int = 100_000
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.0

    def __post_init__(self):
        if self.max_steps < 1 or self.warmup_steps < 0:
            raise ValueError(f"need max_steps >= 1 and warmup_steps >= 0, got {self.max_steps}, {self.warmup_steps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


class WarmupCosine:
    """Multiplier of the peak learning rate at a given step (picklable, unlike a lambda)."""

    def __init__(self, warmup_steps: int, max_steps: int, min_ratio: float):
        self.warmup, self.total, self.min_ratio = warmup_steps, max_steps, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class WarmupCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """Warm-up + cosine on every param group, each scaled from its own ``initial_lr``; a group with a
    ``start_step`` has learning rate 0 before that step (how freeze schedules hold a part still)."""

    def __init__(self, optimizer, warmup_steps: int, max_steps: int, min_ratio: float, last_epoch: int = -1):
        self.factor = WarmupCosine(warmup_steps, max_steps, min_ratio)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        f, step = self.factor(self.last_epoch), self.last_epoch
        return [g.setdefault("initial_lr", g["lr"]) * f * (step >= g.get("start_step", 0))
                for g in self.optimizer.param_groups]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "factor"}


def param_groups(module, weight_decay: float, lr: float, names_without_decay=("codebook", "mask_embedding")):
    """Two AdamW groups: matrices with weight decay; biases, norms and embeddings without."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or any(n in name for n in names_without_decay) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": lr}]
