"""Knowledge distillation for fine-tuning: a picker (the student) learns a trained picker's (the teacher's) P/S/noise
probabilities on the same windows, next to or instead of the labels.

Why: a cheaper network trained on labels alone loses accuracy against the bundled one (README, "Benchmarks"); taught by
it, on the same synthetic windows and on unlabelled real ones, it can keep more of what the larger network learnt,
including how it treats real records, which the synthetic labels do not describe. Labels of real windows (e.g.
from ``seiscontrast pseudo-label``) are then only where the windows are cut; with ``weight=1`` they are not used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .checkpoints import load_model
from .heads import PickerOutput, picker_labels


@dataclass
class DistillConfig:
    """Attributes:
    teacher: a picker file (``picker.pt``) whose probabilities the network learns; ``None``: no distillation.
    weight: share of the picking loss taken from the teacher's probabilities (the rest from the labels):
        ``loss = (1 - weight) · CE(labels) + weight · CE(teacher)``; 1 trains on the teacher alone.
    """

    teacher: str | None = None
    weight: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.weight <= 1.0:
            raise ValueError(f"distill.weight must be in [0, 1], got {self.weight!r}")


def load_teacher(path: str, window, labels: str) -> torch.nn.Module:
    """The teacher network of ``path`` in eval mode, without gradients; its windows and label order must be the
    student's, so that both see the same input and their outputs line up."""
    teacher = load_model(path)
    spec = teacher.spec
    if spec.kind != "picker":
        raise ValueError(f"distill.teacher {path}: a {spec.kind} model, not a picker (picker.pt)")
    if spec.window != window:
        raise ValueError(f"distill.teacher {path}: its windows ({spec.window}) differ from this run's ({window}); "
                         "set window.* to the teacher's")
    if picker_labels(spec.picker) != labels:
        raise ValueError(f"distill.teacher {path}: outputs {picker_labels(spec.picker)!r}, this picker {labels!r}")
    return teacher.net.requires_grad_(False)


def soft_cross_entropy(log_probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``[B, C, N]`` log-probabilities against ``[B, C, N]`` target distributions, mean over
    windows and samples."""
    return -(targets.float() * log_probs).sum(1).mean()


def teacher_probs(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[B, 3, N]`` teacher probabilities of the batch ``x`` (the teacher is moved to ``x``'s device once)."""
    if next(teacher.parameters()).device != x.device:
        teacher.to(x.device)
    with torch.no_grad():
        out: PickerOutput = teacher(x)
    return out.probs.float()
