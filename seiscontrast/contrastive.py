"""InfoNCE over masked frames (wav2vec 2.0): the context output at a masked frame must pick its own quantized
target among ``num_negatives`` distractors drawn from the other masked frames of the same window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass
class ContrastiveConfig:
    """Attributes:
    temperature: τ dividing the cosine similarities (0.1).
    num_negatives: distractors per masked frame (100), sampled with replacement, never the positive.
    negative_pool: a window with more masked frames than this draws all its negatives from a random subset of
        this many of them (the same subset for every frame of the window), so the similarities cost
        ``frames × pool`` instead of ``frames²`` and a step stays linear in the window length. 1024 leaves every
        4096-sample window of the shipped configs as it was (at most ~560 of their 1024 frames are masked);
        ``null`` uses all masked frames at any length.
    """

    temperature: float = 0.1
    num_negatives: int = 100
    negative_pool: int | None = 1024

    def __post_init__(self):
        if self.negative_pool is not None and self.negative_pool < 2:
            raise ValueError(f"negative_pool must be at least 2 frames (or null for all), got {self.negative_pool}")


def _negative_ranks(mask: torch.Tensor, num_negatives: int, generator: torch.Generator | None = None,
                    pool_size: int | None = None):
    """Masked frames as ``(flat index, window, rank in window)``, ``[M, K]`` negative ranks in the window, the first
    rank of each window, and the negative pools.

    The pools are ``None`` when no window has more than ``pool_size`` masked frames (negatives come from all
    other masked frames). Otherwise ``(pool, slot)``: ``pool[w]`` holds ``pool_size`` ranks of window ``w`` (a
    random subset where the window has more masked frames, ranks ``0…`` otherwise) and ``slot`` ``[M, K]`` the
    position of each negative in its window's pool.
    """
    b, t = mask.shape
    positives = mask.flatten().nonzero().squeeze(1)                      # [M], sorted by window then frame
    counts = mask.sum(1)                                                 # [b]
    offsets = torch.cumsum(counts, 0) - counts                           # first rank of each window
    window = positives // t
    rank = torch.arange(len(positives), device=mask.device) - offsets[window]
    n = counts[window]                                                   # masked frames in that window
    big = counts > pool_size if pool_size is not None else None
    pooled = big is not None and bool(big.any())
    if pooled:
        pool = torch.arange(pool_size, device=mask.device).repeat(b, 1)
        device = generator.device if generator is not None else mask.device
        for w in big.nonzero().squeeze(1).tolist():
            pool[w] = torch.randperm(int(counts[w]), generator=generator, device=device).to(mask.device)[:pool_size]
        inverse = torch.full((b, int(counts.max())), pool_size, dtype=torch.long, device=mask.device)
        inverse.scatter_(1, pool, torch.arange(pool_size, device=mask.device).expand(b, -1).contiguous())
        own = inverse[window, rank]                                      # the frame's own slot, pool_size if none
        n = torch.where(big[window], pool_size + (own == pool_size).long(), n)
    else:
        own = rank
    u = torch.rand(len(positives), num_negatives, device=mask.device, generator=generator)
    slot = (u * (n[:, None] - 1).clamp_min(1)).long()
    slot = slot + (slot >= own[:, None]).long()                          # skip the positive's own slot
    slot = torch.where(n[:, None] > 1, slot, own[:, None].expand_as(slot))
    if not pooled:
        return positives, window, rank, slot, offsets, None
    # every slot is inside its pool: a pooled window draws below pool_size, any other below its own count
    return positives, window, rank, pool[window[:, None], slot], offsets, (pool, slot)


def sample_negatives(mask: torch.Tensor, num_negatives: int, generator: torch.Generator | None = None,
                     pool_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of negatives for every masked frame, on the mask's device.

    Args:
        mask: ``[batch, frames]`` boolean, ``True`` at masked frames.

    Returns:
        ``(positives, negatives)``: flat indices into ``batch * frames`` of the ``M`` masked frames ``[M]`` and of
        their negatives ``[M, num_negatives]``, each drawn uniformly from the *other* masked frames of the same
        window (from a random pool of ``pool_size`` of them where the window has more; see
        :class:`ContrastiveConfig`). A window with a single masked frame gets the frame itself (its logits are
        excluded).
    """
    positives, window, _, neg_rank, offsets, _ = _negative_ranks(mask, num_negatives, generator, pool_size)
    return positives, positives[offsets[window][:, None] + neg_rank]


@dataclass
class ContrastiveOutput:
    """InfoNCE result: mean loss, accuracy of the positive scoring highest, and the logits."""

    loss: torch.Tensor          # mean InfoNCE over masked frames
    accuracy: torch.Tensor      # share of masked frames whose positive scores highest
    logits: torch.Tensor        # [M, 1 + num_negatives], positive first


def info_nce(context: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, cfg: ContrastiveConfig,
             codes: torch.Tensor | None = None, generator: torch.Generator | None = None) -> ContrastiveOutput:
    """InfoNCE loss at masked frames.

    Args:
        context: ``[batch, frames, d]`` projected context outputs.
        targets: ``[batch, frames, d]`` projected quantized targets.
        mask: ``[batch, frames]`` masked frames.
        codes: ``[batch, frames, groups]`` code indices of the targets; a negative with the same codes as the
            positive is the same target, not a distractor, and is excluded. Without codes, exactly equal target
            vectors are excluded.

    Similarities are computed once per window between all its masked frames (``[B, n, n]``, or ``[B, n, pool]``
    with a negative pool) and the sampled logits gathered from there, instead of materialising ``[M, 1 + K, d]``
    candidate tensors.
    """
    b, t, d = context.shape
    positives, window, rank, neg_rank, offsets, pools = _negative_ranks(mask, cfg.num_negatives, generator,
                                                                        cfg.negative_pool)
    n_max = int(mask.sum(1).max().item()) if len(positives) else 0
    c = context.new_zeros(b, n_max, d, dtype=torch.float32)
    q = context.new_zeros(b, n_max, d, dtype=torch.float32)
    # τ divides the [n, d] context vectors, not the [n, n] similarities: one pass fewer over a tensor that grows
    # with the square of the length
    c[window, rank] = F.normalize(context.reshape(-1, d)[positives].float(), dim=-1) / cfg.temperature
    q[window, rank] = F.normalize(targets.reshape(-1, d)[positives].float(), dim=-1)
    if pools is None:
        sim = torch.bmm(c, q.transpose(1, 2))                            # [B, n, n] logits
        pos_logit = sim[window, rank, rank]
        neg_logit = sim[window[:, None], rank[:, None], neg_rank]
    else:
        pool, slot = pools
        pool_q = q[torch.arange(b, device=q.device)[:, None], pool]      # [B, pool, d]
        sim = torch.bmm(c, pool_q.transpose(1, 2))                       # [B, n, pool] logits
        pos_logit = (c[window, rank] * q[window, rank]).sum(-1)
        neg_logit = sim[window[:, None], rank[:, None], slot]
    same = neg_rank == rank[:, None]
    if codes is not None:
        flat = codes.reshape(b * t, -1)
        same |= (flat[positives[offsets[window][:, None] + neg_rank]] == flat[positives][:, None]).all(-1)
    else:  # compares [M, K, d] vectors: fine for tests, the model always passes codes
        same |= (q[window[:, None], neg_rank] == q[window, rank][:, None]).all(-1)
    logits = torch.cat([pos_logit[:, None], neg_logit.masked_fill(same, float("-inf"))], dim=1)
    loss = F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=logits.device))
    accuracy = (logits.argmax(1) == 0).float().mean() if len(logits) else logits.new_zeros(())
    return ContrastiveOutput(loss=loss, accuracy=accuracy, logits=logits)
