"""The window contract shared by the whole toolkit.

A window is a float32 array ``[3, length]`` with channels ordered Z, N, E, sampled at ``sampling_rate`` Hz, in
the units of the data. Normalising is the network's first step, done once (``model.normalization``;
:func:`normalize_window` demeans each channel and scales all three by one factor, so the Z/horizontal amplitude
ratio, which tells P from S, survives); SeisBench's ``annotate`` hands the network raw counts as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.signal import butter, sosfilt, sosfilt_zi

COMPONENTS = "ZNE"


@dataclass
class WindowConfig:
    """What every window looks like.

    Attributes:
        length: samples per window (4096 samples = 40.96 s at 100 Hz).
        sampling_rate: Hz; data at other rates are resampled to this.
        components: channel order; always ``"ZNE"`` for the built-in models.
        highpass: corner (Hz) of the causal 2-pole Butterworth high-pass each trace goes through before it is
            cut into windows (:func:`highpass`), in training and in picking alike; ``None``: off. Broadband
            stations record microseisms (0.1–0.3 Hz) tens of times stronger than the noise above 1 Hz, and the
            network's per-window scaling then shrinks a P onset to a fraction of what it saw in training.
    """

    length: int = 4096
    sampling_rate: float = 100.0
    components: str = COMPONENTS
    highpass: float | None = None
    #: keys of earlier releases that stored configs may still hold; dropped when such a config is read
    removed_keys = ("normalization",)   # now ``model.normalization``: the network normalises, once

    def __post_init__(self):
        if self.length < 16:
            raise ValueError(f"window length must be at least 16 samples, got {self.length}")
        if self.sampling_rate <= 0:
            raise ValueError(f"sampling_rate must be positive, got {self.sampling_rate}")
        if sorted(self.components) != sorted(COMPONENTS):
            raise ValueError(f"components must be a permutation of 'ZNE', got {self.components!r}")
        if self.highpass is not None and not 0 < self.highpass < self.sampling_rate / 2:
            raise ValueError(f"window.highpass must lie between 0 and the Nyquist frequency "
                             f"({self.sampling_rate / 2:g} Hz), got {self.highpass!r}")

    @property
    def duration(self) -> float:
        """Window length in seconds."""
        return self.length / self.sampling_rate


def normalize_window(x, method: str = "std", eps: float = 1e-8):
    """Demean each channel and divide all channels by one scale factor.

    Works on numpy arrays and torch tensors of shape ``[..., channels, samples]``. All-zero and constant windows
    stay all-zero (the scale is clamped), NaN/inf are replaced by zero first so a bad sample cannot poison a
    whole batch.
    """
    if isinstance(x, torch.Tensor):
        x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
        x = x - x.mean(dim=-1, keepdim=True)
        flat = x.flatten(-2)
        if method == "std":   # the channels are demeaned, so their rms is the std: a norm is 3x faster than std()
            scale = torch.linalg.vector_norm(flat, dim=-1) / flat.shape[-1] ** 0.5
        else:
            scale = flat.abs().amax(dim=-1)
        return x / scale.clamp_min(eps)[..., None, None]
    x = np.nan_to_num(np.asarray(x, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    x = x - x.mean(axis=-1, keepdims=True)
    flat = x.reshape(*x.shape[:-2], -1)
    scale = flat.std(axis=-1) if method == "std" else np.abs(flat).max(axis=-1)
    return (x / np.maximum(scale, eps)[..., None, None]).astype(np.float32)


def highpass(x: np.ndarray, sampling_rate: float, corner: float, min_gap: int = 8) -> np.ndarray:
    """Causal 2-pole Butterworth high-pass of ``x`` (``[..., samples]``) above ``corner`` Hz, as float32.

    Runs of at least ``min_gap`` exact zeros (zero-filled gaps, padding, absent channels) stay zero and split
    a trace into segments that are filtered one by one: each is demeaned and starts in the filter's steady state,
    so neither a gap nor the trace start rings like an onset. Causal, so nothing moves before an onset.
    Raises ``ValueError`` when ``corner`` is not between 0 and the Nyquist frequency.
    """
    if not 0 < corner < sampling_rate / 2:
        raise ValueError(f"a high-pass at {corner:g} Hz needs data sampled above {2 * corner:g} Hz, "
                         f"these are sampled at {sampling_rate:g} Hz")
    sos = butter(2, corner, btype="highpass", fs=sampling_rate, output="sos")
    zi = sosfilt_zi(sos)
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape, dtype=np.float32)
    for idx in np.ndindex(x.shape[:-1]):
        row = x[idx]
        for a, b in segments(row, min_gap):
            seg = row[a:b] - row[a:b].mean()
            out[idx][a:b] = sosfilt(sos, seg, zi=zi * seg[0])[0]
    return out


def segments(row: np.ndarray, min_gap: int) -> list[tuple[int, int]]:
    """``(first, end)`` index ranges of ``row`` between runs of at least ``min_gap`` exact zeros."""
    zero = row == 0
    if not zero.any():   # most records: one segment, without scanning for runs (a station-day is 8.6 M samples)
        return [(0, len(row))]
    gap = np.zeros(row.shape, dtype=bool)
    for a, b in runs(zero):
        if b - a >= min_gap:
            gap[a:b] = True
    return runs(~gap)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(first, end)`` index ranges where the boolean ``mask`` is true."""
    padded = np.concatenate([[False], mask, [False]])   # booleans: an int64 copy of a station-day costs 0.1 s
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))
