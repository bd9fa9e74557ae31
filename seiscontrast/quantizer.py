"""Gumbel vector quantizer (wav2vec 2.0): ``groups`` codebooks of ``codes`` entries, hard Gumbel-softmax with
straight-through gradients, temperature annealed from ``temperature_start`` to ``temperature_end``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class QuantizerConfig:
    """Attributes:
    groups: codebooks (2); the quantized vector concatenates one entry of each.
    codes: entries per codebook (320); 320² ≈ 100k possible targets.
    dim: width of the quantized vector (split evenly over the groups).
    temperature_start / temperature_end: Gumbel temperature at the first and the last training step
        (annealed geometrically in between).
    selection_gradient: share of the gradient that reaches the code choice (the logits) through the
        straight-through estimator; 1 is wav2vec 2.0. The contrastive loss pulls the choice towards few, easily
        predicted codes; 0 leaves the choice to the encoder and the regularisers below.
    frame_entropy_weight: adds the mean entropy of each frame's code distribution (a share of ln ``codes``) to
        the diversity loss: confident codes per frame.
    batch_entropy_weight: adds ``1 −`` the entropy of the batch-averaged code distribution (a share of
        ln ``codes``) to the diversity loss: the usage term of wav2vec 2.0's diversity loss in log scale, whose
        gradient does not vanish when few codes are used (the perplexity's does, in proportion to it).
        The three terms of the diversity loss are weighted together by the pretraining's ``diversity_weight``;
        the README ("How well pretraining learns") gives what each setting measured.
    """

    groups: int = 2
    codes: int = 320
    dim: int = 256
    temperature_start: float = 2.0
    temperature_end: float = 0.5
    selection_gradient: float = 1.0
    frame_entropy_weight: float = 0.0
    batch_entropy_weight: float = 0.0

    def __post_init__(self):
        if self.dim % self.groups:
            raise ValueError(f"quantizer dim {self.dim} must be divisible by groups {self.groups}")
        if not self.temperature_start >= self.temperature_end > 0:
            raise ValueError("need temperature_start >= temperature_end > 0, got "
                             f"{self.temperature_start}, {self.temperature_end}")
        if not 0.0 <= self.selection_gradient <= 1.0:
            raise ValueError(f"selection_gradient must be in [0, 1], got {self.selection_gradient}")

    def temperature(self, progress: float) -> float:
        """Gumbel temperature at a training progress in [0, 1]."""
        p = min(max(progress, 0.0), 1.0)
        return self.temperature_start * (self.temperature_end / self.temperature_start) ** p


@dataclass
class QuantizerOutput:
    """Attributes:
    quantized: ``[batch, frames, dim]`` code vectors (straight-through gradients in training); with a mask, zero
        at the frames outside it.
    codes: ``[batch, frames, groups]`` entry per group the quantized vector is made of (Gumbel-sampled in
        training, arg-max otherwise); with a mask, -1 at the frames outside it.
    prob_perplexity: perplexity of the batch-averaged soft code distribution, summed over groups
        (between ``groups`` and ``groups × codes``).
    code_perplexity: the same from the hard choices.
    diversity_loss: ``(groups·codes − prob_perplexity) / (groups·codes)``, in [0, 1), plus the entropy terms of
        :class:`QuantizerConfig` where their weights are not 0.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    prob_perplexity: torch.Tensor
    code_perplexity: torch.Tensor
    diversity_loss: torch.Tensor


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of each distribution over the last axis of ``probs``."""
    return -(probs * torch.log(probs + 1e-7)).sum(-1)


def _perplexity(probs: torch.Tensor) -> torch.Tensor:
    """``probs`` [groups, codes] → sum over groups of exp(entropy)."""
    return torch.exp(_entropy(probs)).sum()


def _entropy_share(probs: torch.Tensor) -> torch.Tensor:
    """Mean entropy of the distributions over the last axis of ``probs``, as a share of its maximum."""
    return _entropy(probs).mean() / math.log(probs.shape[-1])


class GumbelVectorQuantizer(nn.Module):
    """``[batch, frames, in_dim]`` → :class:`QuantizerOutput`; a ``mask`` restricts quantization and the perplexity
    statistics to the masked frames."""

    def __init__(self, in_dim: int, cfg: QuantizerConfig):
        super().__init__()
        self.cfg = cfg
        self.logits = nn.Linear(in_dim, cfg.groups * cfg.codes)
        nn.init.normal_(self.logits.weight, std=1.0)
        nn.init.zeros_(self.logits.bias)
        # centred codes: uniform [0, 1) entries (wav2vec 2.0's) share a large common direction, so every target
        # starts nearly parallel to every other, and short runs could stall at chance (1 of 4 seeds of the tiny test)
        self.codebook = nn.Parameter(torch.randn(cfg.groups, cfg.codes, cfg.dim // cfg.groups))
        self.temperature = cfg.temperature_start

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        g, v = self.cfg.groups, self.cfg.codes
        b, t, _ = x.shape
        # with a mask only the masked frames are quantized: they are the only targets the contrastive loss uses,
        # and the Gumbel sampling over groups × codes logits per frame is the costliest part of the step
        logits = self.logits(x if mask is None else x[mask]).float().view(-1, g, v)   # [n, g, v]
        frame_probs = logits.softmax(-1)
        soft = frame_probs.mean(0)                                     # [g, v]
        hard_idx = logits.argmax(-1)                                   # [n, g]
        hard_counts = F.one_hot(hard_idx, v).float().mean(0)
        if self.training:
            a = self.cfg.selection_gradient
            chosen = logits if a == 1.0 else logits * a + logits.detach() * (1 - a)   # same values, scaled gradient
            onehot = F.gumbel_softmax(chosen, tau=self.temperature, hard=True, dim=-1)
            used_idx = onehot.argmax(-1)  # the sampled codes the targets are actually built from
        else:
            onehot = F.one_hot(hard_idx, v).to(logits.dtype)
            used_idx = hard_idx
        quantized = torch.einsum("ngv,gvd->ngd", onehot.to(self.codebook.dtype), self.codebook).flatten(1)
        if mask is None:
            quantized, codes = quantized.view(b, t, -1), used_idx.view(b, t, g)
        else:
            quantized = quantized.new_zeros(b, t, quantized.shape[-1]).masked_scatter(mask[..., None], quantized)
            codes = used_idx.new_full((b, t, g), -1).masked_scatter(mask[..., None], used_idx)
        prob_ppl = _perplexity(soft)
        diversity = (g * v - prob_ppl) / (g * v)
        if self.cfg.frame_entropy_weight:
            diversity = diversity + self.cfg.frame_entropy_weight * _entropy_share(frame_probs)
        if self.cfg.batch_entropy_weight:
            diversity = diversity + self.cfg.batch_entropy_weight * (1 - _entropy_share(soft))
        return QuantizerOutput(
            quantized=quantized, codes=codes, prob_perplexity=prob_ppl,
            code_perplexity=_perplexity(hard_counts), diversity_loss=diversity,
        )
