"""The seiscontrast network: encoder → (masking) → context network → projections, plus the quantizer for targets.

``SeisContrastModel`` is assembled from parts passed in (encoder, context network, quantizer), in the manner of
torchaudio's wav2vec 2.0; :func:`build_model` builds them from a :class:`ModelConfig`, so a checkpoint that carries
the config restores the model exactly. The context network is the xLSTM U-Net, or a Transformer when
``model.transformer`` is set; any module following :class:`ContextNetwork` fits.
``SeisContrastModel.pretrain_forward`` is the wav2vec 2.0 objective's forward pass; ``SeisContrastModel.forward``
returns frame features for fine-tuning and embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
from torch import nn

from .context import ContextConfig, XLSTMUNet
from .data.windows import normalize_window
from .encoder import ConvEncoderConfig, ConvFeatureEncoder
from .masking import MaskingConfig, compute_span_mask
from .quantizer import GumbelVectorQuantizer, QuantizerConfig, QuantizerOutput
from .transformer_context import TransformerConfig, TransformerContext


@dataclass
class ModelConfig:
    """Attributes:
    encoder / context / quantizer / masking: the stage configs (``context.dim`` is the width of any context
        network; the other ``context`` settings are the xLSTM U-Net's).
    transformer: when set, a Transformer context network replaces the xLSTM U-Net.
    final_dim: width of the space where context outputs and quantized targets are compared.
    feature_dropout: dropout on the projected encoder features (before masking).
    normalization: the input normalisation, the network's first step and the only one anywhere (``std``: divide by
        the standard deviation over all channels; ``peak``: by the absolute maximum), so the model takes raw
        counts.
    """

    #: settings of earlier releases, ignored when a stored config is read (``max_frames``: the parallel kernel's
    #: length limit, gone since it makes its causal mask per sequence)
    removed_keys = ("max_frames",)

    encoder: ConvEncoderConfig = field(default_factory=ConvEncoderConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    transformer: TransformerConfig | None = None
    final_dim: int = 256
    feature_dropout: float = 0.1
    normalization: str = "std"

    def __post_init__(self):
        if self.normalization not in ("std", "peak"):
            raise ValueError(f"model.normalization must be 'std' or 'peak', got {self.normalization!r}")


@dataclass
class PretrainOutput:
    """Attributes:
    context: ``[B, T, final_dim]`` projected context outputs.
    targets: ``[B, T, final_dim]`` projected quantized (unmasked) encoder features.
    mask: ``[B, T]`` masked frames.
    quantizer: the quantizer's output (perplexities, diversity loss, codes).
    feature_penalty: mean squared encoder feature (wav2vec 2.0's L2 penalty).
    features: ``[B, T, enc_dim]`` layer-normed encoder features (what the quantizer and the context network see).
    """

    context: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    quantizer: QuantizerOutput
    feature_penalty: torch.Tensor
    features: torch.Tensor | None = None


class ContextNetwork(Protocol):
    """What the model asks of a context network: ``[B, T, dim]`` → ``[B, T, dim]`` for any ``T``, and its
    trainable parts by name, ordered from the head side down (the freeze schedules unfreeze them in this order)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...

    def stages(self) -> dict[str, list[nn.Module]]: ...


def build_context(cfg: ModelConfig) -> nn.Module:
    """The context network a config asks for."""
    if cfg.transformer is not None:
        return TransformerContext(cfg.context.dim, cfg.transformer)
    return XLSTMUNet(cfg.context)


def build_model(cfg: ModelConfig) -> SeisContrastModel:
    """A :class:`SeisContrastModel` with the parts its config names (random weights)."""
    encoder = ConvFeatureEncoder(cfg.encoder)
    return SeisContrastModel(cfg, encoder, build_context(cfg), GumbelVectorQuantizer(encoder.out_channels,
                                                                                       cfg.quantizer))


class SeisContrastModel(nn.Module):
    """``[batch, 3, samples]`` Z/N/E waveforms → frame representations (``samples / encoder.hop`` frames).

    Args:
        cfg: the model config (widths, masking, normalisation).
        encoder: waveform → ``[B, T, enc_dim]`` features (``out_channels`` = enc_dim).
        context: a :class:`ContextNetwork` of width ``cfg.context.dim``.
        quantizer: quantizes encoder features into the contrastive targets.
    """

    def __init__(self, cfg: ModelConfig, encoder: ConvFeatureEncoder, context: ContextNetwork,
                 quantizer: GumbelVectorQuantizer):
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        enc_dim = encoder.out_channels
        self.feature_norm = nn.LayerNorm(enc_dim)
        self.feature_projection = nn.Linear(enc_dim, cfg.context.dim)
        self.feature_dropout = nn.Dropout(cfg.feature_dropout)
        self.mask_embedding = nn.Parameter(torch.empty(cfg.context.dim).uniform_())
        self.context = context
        self.quantizer = quantizer
        self.project_context = nn.Linear(cfg.context.dim, cfg.final_dim)
        self.project_targets = nn.Linear(cfg.quantizer.dim, cfg.final_dim)

    @property
    def hop(self) -> int:
        """Input samples per frame."""
        return self.cfg.encoder.hop

    @property
    def dim(self) -> int:
        """Width of the frame features returned by :meth:`forward`."""
        return self.cfg.context.dim

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The input normalisation (``cfg.normalization``) of ``[B, 3, N]`` windows."""
        return normalize_window(x, self.cfg.normalization)

    def encode(self, x: torch.Tensor, normalized: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Input (``normalized``: already through :meth:`normalize`) → ``(raw, layer-normed)`` encoder features,
        each ``[B, T, enc_dim]``."""
        raw = self.encoder(x if normalized else self.normalize(x))
        return raw, self.feature_norm(raw)

    def forward(self, x: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        """Context features ``[B, T, dim]`` of unmasked input (for heads and embeddings)."""
        return self.context(self.feature_projection(self.encode(x, normalized)[1]))

    def pretrain_forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> PretrainOutput:
        """Masked forward pass for the contrastive objective (``mask`` drawn if not given)."""
        raw, features = self.encode(x)
        b, t, _ = features.shape
        if mask is None:
            mask = compute_span_mask(b, t, self.cfg.masking, device=x.device)
        projected = self.feature_dropout(self.feature_projection(features))
        masked = torch.where(mask[..., None], self.mask_embedding.to(projected.dtype), projected)
        context = self.context(masked)
        quant = self.quantizer(features, mask)
        return PretrainOutput(
            context=self.project_context(context), targets=self.project_targets(quant.quantized),
            mask=mask, quantizer=quant, feature_penalty=raw.float().pow(2).mean(), features=features,
        )

    def backbone_stages(self) -> dict[str, list[nn.Module]]:
        """Backbone parts used by the heads, from the head side down (for freeze/unfreeze schedules).

        The mask embedding, quantizer and contrastive projections serve pretraining only and are not listed.
        """
        stages = {f"context_{name}": modules for name, modules in self.context.stages().items()}
        return {**stages, "encoder": [self.encoder, self.feature_norm, self.feature_projection]}
