"""xLSTM U-Net context network: bidirectional mLSTM stages at decreasing frame rates with skip connections.

Layout for the default pooling ``[4, 4]`` (1024 frames in)::

    stage 0 (1024) ──────────────────────────────── skip ──┐
      └ down ×4 → stage 1 (256) ─────── skip ──┐           │
                    └ down ×4 → bottleneck (64)  up ×4 → stage 1' → up ×4 → stage 0' → out

Each stage is a :class:`BidirectionalStack`: an ``xlstm.xLSTMBlockStack`` of mLSTM blocks run forward and
another run on the time-reversed sequence, merged by a linear layer. The blocks keep xLSTM's own
initialisation. The mLSTM cell runs on chunkwise kernels (linear in length), picked per call from the tensor's
device: on CPU our plain-PyTorch kernel (:mod:`seiscontrast.chunkwise`, exact gradients, linear backward), on
CUDA ``mlstm_kernels``' Triton kernel (whose hand-written backward treats the normaliser and stabiliser as
constants); ``kernel="parallel"`` keeps xlstm's default quadratic formulation (the reference in tests and
benchmarks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from xlstm import mLSTMBlockConfig, mLSTMLayerConfig, xLSTMBlockStack, xLSTMBlockStackConfig
from xlstm.blocks.mlstm.backends import parallel_stabilized_simple
from xlstm.blocks.mlstm.cell import mLSTMCell
from xlstm.components.linear_headwise import LinearHeadwiseExpand

from .chunkwise import mlstm_chunkwise
from .conv import Conv1d
from .logs import get_logger

log = get_logger(__name__)

KERNELS = ("auto", "chunkwise", "parallel")


@dataclass
class ContextConfig:
    """Attributes:
    dim: feature width of the top stage (frames in and out have this width).
    dim_mult: width multiplier per stage, top to bottleneck (``len(pooling) + 1`` entries).
    depths: mLSTM blocks per direction in each down stage and the bottleneck (``len(pooling) + 1``);
        the up stages mirror the down stages. A stage of depth 0 has no blocks (only the pooling and the skip
        connection): ``[0, 1, 1]`` leaves the full frame rate, the most expensive stage, to the convolutions.
    pooling: down-sampling factor between stages (frames); ``[4, 4]`` → 1/16 frame rate at the bottleneck.
    num_heads: mLSTM heads.
    proj_factor: mLSTM up-projection factor.
    conv1d_kernel_size: kernel of the causal convolution inside each mLSTM layer.
    qkv_proj_blocksize: block size of xLSTM's head-wise q/k/v projections.
    dropout: dropout inside the blocks.
    bidirectional: also run every stage on the time-reversed sequence.
    kernel: ``auto``/``chunkwise`` (linear in length: ours on CPU, mlstm_kernels' Triton on CUDA) or ``parallel``
        (xlstm default, quadratic).
    chunk_size: chunk length of the chunkwise kernel (sequences are zero-padded to a multiple, then cut); CUDA's
        TFLA kernel for long sequences uses its own (``XL_CHUNK``).
    gradient_checkpointing: recompute block activations in the backward pass (saves memory).
    """

    dim: int = 256
    dim_mult: list[int] = field(default_factory=lambda: [1, 1, 1])
    depths: list[int] = field(default_factory=lambda: [1, 1, 2])
    pooling: list[int] = field(default_factory=lambda: [4, 4])
    num_heads: int = 4
    proj_factor: float = 2.0
    conv1d_kernel_size: int = 4
    qkv_proj_blocksize: int = 4
    dropout: float = 0.0
    bidirectional: bool = True
    kernel: str = "auto"
    chunk_size: int = 64
    gradient_checkpointing: bool = False

    def __post_init__(self):
        n = len(self.pooling) + 1
        if len(self.depths) != n or len(self.dim_mult) != n:
            raise ValueError(f"context depths {self.depths} and dim_mult {self.dim_mult} need len(pooling)+1 = {n} entries")
        if min(self.depths) < 0 or self.depths[-1] < 1:
            raise ValueError(f"context depths must be >= 0, with at least one block at the bottleneck, got {self.depths}")
        if self.kernel not in KERNELS:
            raise ValueError(f"context kernel must be one of {KERNELS}, got {self.kernel!r}")
        for m in self.dim_mult:
            width = self.dim * m
            if width % self.num_heads or (int(width * self.proj_factor) // self.num_heads) % self.qkv_proj_blocksize:
                raise ValueError(f"stage width {width} × proj_factor {self.proj_factor} must split into "
                                 f"{self.num_heads} heads of a multiple of qkv_proj_blocksize {self.qkv_proj_blocksize}")

    @property
    def total_pooling(self) -> int:
        """Frame down-sampling from the top stage to the bottleneck."""
        return math.prod(self.pooling)


class ChunkwiseMLSTMKernel(nn.Module):
    """Drop-in ``backend_fn`` for ``xlstm``'s ``mLSTMCell`` running chunkwise kernels (:func:`kernel_name`).

    Takes xlstm's argument layout (``[B, NH, S, DH]`` q/k/v, ``[B, NH, S, 1]`` gate pre-activations) and pads
    the sequence with neutral gates (forget = 1, input = 0) to a multiple of the chunk size, so any length works.
    """

    def __init__(self, chunk_size: int = 64, eps: float = 1e-6):
        super().__init__()
        self.chunk_size, self.eps = chunk_size, eps

    def forward(self, queries, keys, values, igate_preact, fgate_preact, **_):
        on_cuda = queries.is_cuda
        seq = queries.shape[2]
        if seq <= PARALLEL_INFERENCE_MAX and not on_cuda and not torch.is_grad_enabled():
            # the same result (to float rounding) in a handful of products: the deep U-Net stages at inference
            return parallel_stabilized_simple(queries, keys, values, igate_preact, fgate_preact, eps=self.eps)
        name = kernel_name(on_cuda, seq)
        # short sequences (deep stages, short windows) use a smaller chunk instead of padding to 64
        chunk = min(self.chunk_size, max(16, 1 << max(0, (seq - 1).bit_length())))
        if name == TRITON_XL_KERNEL:
            chunk = XL_CHUNK
        elif not on_cuda and not torch.is_grad_enabled():
            chunk = min(chunk, 32)  # CPU inference: measured ~10 % faster than 64 (no backward to amortise)
        dtype = queries.dtype
        if on_cuda and torch.is_autocast_enabled("cuda"):
            dtype = torch.get_autocast_dtype("cuda")
        args = dict(q=queries, k=keys, v=values, i=igate_preact.squeeze(-1), f=fgate_preact.squeeze(-1),
                    eps=self.eps, chunk_size=chunk, autocast_kernel_dtype=dtype)
        return run_chunkwise_kernel(name, args).to(values.dtype)


#: at CPU inference, sequences up to this many frames use the quadratic parallel form: 3-4x faster than the
#: chunkwise kernel at 8-32 frames, slower from 64 on (batches of 64 windows, 2 heads of 32; equal to 1e-5)
PARALLEL_INFERENCE_MAX = 32
#: our plain-PyTorch chunkwise kernel (:mod:`seiscontrast.chunkwise`, linear in length, backward included); other
#: names are ``mlstm_kernels`` kernels
NATIVE_KERNEL = "chunkwise--seiscontrast"
TRITON_KERNEL = "chunkwise--triton_limit_chunk"
#: TFLA (mlstm_kernels' tiled flash linear attention): chunks of :data:`XL_CHUNK` and states recomputed in the
#: backward instead of stored, for sequences of at least :data:`XL_MIN_LENGTH` frames (the base config's top stage
#: at 4096 samples); limit_chunk runs with chunks of 64 and keeps every chunk's state for the backward. The
#: crossover was not measured (no GPU was available); both kernels match ours under ``TRITON_INTERPRET=1``.
TRITON_XL_KERNEL = "chunkwise--triton_xl_chunk"
XL_CHUNK = 128
XL_MIN_LENGTH = 1024
#: why the Triton kernels cannot be used in this process (``None``: not known to be broken)
_triton_failure: str | None = None


def kernel_name(on_cuda: bool, length: int = 0) -> str:
    """The chunkwise kernel for a sequence of ``length`` frames on CUDA (Triton when usable: TFLA's xl_chunk for
    long sequences, limit_chunk otherwise) or elsewhere (ours, plain PyTorch)."""
    if not (on_cuda and triton_usable()):
        return NATIVE_KERNEL
    return TRITON_XL_KERNEL if length >= XL_MIN_LENGTH else TRITON_KERNEL


def triton_usable() -> bool:
    """Triton is importable and its kernels have not failed in this process."""
    if _triton_failure is not None:
        return False
    try:
        import triton  # noqa: F401
    except ImportError:
        _mark_triton_broken("triton is not installed")
        return False
    return True


def _mark_triton_broken(reason: str) -> None:
    global _triton_failure
    _triton_failure = reason
    log.warning("mLSTM: Triton kernels unusable (%s); using the native PyTorch kernel on CUDA, which is slower "
                "(triton 3.7.x works with torch 2.13; triton >= 3.9 removed the block pointers the kernels use)",
                reason)


def run_chunkwise_kernel(name: str, args: dict) -> torch.Tensor:
    """Chunkwise kernel ``name`` (ours, :data:`NATIVE_KERNEL`, or an ``mlstm_kernels`` one on padded input); a
    failing Triton kernel (e.g. a Triton version whose API the kernels do not match) falls back to ours, with one
    warning per process."""
    if name == NATIVE_KERNEL:   # its errors are real errors
        return mlstm_chunkwise(args["q"], args["k"], args["v"], args["i"], args["f"], args["chunk_size"], args["eps"])
    from mlstm_kernels.torch import get_mlstm_kernel
    from mlstm_kernels.torch.kernel_wrappers import wrap_chunkwise__pad_zeros

    try:
        return wrap_chunkwise__pad_zeros(mlstm_chunkwise_kernel=get_mlstm_kernel(name), **args)
    except torch.OutOfMemoryError:
        raise
    except Exception as err:
        if "triton" not in name:
            raise
        _mark_triton_broken(f"{name}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        return run_chunkwise_kernel(NATIVE_KERNEL, args)


class ParallelMLSTMKernel(nn.Module):
    """xlstm's quadratic parallel form with the causal mask made for each sequence (xlstm keeps one of a fixed
    ``context_length``, which would cap the sequence length)."""

    def forward(self, queries, keys, values, igate_preact, fgate_preact, **_):
        return parallel_stabilized_simple(queries, keys, values, igate_preact, fgate_preact)


def mlstm_stack(dim: int, depth: int, cfg: ContextConfig) -> xLSTMBlockStack:
    """An ``xLSTMBlockStack`` of ``depth`` mLSTM blocks with the configured kernel (any sequence length)."""
    stack = xLSTMBlockStack(xLSTMBlockStackConfig(
        mlstm_block=mLSTMBlockConfig(mlstm=mLSTMLayerConfig(
            conv1d_kernel_size=cfg.conv1d_kernel_size, qkv_proj_blocksize=cfg.qkv_proj_blocksize,
            num_heads=cfg.num_heads, proj_factor=cfg.proj_factor)),
        context_length=1,   # the size of xlstm's stored causal mask, which neither kernel below uses
        num_blocks=depth, embedding_dim=dim, dropout=cfg.dropout, add_post_blocks_norm=True,
    ))
    for block in stack.blocks:
        block.xlstm.mlstm_cell.backend_fn = (ParallelMLSTMKernel() if cfg.kernel == "parallel"
                                             else ChunkwiseMLSTMKernel(cfg.chunk_size))
    for module in stack.modules():   # faster equivalents with the same parameters and state-dict keys
        if isinstance(module, LinearHeadwiseExpand):
            module.__class__ = BlockDiagonalHeadwise
        elif isinstance(module, mLSTMCell):
            module.__class__ = SplitGateMLSTMCell
    return stack


class BlockDiagonalHeadwise(LinearHeadwiseExpand):
    """xlstm's head-wise q/k/v projection, computed as one dense block-diagonal matmul where that is faster.

    xlstm's ``einsum`` over many tiny (e.g. 4 x 4) head blocks becomes a slow batched matmul on CPU. The dense
    product does ``width / block`` times the arithmetic but is faster at inference, and in training up to
    :attr:`DENSE_TRAINING_WIDTH` (measured forward + backward: 2x at width 64, equal at 128, 1.5x slower at 512).
    Same weights, same result up to float rounding.
    """

    DENSE_TRAINING_WIDTH = 128

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and self.config.in_features > self.DENSE_TRAINING_WIDTH:
            return super().forward(x)
        y = x @ torch.block_diag(*self.weight).T.to(x.dtype)
        return y + self.bias if self.bias is not None else y


class SplitGateMLSTMCell(mLSTMCell):
    """xlstm's mLSTM cell with its input and forget gates computed as one product per q, k and v.

    xlstm concatenates ``[q, k, v]`` and applies two ``3·H → heads`` linear layers; on CPU the concatenation and
    the backward of those narrow products (a few output columns) dominate the cell at wide models (base config:
    140 ms → 55 ms per cell, forward + backward). Same parameters, same result up to float rounding.
    """

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, **kwargs) -> torch.Tensor:
        batch, length, width = q.shape
        heads = self.config.num_heads
        weight = torch.cat([self.igate.weight, self.fgate.weight])     # [2 heads, 3 width]
        w_q, w_k, w_v = weight.split(width, dim=1)
        gates = F.linear(q, w_q) + F.linear(k, w_k) + F.linear(v, w_v, torch.cat([self.igate.bias, self.fgate.bias]))
        igate, fgate = gates.transpose(1, 2)[..., None].split(heads, dim=1)   # [B, NH, S, 1] each
        q, k, v = (t.view(batch, length, heads, -1).transpose(1, 2) for t in (q, k, v))
        h = self.backend_fn(queries=q, keys=k, values=v, igate_preact=igate, fgate_preact=fgate)
        return self.outnorm(h).transpose(1, 2).reshape(batch, length, -1)


class BidirectionalStack(nn.Module):
    """Forward and time-reversed ``xLSTMBlockStack`` merged by a linear layer; ``[B, T, D]`` in and out."""

    def __init__(self, dim: int, depth: int, cfg: ContextConfig):
        super().__init__()
        self.checkpointing = cfg.gradient_checkpointing
        self.forward_stack = mlstm_stack(dim, depth, cfg) if depth else None
        self.backward_stack = mlstm_stack(dim, depth, cfg) if depth and cfg.bidirectional else None
        self.merge = nn.Linear(2 * dim, dim) if depth and cfg.bidirectional else None

    def _run(self, stack: xLSTMBlockStack, x: torch.Tensor) -> torch.Tensor:
        for block in stack.blocks:
            x = checkpoint(block, x, use_reentrant=False) if self.checkpointing and self.training else block(x)
        return stack.post_blocks_norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.forward_stack is None:   # depth 0: the stage passes its input on
            return x
        fwd = self._run(self.forward_stack, x)
        if self.backward_stack is None:
            return fwd
        bwd = self._run(self.backward_stack, x.flip(1)).flip(1)
        return self.merge(torch.cat([fwd, bwd], dim=-1))


class XLSTMUNet(nn.Module):
    """The context network; ``[batch, frames, dim]`` → ``[batch, frames, dim]`` for any number of frames.

    Frames are zero-padded at the end to a multiple of the total pooling and cut back afterwards.
    """

    def __init__(self, cfg: ContextConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.dim * m for m in cfg.dim_mult]
        self.down = nn.ModuleList(BidirectionalStack(w, d, cfg) for w, d in zip(widths[:-1], cfg.depths[:-1]))
        self.pools = nn.ModuleList(Conv1d(widths[i], widths[i + 1], p, stride=p)
                                   for i, p in enumerate(cfg.pooling))
        self.bottleneck = BidirectionalStack(widths[-1], cfg.depths[-1], cfg)
        self.unpools = nn.ModuleList(nn.ConvTranspose1d(widths[i + 1], widths[i], p, stride=p)
                                     for i, p in enumerate(cfg.pooling))
        self.skip_merge = nn.ModuleList(nn.Linear(2 * w, w) for w in widths[:-1])
        self.up = nn.ModuleList(BidirectionalStack(w, d, cfg) for w, d in zip(widths[:-1], cfg.depths[:-1]))

    def stages(self) -> dict[str, list[nn.Module]]:
        """Parameter groups by U-Net part, top (head side) to bottom, for gradual unfreezing."""
        return {"up": [*self.up, *self.unpools, *self.skip_merge], "bottleneck": [self.bottleneck],
                "down": [*self.down, *self.pools]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[1]
        pad = (-frames) % self.cfg.total_pooling
        x = nn.functional.pad(x, (0, 0, 0, pad))
        skips = []
        for stage, pool in zip(self.down, self.pools):
            x = stage(x)
            skips.append(x)
            x = pool(x.transpose(1, 2)).transpose(1, 2)
        x = self.bottleneck(x)
        for i in reversed(range(len(self.up))):
            x = self.unpools[i](x.transpose(1, 2)).transpose(1, 2)
            x = self.skip_merge[i](torch.cat([x, skips[i]], dim=-1))
            x = self.up[i](x)
        return x[:, :frames]
