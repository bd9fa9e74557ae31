"""Span masking (wav2vec 2.0): choose span starts with probability ``mask_prob / mask_length`` per frame and
mask ``mask_length`` frames from each; spans may overlap, so about ``1 - exp(-mask_prob)`` ≈ 48 % of the frames
end up masked for the defaults (0.65, 10). Fully vectorised on the model's device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class MaskingConfig:
    """Attributes:
    mask_prob: expected share of frames that start a span × ``mask_length`` (0.65).
    mask_length: frames per span (10 frames = 0.4 s at the default 25 Hz frame rate).
    min_masks: at least this many spans per window (keeps InfoNCE well defined on short windows).
    """

    mask_prob: float = 0.65
    mask_length: int = 10
    min_masks: int = 2

    def __post_init__(self):
        if not 0.0 <= self.mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in [0, 1], got {self.mask_prob}")
        if self.mask_length < 1:
            raise ValueError(f"mask_length must be >= 1, got {self.mask_length}")


def compute_span_mask(batch: int, frames: int, cfg: MaskingConfig, lengths: torch.Tensor | None = None,
                      device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean ``[batch, frames]`` mask, ``True`` = masked.

    Args:
        lengths: valid frames per window ``[batch]`` (padding-aware: spans never reach padded frames);
            ``None`` means every frame is valid.
    """
    if lengths is None:
        lengths = torch.full((batch,), frames, device=device)
    lengths = lengths.to(device)
    span = min(cfg.mask_length, frames)
    # stochastic rounding of the expected number of spans, at least min_masks (and at least one frame left)
    room = (lengths - span + 1).clamp_min(1)
    expected = cfg.mask_prob * lengths.float() / span
    n_spans = torch.floor(expected + torch.rand(batch, device=device, generator=generator)).long()
    n_spans = n_spans.clamp_min(cfg.min_masks if cfg.mask_prob > 0 else 0)
    max_spans = int(n_spans.max().item()) if batch else 0
    if max_spans == 0:
        return torch.zeros(batch, frames, dtype=torch.bool, device=device)
    starts = (torch.rand(batch, max_spans, device=device, generator=generator) * room[:, None]).long()
    active = torch.arange(max_spans, device=device)[None, :] < n_spans[:, None]
    idx = starts[:, :, None] + torch.arange(span, device=device)[None, None, :]   # [B, spans, span]
    # inactive spans write into a spare column that is dropped afterwards
    idx = torch.where(active[:, :, None], idx, torch.full_like(idx, frames)).reshape(batch, -1)
    mask = torch.zeros(batch, frames + 1, dtype=torch.bool, device=device)
    mask.scatter_(1, idx, True)
    return mask[:, :frames] & (torch.arange(frames, device=device)[None, :] < lengths[:, None])
