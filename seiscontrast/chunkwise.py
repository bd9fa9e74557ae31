"""A chunkwise mLSTM kernel in plain PyTorch whose cost, backward included, grows linearly with the length.

``mlstm_kernels``' native chunkwise kernel writes each chunk's state into a slice of one preallocated tensor, so
autograd's backward copies that whole tensor once per chunk: training time grows faster than the length on CPU.
This kernel keeps the chunk states in a list and stacks them, and computes everything else for all chunks at once.

It computes exactly xlstm's stabilised parallel form (``parallel_stabilized_simple``), chunk by chunk: within a
chunk the parallel form, across chunks a recurrent state ``(C, n)`` carried with its own log-scale ``m``, so that
each row's stabiliser is the same maximum the parallel form takes over the whole past::

    h_t = sum_j D_tj (q_t . k_j / sqrt(d)) v_j / max(|sum_j D_tj q_t . k_j / sqrt(d)|, exp(-m_t))
    D_tj = exp(log F_t - log F_j + i_j - m_t),   log F_t = sum_{s<=t} log sigmoid(f_s),   m_t = max_j (...)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def mlstm_chunkwise(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, i: torch.Tensor, f: torch.Tensor,
                    chunk_size: int = 64, eps: float = 1e-6, constant_normalizer: bool = False) -> torch.Tensor:
    """mLSTM cell over a sequence: ``q, k [B, NH, S, DK]``, ``v [B, NH, S, DV]``, input and forget gate
    pre-activations ``i, f [B, NH, S]`` → ``h [B, NH, S, DV]`` (computed in float32, or float64 for float64 input;
    returned in ``v``'s dtype).

    ``constant_normalizer`` holds the normaliser and the stabiliser constant in the backward pass: the gradients
    ``mlstm_kernels``' hand-written backward computes (its Triton kernels, ``native_custbw``); by default the
    gradients are exact. Under autocast it still works in float32: bf16 products would lose the stabilised sums.
    """
    if torch.is_autocast_enabled(q.device.type):
        with torch.autocast(q.device.type, enabled=False):
            return mlstm_chunkwise(q, k, v, i, f, chunk_size, eps, constant_normalizer)
    dtype = v.dtype
    work = torch.float64 if dtype == torch.float64 else torch.float32
    q, k, v, i, f = (t.to(work) for t in (q, k, v, i, f))
    batch, heads, length, dk = q.shape
    dv = v.shape[-1]
    size = chunk_size
    pad = (-length) % size
    # values get a column of ones, so that one product gives a chunk's numerator and its denominator's sum, and
    # the key state n rides along as the last column of C
    v = torch.cat([v, v.new_ones(batch, heads, length, 1)], -1)
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        i, f = (F.pad(t, (0, pad)) for t in (i, f))
    n_chunks = (length + pad) // size
    # contiguous once: each is used by several products, which would otherwise each copy a strided view
    q = q.reshape(batch, heads, n_chunks, size, dk).contiguous()
    k = (k.reshape(batch, heads, n_chunks, size, dk) / math.sqrt(dk)).contiguous()
    v = v.view(batch, heads, n_chunks, size, dv + 1)
    gate_in = i.reshape(batch, heads, n_chunks, size)
    log_f = F.logsigmoid(f).reshape(batch, heads, n_chunks, size).cumsum(-1)   # log decay from chunk start to t

    # within each chunk: log D_tj = log F_t - log F_j + i_j (j <= t)
    causal = torch.ones(size, size, dtype=torch.bool, device=q.device).tril()
    log_d = (log_f[..., :, None] - log_f[..., None, :] + gate_in[..., None, :]).masked_fill(~causal, -math.inf)

    # across chunks: each chunk's keys and values, summed with their decay to the chunk's end (all chunks at once,
    # with a chunk-local log-scale), then carried from chunk to chunk; the loop touches only per-chunk tensors,
    # unbound once, so the backward stays linear in the number of chunks
    decay = log_f[..., -1]                                     # log decay over a whole chunk   [B, NH, NC]
    weight = decay[..., None] - log_f + gate_in               # log weight of step j in its chunk's end state
    local = weight.amax(-1)                                    # [B, NH, NC]
    kw = k * torch.exp(weight - local[..., None])[..., None]
    chunk_kv = kw.transpose(-1, -2) @ v                        # [B, NH, NC, DK, DV + 1]: C and n
    states, states_m = [], []
    c_state = q.new_zeros(batch, heads, dk, dv + 1)
    m_state = q.new_full((batch, heads), -math.inf)
    for kv_c, decay_c, local_c in zip(chunk_kv.unbind(2), decay.unbind(2), local.unbind(2)):
        states.append(c_state)
        states_m.append(m_state)
        m_new = torch.maximum(decay_c + m_state, local_c)
        c_state = (torch.exp(decay_c + m_state - m_new)[..., None, None] * c_state
                   + torch.exp(local_c - m_new)[..., None, None] * kv_c)
        m_state = m_new
    c_before = torch.stack(states, dim=2)                     # state before each chunk   [B, NH, NC, DK, DV + 1]
    log_state = log_f + torch.stack(states_m, dim=2)[..., None]   # log scale of the state at step t

    m_row = torch.maximum(log_d.amax(-1), log_state)          # the parallel form's row maximum
    if constant_normalizer:
        m_row = m_row.detach()
    scores = (q @ k.transpose(-1, -2)) * torch.exp(log_d - m_row[..., None])
    out = scores @ v + torch.exp(log_state - m_row)[..., None] * (q @ c_before)
    numerator, denominator = out[..., :dv], out[..., dv]
    normalizer = torch.maximum(denominator.abs(), torch.exp(-m_row)) + eps
    h = numerator / (normalizer.detach() if constant_normalizer else normalizer)[..., None]
    return h.reshape(batch, heads, n_chunks * size, dv)[:, :, :length].to(dtype)
