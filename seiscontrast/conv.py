"""A ``Conv1d`` that runs channels-last on the CPU.

PyTorch's CPU convolution (oneDNN) is much slower on ``[batch, channels, time]`` tensors with few channels than on
the same data laid out time-major: for the picking head's 19 → 16 channel, 7-tap convolution over 64 windows of
4096 samples, 15–24 ms against 2.5 ms on 2 threads (README "Benchmarks"; the whole network gains 7–9 %,
``python benchmarks/picker_cost.py --layouts``). This module
hands the convolution to ``conv2d`` on a ``[batch, channels, 1, time]`` view in channels-last memory format, which
is the same arithmetic. Inputs that are transposed ``[batch, time, channels]`` tensors, as the encoder's and the
context network's are, need no copy at all. Parameters and their names are those of ``nn.Conv1d``, so saved
weights load either way; on other devices it is ``nn.Conv1d``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero or no padding, numeric ``padding``) computed channels-last on the CPU."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu" or self.padding_mode != "zeros" or isinstance(self.padding, str) or x.ndim != 3:
            return super().forward(x)
        x = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
        y = F.conv2d(x, self.weight.unsqueeze(2), self.bias, (1, self.stride[0]), (0, self.padding[0]),
                     (1, self.dilation[0]), self.groups)
        return y.squeeze(2)
