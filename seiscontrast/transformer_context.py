"""Transformer context network: the wav2vec 2.0 / seisLM choice, a drop-in alternative to the xLSTM U-Net.

Set ``model.transformer`` to use it (``model.transformer={}`` for the defaults below); its width is
``model.context.dim``. Positions enter through a grouped convolution over frames added to the input (wav2vec
2.0's convolutional relative positional embedding), so any number of frames works without a length limit.
Self-attention is quadratic in the number of frames, unlike the xLSTM U-Net's chunkwise mLSTM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TransformerConfig:
    """Attributes:
    layers: pre-norm Transformer encoder layers.
    num_heads: attention heads (must divide ``model.context.dim``).
    ff_mult: width of the feed-forward layers relative to the model width.
    dropout: dropout in attention and feed-forward layers.
    pos_conv_kernel: frames seen by the positional convolution.
    pos_conv_groups: groups of the positional convolution.
    """

    layers: int = 4
    num_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.1
    pos_conv_kernel: int = 32
    pos_conv_groups: int = 4

    def __post_init__(self):
        if self.layers < 1:
            raise ValueError(f"transformer.layers must be at least 1, got {self.layers}")


class TransformerContext(nn.Module):
    """``[batch, frames, dim]`` → ``[batch, frames, dim]``: positional convolution, then Transformer layers."""

    def __init__(self, dim: int, cfg: TransformerConfig):
        super().__init__()
        if dim % cfg.num_heads or dim % cfg.pos_conv_groups:
            raise ValueError(f"model.context.dim={dim} must be divisible by transformer.num_heads={cfg.num_heads} "
                             f"and transformer.pos_conv_groups={cfg.pos_conv_groups}")
        self.cfg = cfg
        self.pos_conv = nn.Conv1d(dim, dim, cfg.pos_conv_kernel, padding=cfg.pos_conv_kernel // 2,
                                  groups=cfg.pos_conv_groups)
        self.input_norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, cfg.num_heads, cfg.ff_mult * dim, cfg.dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(cfg.layers))
        self.output_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        pos = self.pos_conv(x.transpose(1, 2))[..., :frames]   # an even kernel gives one frame too many
        x = self.input_norm(x + nn.functional.gelu(pos).transpose(1, 2))
        for layer in self.layers:
            x = layer(x)
        return self.output_norm(x)

    def stages(self) -> dict[str, list[nn.Module]]:
        """One part per layer from the top (head side) down; the positional convolution joins the lowest."""
        n = len(self.layers)
        stages = {f"layer{i + 1}": [self.layers[i]] for i in reversed(range(n))}
        stages[f"layer{n}"].append(self.output_norm)
        stages["layer1"] += [self.pos_conv, self.input_norm]
        return stages
