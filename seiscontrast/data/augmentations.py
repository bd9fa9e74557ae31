"""Fine-tuning augmentations: SeisBench's own, each applied to a share of the training windows.

They run on the cut window before the labeller, so a pick that an augmentation removes (a gap over it) loses
its label too. Dev and test windows are never augmented.
"""

from __future__ import annotations

from dataclasses import dataclass

import seisbench.generate as sbg


@dataclass
class AugmentConfig:
    """Share of training windows (0–1) that each augmentation touches; all 0 (the default): none.

    Attributes:
        channel_dropout: zero up to two randomly chosen channels (SeisBench ``ChannelDropout``, which draws
            0, 1 or 2 of them): dead or absent horizontals, vertical-only stations.
        gaussian_noise: add white noise of up to ``noise_scale`` × the window's peak (``GaussianNoise``): weak
            events in noisier records.
        noise_scale: the largest noise level of ``gaussian_noise``, relative to the window's peak amplitude.
        gap: zero a random span of all channels (``AddGap``), as in archives with gaps; picks inside it lose
            their labels.
        polarity_flip: multiply the window by −1: first motions of either sign look alike to the picker.
    """

    channel_dropout: float = 0.0
    gaussian_noise: float = 0.0
    noise_scale: float = 0.15
    gap: float = 0.0
    polarity_flip: float = 0.0

    def __post_init__(self):
        for name in ("channel_dropout", "gaussian_noise", "gap", "polarity_flip"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"augment.{name} is a share of windows in [0, 1], got {getattr(self, name)!r}")
        if self.noise_scale <= 0:
            raise ValueError(f"augment.noise_scale must be positive, got {self.noise_scale!r}")


class PolarityFlip:
    """Multiplies the waveform by −1 (labels are unchanged)."""

    def __init__(self, key: str = "X"):
        self.key = key

    def __call__(self, state_dict):
        x, metadata = state_dict[self.key]
        state_dict[self.key] = (-x, metadata)

    def __str__(self):
        return "PolarityFlip"


def sometimes(augmentation, share: float):
    """``augmentation`` on a ``share`` of the windows (``OneOf`` with SeisBench's ``NullAugmentation``)."""
    return sbg.OneOf([augmentation, sbg.NullAugmentation()], probabilities=[share, 1 - share])


def training_augmentations(cfg: AugmentConfig | None) -> list:
    """The SeisBench augmentations ``cfg`` asks for, in a fixed order (noise before gaps, so gaps stay zero)."""
    if cfg is None:
        return []
    chosen = [(sbg.ChannelDropout(), cfg.channel_dropout),
              (sbg.GaussianNoise(scale=(0.0, cfg.noise_scale)), cfg.gaussian_noise),
              (sbg.AddGap(metadata_picks_in_gap_threshold=0), cfg.gap),
              (PolarityFlip(), cfg.polarity_flip)]
    return [sometimes(a, share) for a, share in chosen if share > 0]

