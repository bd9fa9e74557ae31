"""Phase-picking heads on top of the pretrained backbone, and the networks the picking trainer can train.

:class:`PickingHead` turns frame features into per-sample P/S/noise probabilities and an event-detection curve:
frame features are projected, linearly up-sampled to the sample rate, optionally concatenated with the
(normalised) waveform itself and with energy-ratio onset curves of it (:func:`onset_curves`), and refined by a few
convolutions. :class:`UNetPickingHead` instead decodes the frame features through a small convolutional U-Net
over the waveform, so the picks are timed by sample-rate convolutions that see more than a frame (chosen by
``HeadConfig.unet_channels``). :class:`BackbonePicker` = backbone + head;
:class:`PhaseNetPicker` wraps SeisBench's ``PhaseNet`` with the same interface (a baseline trained by the same
trainer on the same data).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import seisbench.models as sbm
import torch
from torch import nn
from torch.nn import functional as F

from .conv import Conv1d
from .data.windows import normalize_window
from .encoder import pad_for_stride
from .model import ModelConfig, build_model


@dataclass
class HeadConfig:
    """Attributes:
    hidden: channels of the sample-rate refinement convolutions.
    layers: refinement Conv1d layers.
    kernel: their kernel size (samples).
    use_waveform: concatenate the normalised input waveform to the up-sampled features.
    onset_windows: ``[ahead, behind]`` sample pairs of energy-ratio onset curves also given to the head
        (:func:`onset_curves`), e.g. ``[[10, 100], [50, 300]]`` (at 100 Hz: 0.1 s ahead, 1 s behind; 0.5 s,
        3 s); empty: none.
    dropout: dropout on the frame features before the head.
    unet_channels: channels of the levels of a U-Net over the waveform, from the sample rate down (e.g.
        ``[8, 16, 32]``), each level ``unet_stride`` times coarser; the frame features join at the coarsest level
        and are decoded back up through the skip connections (:class:`UNetPickingHead`; ``hidden`` is then the
        width of the projected features, ``kernel`` that of every convolution, ``layers`` unused). Empty: the
        plain head, whose only sample-rate view is the ``layers`` refinement convolutions.
    unet_stride: down-sampling factor between U-Net levels.
    unet_batchnorm: batch normalisation after every U-Net convolution (as in PhaseNet), which keeps a deep
        U-Net's levels at unit scale from the first step instead of fading with depth.
    detection: a detection output of its own, trained with ``labels.detection_weight``. Off (the default): the
        event probability is 1 − the noise probability (as in PhaseNet) and the whole loss is the picking loss;
        the detection loss had grown to three quarters of the loss and left P onsets late (model card). Files
        written before this option existed had the output (:func:`~.checkpoints.read_model_file` keeps it).
    """

    hidden: int = 32
    layers: int = 2
    kernel: int = 7
    use_waveform: bool = True
    onset_windows: list[list[int]] = field(default_factory=list)
    dropout: float = 0.1
    unet_channels: list[int] = field(default_factory=list)
    unet_stride: int = 4
    unet_batchnorm: bool = False
    detection: bool = False

    def __post_init__(self):
        if self.hidden < 0 or (self.hidden == 0 and not self.unet_channels):
            raise ValueError(f"head.hidden must be >= 1 (0 only for a U-Net head, which then reads the waveform "
                             f"alone), got {self.hidden}")
        if any(c < 1 for c in self.unet_channels) or self.unet_stride < 2:
            raise ValueError(f"head.unet_channels must be positive and head.unet_stride >= 2, got "
                             f"{self.unet_channels} and {self.unet_stride}")
        if self.unet_channels and not (self.use_waveform or self.onset_windows):
            raise ValueError("a U-Net head reads the waveform: it needs head.use_waveform or head.onset_windows")


def onset_curves(x: torch.Tensor, windows: list[list[int]], eps: float = 1e-6) -> torch.Tensor:
    """``[B, 3, N]`` (Z, N, E) → ``[B, 2·len(windows), N]``: for the vertical and the horizontal energy, the log
    ratio of the mean energy in the ``ahead`` samples from ``t`` to that in the ``behind`` samples before ``t``.

    It peaks where energy starts, whatever the amplitude, which the window-normalised waveform does not show for
    a weak P before a strong S; quartered and clipped to ±5 (an 86 dB jump) to stay of order one. Before sample
    ``ahead`` the past is the first ``ahead`` samples (a shorter one is too noisy); at the end the future is what
    remains.
    """
    n = x.shape[-1]
    energy = torch.stack([x[:, 0].double() ** 2, x[:, 1].double() ** 2 + x[:, 2].double() ** 2], 1)
    cum = F.pad(energy.cumsum(-1), (1, 0))                 # cum[..., i] = energy[..., :i].sum()
    eps = eps * energy.mean((1, 2), keepdim=True) + 1e-30   # relative, so the curves do not depend on the gain
    t = torch.arange(n, device=x.device)
    curves = []
    for ahead, behind in windows:
        hi, lo = (t + ahead).clamp_max(n), (t - behind).clamp_min(0)
        end = t.clamp(min=min(ahead, n))                   # at the start, at least ``ahead`` samples of past
        future = (cum[..., hi] - cum[..., t]) / (hi - t)
        past = (cum[..., end] - cum[..., lo]) / (end - lo)
        curves.append(0.25 * torch.log((future + eps) / (past + eps)))
    return torch.cat(curves, 1).clamp(-5, 5).to(x.dtype)


@dataclass
class PickerOutput:
    """Attributes:
    log_probs: ``[B, 3, N]`` log-probabilities of P, S, noise per sample (softmax over the 3).
    detection_logits: ``[B, 1, N]`` event-present logit per sample (``None`` if the network has none).
    """

    log_probs: torch.Tensor
    detection_logits: torch.Tensor | None

    @property
    def probs(self) -> torch.Tensor:
        """``[B, 3, N]`` probabilities of P, S, noise."""
        return self.log_probs.exp()

    @property
    def detection(self) -> torch.Tensor:
        """``[B, 1, N]`` event probability (1 − noise probability where there is no detection output)."""
        if self.detection_logits is None:
            return 1 - self.probs[:, 2:3]
        return torch.sigmoid(self.detection_logits)


def waveform_inputs(waveform: torch.Tensor, cfg: HeadConfig, dtype: torch.dtype) -> list[torch.Tensor]:
    """The sample-rate channels a head sees besides the features: the waveform and its onset curves, as ``cfg``
    asks."""
    inputs = [waveform.to(dtype)] if cfg.use_waveform else []
    if cfg.onset_windows:
        inputs.append(onset_curves(waveform, cfg.onset_windows).to(dtype))
    return inputs


def waveform_channels(cfg: HeadConfig) -> int:
    """How many channels :func:`waveform_inputs` gives."""
    return (3 if cfg.use_waveform else 0) + 2 * len(cfg.onset_windows)


def _conv(c_in: int, c_out: int, kernel: int, batchnorm: bool = False) -> nn.Sequential:
    """'Same'-padded Conv1d (+ BatchNorm) + GELU."""
    conv = Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=not batchnorm)
    return nn.Sequential(conv, *([nn.BatchNorm1d(c_out)] if batchnorm else []), nn.GELU())


class CentredDownsample(nn.Module):
    """Strided Conv1d + GELU whose output ``j`` is centred on input sample ``stride·j + (stride − 1)/2``, where
    linear up-sampling (``align_corners=False``) puts it back, and which keeps ``ceil(N / stride)`` outputs.

    With symmetric padding, output ``j`` would sit at ``stride·j`` and every level of a U-Net would be decoded
    1.5 of its samples late (7.5 samples at the sample rate over two levels of stride 4), a shift its
    convolutions would have to learn to undo. The kernel is lengthened by one if needed to centre it.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, batchnorm: bool = False):
        super().__init__()
        kernel = max(kernel, stride) + (max(kernel, stride) - stride) % 2
        self.conv = Conv1d(c_in, c_out, kernel, stride=stride, bias=not batchnorm)
        self.norm = nn.BatchNorm1d(c_out) if batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.norm(self.conv(pad_for_stride(x, self.conv.kernel_size[0], self.conv.stride[0]))))


class PickingHead(nn.Module):
    """``[B, T, D]`` frame features (+ ``[B, 3, N]`` waveform) → :class:`PickerOutput` at ``N`` samples."""

    def __init__(self, in_dim: int, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.dropout = nn.Dropout(cfg.dropout)
        self.project = nn.Linear(in_dim, cfg.hidden)
        channels = cfg.hidden + waveform_channels(cfg)
        convs = []
        for _ in range(cfg.layers):
            convs += _conv(channels, cfg.hidden, cfg.kernel)   # unpacked: parameter names as in files written
            channels = cfg.hidden
        self.refine = nn.Sequential(*convs)
        self.out = Conv1d(channels, 3 + cfg.detection, 1)  # P, S, noise logits (+ detection logit)

    def forward(self, features: torch.Tensor, waveform: torch.Tensor) -> PickerOutput:
        n = waveform.shape[-1]
        h = self.project(self.dropout(features))                               # [B, T, hidden]
        extra = waveform_inputs(waveform, self.cfg, h.dtype)
        if h.device.type == "cpu":
            # built time-major, the convolutions' channels-last layout (seiscontrast.conv): no copy of the
            # widest tensor of the network into that layout
            h = torch.cat([upsample_time_major(h, n), *(x.transpose(1, 2) for x in extra)], dim=2).transpose(1, 2)
        else:
            h = F.interpolate(h.transpose(1, 2), size=n, mode="linear", align_corners=False)   # [B, hidden, N]
            h = torch.cat([h, *extra], dim=1)
        return _output(self.out(self.refine(h)))


def upsample_time_major(h: torch.Tensor, n: int) -> torch.Tensor:
    """``[B, T, C]`` → ``[B, n, C]`` (contiguous): what ``F.interpolate(h.transpose(1, 2), size=n, mode="linear",
    align_corners=False).transpose(1, 2)`` gives, to rounding, without leaving the time-major layout.

    Where ``n`` is a multiple ``s`` of ``T`` (every picker window), output ``s·k + r`` mixes frames ``k`` and its
    neighbour with weights that depend on ``r`` only, so the whole up-sampling is one broadcast product over
    ``[B, T, s, C]``; other lengths go through ``F.interpolate``.
    """
    b, t, c = h.shape
    if n % t:
        return F.interpolate(h.transpose(1, 2), size=n, mode="linear", align_corners=False).transpose(1, 2) \
            .contiguous()
    s = n // t
    offset = [(r + 0.5) / s - 0.5 for r in range(s)]                    # source position minus k, in (-0.5, 0.5)
    half = sum(o < 0 for o in offset)                                     # these lie between frames k − 1 and k
    weight = torch.tensor([o + 1 if o < 0 else o for o in offset], dtype=h.dtype, device=h.device)[:, None]
    padded = torch.cat([h[:, :1], h, h[:, -1:]], 1)[:, :, None]          # edges: PyTorch clamps to the end frames
    early = (padded[:, :-2], padded[:, 1:-1], weight[:half])
    late = (padded[:, 1:-1], padded[:, 2:], weight[half:])
    if torch.is_grad_enabled() and h.requires_grad:
        return torch.cat([torch.lerp(*early), torch.lerp(*late)], 2).reshape(b, n, c)
    out = h.new_empty(b, t, s, c)             # at inference each half is written in place
    torch.lerp(*early, out=out[:, :, :half])
    torch.lerp(*late, out=out[:, :, half:])
    return out.reshape(b, n, c)


def _output(logits: torch.Tensor) -> PickerOutput:
    logits = logits.float()
    detection = logits[:, 3:] if logits.shape[1] > 3 else None
    return PickerOutput(log_probs=logits[:, :3].log_softmax(1), detection_logits=detection)


def upsample(x: torch.Tensor, stride: int, length: int) -> torch.Tensor:
    """Linear up-sampling by exactly ``stride``, cropped to ``length``: sample ``j`` goes back to
    ``stride·j + (stride − 1)/2``, where :class:`CentredDownsample` took it from, whatever the length (``size=``
    would stretch by ``length / len(x)`` instead)."""
    return F.interpolate(x, scale_factor=stride, mode="linear", align_corners=False)[..., :length]


class UNetPickingHead(nn.Module):
    """``[B, T, D]`` frame features + ``[B, 3, N]`` waveform → :class:`PickerOutput`, through a U-Net over the
    waveform whose coarsest level also receives the frame features.

    The plain head's picks are timed by frames 4–16 samples apart, linearly interpolated, and two short
    convolutions. Here each finer level re-reads the waveform at its own rate (skip connections) while decoding
    the context, as PhaseNet does; the wide levels are the coarse ones, which keeps it cheap. Measured on the
    CPU picker (model card, "A U-Net picking head"): much better S timing on synthetic data, not earlier P on
    real records, more false S picks; ``classify`` about 1.3× slower.
    """

    def __init__(self, in_dim: int, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        channels, k, s, bn = cfg.unet_channels, cfg.kernel, cfg.unet_stride, cfg.unet_batchnorm
        self.dropout = nn.Dropout(cfg.dropout)
        self.project = nn.Linear(in_dim, cfg.hidden)
        self.down = nn.ModuleList([_conv(waveform_channels(cfg), channels[0], k, bn)])
        self.down.extend(nn.Sequential(CentredDownsample(a, b, k, s, bn), _conv(b, b, k, bn))
                         for a, b in zip(channels, channels[1:]))
        self.bottom = _conv(cfg.hidden + channels[-1], channels[-1], k, bn)
        self.up = nn.ModuleList(_conv(b + a, a, k, bn) for a, b in zip(channels, channels[1:]))
        self.out = Conv1d(channels[0], 3 + cfg.detection, 1)

    def forward(self, features: torch.Tensor, waveform: torch.Tensor) -> PickerOutput:
        h = self.project(self.dropout(features)).transpose(1, 2)               # [B, hidden, T]
        x = torch.cat(waveform_inputs(waveform, self.cfg, h.dtype), dim=1)
        skips = []
        for down in self.down:
            x = down(x)
            skips.append(x)
        if h.shape[-1] != x.shape[-1]:      # frames at another rate than the coarsest level
            h = F.interpolate(h, size=x.shape[-1], mode="linear", align_corners=False) if h.shape[1] else \
                h.new_zeros(h.shape[0], 0, x.shape[-1])     # hidden 0: the U-Net alone, without the features
        h = self.bottom(torch.cat([h, skips.pop()], dim=1))
        for up in reversed(self.up):
            skip = skips.pop()
            h = up(torch.cat([upsample(h, self.cfg.unet_stride, skip.shape[-1]), skip], dim=1))
        return _output(self.out(h))


class BackbonePicker(nn.Module):
    """Pretrained (or randomly initialised) backbone + :class:`PickingHead`; ``[B, 3, N]`` → PickerOutput.

    ``phases`` names the probability curves before the noise curve; picking, plots and evaluation read it.
    """

    phases = ("P", "S")

    def __init__(self, model_cfg: ModelConfig, head_cfg: HeadConfig):
        super().__init__()
        self.backbone = build_model(model_cfg)
        head = UNetPickingHead if head_cfg.unet_channels else PickingHead
        self.head = head(model_cfg.context.dim, head_cfg)

    def forward(self, x: torch.Tensor) -> PickerOutput:
        x = self.backbone.normalize(x)       # once, for the backbone and the head's waveform input
        if not self.head.cfg.hidden:         # a head that reads the waveform alone: the backbone's work is unused
            return self.head(x.new_zeros(x.shape[0], 1, self.head.project.in_features), x)
        return self.head(self.backbone(x, normalized=True), x)

    def stages(self) -> dict[str, list[nn.Module]]:
        """Trainable parts from the head down: ``head``, the context network's parts (``context_*``), ``encoder``."""
        return {"head": [self.head], **self.backbone.backbone_stages()}


class PhaseNetPicker(nn.Module):
    """SeisBench ``PhaseNet`` (labels P, S, noise) behind the :class:`PickerOutput` interface."""

    phases = ("P", "S")

    def __init__(self, sampling_rate: float = 100.0):
        super().__init__()
        self.net = sbm.PhaseNet(phases="PSN", sampling_rate=sampling_rate, norm="std")

    def forward(self, x: torch.Tensor) -> PickerOutput:
        probs = self.net(normalize_window(x, "std"))
        return PickerOutput(log_probs=torch.log(probs.float().clamp_min(1e-7)), detection_logits=None)

    def stages(self) -> dict[str, list[nn.Module]]:
        """The whole network is one trainable part."""
        return {"head": [self.net]}


@dataclass
class PickerConfig:
    """Which network to train.

    Attributes:
        arch: ``seiscontrast`` (backbone + picking head) or ``phasenet`` (SeisBench PhaseNet baseline).
        model: backbone config (ignored for ``phasenet``; replaced by the pretrained model's config).
        head: picking head config.
    """

    arch: str = "seiscontrast"
    model: ModelConfig = field(default_factory=ModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)

    def __post_init__(self):
        if self.arch not in ("seiscontrast", "phasenet"):
            raise ValueError(f"picker arch must be 'seiscontrast' or 'phasenet', got {self.arch!r}")


def build_picker(cfg: PickerConfig, sampling_rate: float = 100.0) -> nn.Module:
    """The network for a :class:`PickerConfig`."""
    if cfg.arch == "phasenet":
        return PhaseNetPicker(sampling_rate)
    return BackbonePicker(cfg.model, cfg.head)


def picker_labels(cfg: PickerConfig) -> str:
    """The output curves of the picker network ``cfg`` describes: its phases, noise, detection (``"PSND"``)."""
    return "".join((PhaseNetPicker if cfg.arch == "phasenet" else BackbonePicker).phases) + "ND"
