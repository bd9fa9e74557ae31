"""Masking, encoder, context network, quantizer and InfoNCE on tiny tensors."""

import logging
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from seiscontrast.context import ContextConfig, XLSTMUNet
from seiscontrast.contrastive import ContrastiveConfig, info_nce, sample_negatives
from seiscontrast.conv import Conv1d
from seiscontrast.encoder import ConvEncoderConfig, ConvFeatureEncoder
from seiscontrast.heads import (
    BackbonePicker,
    CentredDownsample,
    HeadConfig,
    PickingHead,
    UNetPickingHead,
    onset_curves,
    upsample,
)
from seiscontrast.masking import MaskingConfig, compute_span_mask
from seiscontrast.model import ModelConfig, build_model
from seiscontrast.quantizer import GumbelVectorQuantizer, QuantizerConfig


@pytest.mark.parametrize("c_in,c_out,kernel,stride,padding,groups",
                         [(19, 16, 7, 1, 3, 1), (3, 32, 32, 4, 0, 1), (32, 32, 4, 4, 0, 1), (64, 64, 4, 1, 3, 64),
                          (16, 3, 1, 1, 0, 1)])
def test_channels_last_conv1d_is_nn_conv1d(c_in, c_out, kernel, stride, padding, groups):
    """Same outputs and gradients as ``nn.Conv1d`` with the same weights, on channels-first and on transposed
    ``[batch, time, channels]`` inputs; the parameters keep ``nn.Conv1d``'s names."""
    torch.manual_seed(0)
    ours = Conv1d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups)
    ref = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=padding, groups=groups)
    ref.load_state_dict(ours.state_dict())
    for x in (torch.randn(3, c_in, 301), torch.randn(3, 301, c_in).transpose(1, 2)):
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, y_ref = ours(x1), ref(x2)
        assert y.shape == y_ref.shape
        torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
        grad = torch.randn_like(y)
        y.backward(grad)
        y_ref.backward(grad)
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=1e-4, atol=1e-4)
        ours.zero_grad()
        ref.zero_grad()
    assert y.is_contiguous(memory_format=torch.contiguous_format) is False   # time-major: no copy made
    assert [n for n, _ in ours.named_parameters()] == ["weight", "bias"]


def test_mask_fraction_and_span_length():
    g = torch.Generator().manual_seed(0)
    mask = compute_span_mask(64, 1024, MaskingConfig(0.65, 10), generator=g)
    frac = mask.float().mean().item()
    # spans of 10 starting with probability 0.065 per frame, overlaps allowed: 1 - exp(-0.65) ≈ 0.478
    assert abs(frac - (1 - math.exp(-0.65))) < 0.03
    # every run of masked frames is at least one span long
    for row in mask[:8]:
        padded = torch.cat([torch.tensor([False]), row, torch.tensor([False])]).int()
        starts = (padded[1:] - padded[:-1] == 1).nonzero().flatten()
        ends = (padded[1:] - padded[:-1] == -1).nonzero().flatten()
        assert ((ends - starts) >= 10).all()


def test_mask_respects_padding_and_minimum():
    lengths = torch.tensor([100, 40, 12])
    mask = compute_span_mask(3, 100, MaskingConfig(0.65, 10, min_masks=2), lengths=lengths)
    assert not mask[1, 40:].any() and not mask[2, 12:].any()
    assert (mask.sum(1) >= 10).all()


def test_encoder_frame_rate():
    enc = ConvFeatureEncoder(ConvEncoderConfig())
    assert enc.cfg.hop == 4
    for n in (4096, 4095, 100):
        assert enc(torch.randn(1, 3, n)).shape == (1, enc.frames(n), 256)
    assert enc.frames(4096) == 1024
    with pytest.raises(ValueError, match="expected input"):
        enc(torch.randn(1, 2, 100))


@pytest.mark.parametrize("frames", [1000, 7, 130, 1500])   # any length: no stored causal mask caps it
def test_chunkwise_matches_parallel_kernel(frames):
    torch.manual_seed(0)
    cfg = dict(dim=32, num_heads=2, depths=[1, 1, 1])
    chunk = XLSTMUNet(ContextConfig(**cfg, kernel="chunkwise")).eval()
    par = XLSTMUNet(ContextConfig(**cfg, kernel="parallel")).eval()
    par.load_state_dict(chunk.state_dict())
    x = torch.randn(2, frames, 32)
    with torch.no_grad():
        a, b = chunk(x), par(x)
    assert a.shape == (2, frames, 32)
    torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-3)


@pytest.mark.parametrize("frames", [8, 32, 33])
def test_short_sequences_at_cpu_inference_take_the_parallel_form(frames, monkeypatch):
    """Up to ``PARALLEL_INFERENCE_MAX`` frames without gradients the kernel is xlstm's parallel form (faster
    there); its result is the chunkwise one, which training (with gradients) and longer sequences keep."""
    from xlstm.blocks.mlstm import backends

    import seiscontrast.context as ctx

    calls = []
    real = ctx.parallel_stabilized_simple
    monkeypatch.setattr(ctx, "parallel_stabilized_simple", lambda *a, **k: calls.append(1) or real(*a, **k))
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, frames, 16, generator=g) for _ in range(3))
    i, f = torch.randn(3, 2, frames, 1, generator=g), torch.randn(3, 2, frames, 1, generator=g) + 3
    kernel = ctx.ChunkwiseMLSTMKernel()
    trained = kernel(q, k, v, i, f)                     # gradients enabled: the chunkwise kernel
    assert not calls
    with torch.inference_mode():
        inferred = kernel(q, k, v, i, f)
    assert len(calls) == (frames <= ctx.PARALLEL_INFERENCE_MAX)
    torch.testing.assert_close(inferred, trained.detach(), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(inferred, backends.parallel_stabilized_simple(q, k, v, i, f), atol=1e-5, rtol=1e-4)


def test_inference_projection_matches_training_path():
    """Without gradients the head-wise q/k/v projections run as one block-diagonal matmul: same result."""
    torch.manual_seed(0)
    net = XLSTMUNet(ContextConfig(dim=32, num_heads=2, depths=[1, 1, 1])).eval()
    x = torch.randn(2, 64, 32)
    with torch.no_grad():
        fast = net(x)
    torch.testing.assert_close(fast, net(x).detach(), atol=1e-5, rtol=1e-4)


def test_context_keeps_xlstm_gate_initialisation():
    net = XLSTMUNet(ContextConfig(dim=32, num_heads=2))
    cell = net.bottleneck.forward_stack.blocks[0].xlstm.mlstm_cell
    assert torch.all(cell.fgate.weight == 0) and cell.fgate.bias.min() >= 3.0 - 1e-6  # xLSTM's forget-gate init


def test_quantizer_shapes_gradients_perplexity():
    torch.manual_seed(0)
    q = GumbelVectorQuantizer(16, QuantizerConfig(groups=2, codes=320, dim=32))
    x = torch.randn(4, 50, 16, requires_grad=True)
    out = q(x)
    assert out.quantized.shape == (4, 50, 32) and out.codes.shape == (4, 50, 2)
    assert 2 <= out.prob_perplexity.item() <= 640 and 2 <= out.code_perplexity.item() <= 640
    assert 0 <= out.diversity_loss.item() < 1
    # hard one-hot forward, but gradients reach the input through the straight-through estimator
    (out.quantized.sum() + out.diversity_loss).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    # each group's slice is exactly one codebook row
    g0 = out.quantized[0, 0, :16]
    assert torch.isclose(q.codebook[0], g0).all(-1).any()


def test_quantizer_with_a_mask_quantizes_the_masked_frames_only():
    """Masked frames get the codes and vectors they get without a mask; the others zeros and code -1, and the
    statistics are those of the masked frames."""
    torch.manual_seed(0)
    q = GumbelVectorQuantizer(16, QuantizerConfig(groups=2, codes=320, dim=32)).eval()   # arg-max: deterministic
    x = torch.randn(3, 40, 16)
    mask = torch.rand(3, 40) < 0.5
    full, part = q(x), q(x, mask)
    torch.testing.assert_close(part.quantized[mask], full.quantized[mask])
    assert torch.equal(part.codes[mask], full.codes[mask])
    assert (part.quantized[~mask] == 0).all() and (part.codes[~mask] == -1).all()
    only = q(x[mask][None])
    torch.testing.assert_close(part.prob_perplexity, only.prob_perplexity)
    torch.testing.assert_close(part.code_perplexity, only.code_perplexity)
    # in training the straight-through gradients reach the masked frames' features and no others
    q.train()
    x.requires_grad_(True)
    q(x, mask).quantized.square().sum().backward()
    assert (x.grad[~mask] == 0).all() and (x.grad[mask].abs().sum(-1) > 0).all()


def test_quantizer_selection_gradient_scales_the_straight_through_path():
    """The same codes are drawn whatever the share; the gradient that reaches the features through the code
    choice is scaled by it (0: none)."""
    x = torch.randn(4, 30, 16)
    grads, codes = {}, {}
    for share in (1.0, 0.3, 0.0):
        torch.manual_seed(0)
        q = GumbelVectorQuantizer(16, QuantizerConfig(groups=2, codes=32, dim=8, selection_gradient=share))
        xi = x.clone().requires_grad_(True)
        out = q(xi)
        out.quantized.square().sum().backward()
        grads[share], codes[share] = xi.grad, out.codes
    assert torch.equal(codes[1.0], codes[0.3]) and torch.equal(codes[1.0], codes[0.0])
    assert (grads[0.0] == 0).all() and grads[1.0].abs().sum() > 0
    torch.testing.assert_close(grads[0.3], 0.3 * grads[1.0], atol=1e-6, rtol=1e-4)
    with pytest.raises(ValueError, match="selection_gradient"):
        QuantizerConfig(selection_gradient=1.5)


def test_quantizer_entropy_terms_of_the_diversity_loss():
    """Frame and batch entropy shares are added to wav2vec 2.0's term with their weights; both are 0 by default."""
    x = torch.randn(200, 16)
    torch.manual_seed(0)
    base = GumbelVectorQuantizer(16, QuantizerConfig(groups=2, codes=32, dim=8)).eval()
    weighted = GumbelVectorQuantizer(16, QuantizerConfig(groups=2, codes=32, dim=8, frame_entropy_weight=0.5,
                                                         batch_entropy_weight=2.0)).eval()
    weighted.load_state_dict(base.state_dict())
    probs = base.logits(x).view(-1, 2, 32).softmax(-1)
    avg = probs.mean(0)
    frame = -(probs * probs.log()).sum(-1).mean() / math.log(32)
    batch = -(avg * avg.log()).sum(-1).mean() / math.log(32)
    expected = base(x[None]).diversity_loss + 0.5 * frame + 2.0 * (1 - batch)
    torch.testing.assert_close(weighted(x[None]).diversity_loss, expected, atol=1e-5, rtol=1e-5)
    # uniform code use in every frame: the batch term is 0 and the frame term 1
    flat = GumbelVectorQuantizer(16, QuantizerConfig(groups=2, codes=32, dim=8, frame_entropy_weight=1.0,
                                                     batch_entropy_weight=1.0)).eval()
    nn.init.zeros_(flat.logits.weight)
    torch.testing.assert_close(flat(x[None]).diversity_loss, torch.tensor(1.0), atol=1e-5, rtol=0)


def test_quantizer_temperature_anneals():
    cfg = QuantizerConfig()
    assert cfg.temperature(0) == pytest.approx(2.0) and cfg.temperature(1) == pytest.approx(0.5)
    assert cfg.temperature(0.5) == pytest.approx(1.0)


def test_negatives_never_the_positive_and_same_window():
    torch.manual_seed(0)
    mask = compute_span_mask(6, 200, MaskingConfig())
    pos, neg = sample_negatives(mask, 100)
    assert neg.shape == (mask.sum().item(), 100)
    assert not (neg == pos[:, None]).any()
    assert ((neg // 200) == (pos // 200)[:, None]).all()
    assert mask.flatten()[neg].all()


def _info_nce_by_hand(c, q, pos, neg, tau):
    """InfoNCE frame by frame from sampled indices: cosine similarities / τ, the positive first."""
    cf, qf = c.reshape(-1, c.shape[-1]), q.reshape(-1, q.shape[-1])
    losses = []
    for i, p in enumerate(pos):
        sims = [F.cosine_similarity(cf[p], qf[p], dim=0) / tau]
        sims += [F.cosine_similarity(cf[p], qf[n], dim=0) / tau for n in neg[i]]
        losses.append(-torch.log_softmax(torch.stack(sims), 0)[0])
    return torch.stack(losses).mean()


def test_info_nce_matches_hand_computation():
    torch.manual_seed(1)
    b, t, d = 2, 12, 5
    mask = torch.zeros(b, t, dtype=torch.bool)
    mask[0, 2:7] = True
    mask[1, 0:4] = True
    c, q = torch.randn(b, t, d), torch.randn(b, t, d)
    cfg = ContrastiveConfig(temperature=0.1, num_negatives=3)
    out = info_nce(c, q, mask, cfg, generator=torch.Generator().manual_seed(5))
    pos, neg = sample_negatives(mask, 3, torch.Generator().manual_seed(5))
    torch.testing.assert_close(out.loss, _info_nce_by_hand(c, q, pos, neg, 0.1), atol=1e-5, rtol=1e-5)


def test_info_nce_excludes_negatives_equal_to_positive():
    mask = torch.ones(1, 6, dtype=torch.bool)
    q = torch.randn(1, 6, 4)
    q[0, 3] = q[0, 1]                        # frames 1 and 3 have the same target
    codes = torch.arange(6).view(1, 6, 1).clone()
    codes[0, 3] = codes[0, 1]
    out = info_nce(torch.randn(1, 6, 4), q, mask, ContrastiveConfig(num_negatives=50), codes=codes)
    pos, neg = sample_negatives(mask, 50)
    row = out.logits[1]                      # positive frame 1: negatives pointing at frame 3 are -inf
    assert torch.isinf(row[1:]).any() and torch.isfinite(row[0])
    vec = info_nce(torch.randn(1, 6, 4), q, mask, ContrastiveConfig(num_negatives=50))
    assert torch.isinf(vec.logits[1, 1:]).any()


def test_a_stage_of_depth_zero_has_no_blocks_and_passes_its_frames_on():
    cfg = ContextConfig(dim=16, num_heads=2, depths=[0, 1, 1])
    net = XLSTMUNet(cfg)
    assert not list(net.down[0].parameters()) and not list(net.up[0].parameters())
    x = torch.randn(2, 70, 16, requires_grad=True)
    y = net(x)
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0 and all(p.grad is not None for p in net.bottleneck.parameters())
    assert sum(p.numel() for p in net.parameters()) < sum(
        p.numel() for p in XLSTMUNet(ContextConfig(dim=16, num_heads=2, depths=[1, 1, 1])).parameters())
    with pytest.raises(ValueError, match="bottleneck"):
        ContextConfig(dim=16, num_heads=2, depths=[1, 1, 0])


def test_model_forward_shapes_any_length():
    cfg = ModelConfig(encoder=ConvEncoderConfig(channels=[16, 16]),
                      context=ContextConfig(dim=16, num_heads=2, depths=[1, 1, 1]),
                      quantizer=QuantizerConfig(dim=16), final_dim=16)
    model = build_model(cfg)
    for n in (4096, 3001, 600):
        assert model(torch.randn(2, 3, n)).shape == (2, -(-n // 4), 16)
    out = model.pretrain_forward(torch.randn(2, 3, 4096))
    assert out.context.shape == out.targets.shape == (2, 1024, 16)
    assert 0.35 < out.mask.float().mean() < 0.6
    zeros = model(torch.zeros(1, 3, 512))     # all-zero input must not produce NaN
    assert torch.isfinite(zeros).all()


def test_unusable_triton_falls_back_to_native_with_one_warning(monkeypatch):
    """A Triton kernel that fails (here: Triton kernels on CPU tensors, as a Triton whose API the kernels do not
    match fails on a GPU) gives the native kernel's result and one warning, not a crash."""
    from seiscontrast import context

    monkeypatch.setattr(context, "_triton_failure", None)
    torch.manual_seed(0)
    b, h, s, d = 1, 2, 64, 8
    args = dict(q=torch.randn(b, h, s, d), k=torch.randn(b, h, s, d), v=torch.randn(b, h, s, d),
                i=torch.randn(b, h, s), f=torch.randn(b, h, s) + 3, eps=1e-6, chunk_size=32,
                autocast_kernel_dtype=torch.float32)
    native = context.run_chunkwise_kernel(context.NATIVE_KERNEL, args)
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # on the module's own logger: independent of how the CLI set up logging
    context.log.addHandler(handler)
    try:
        out = context.run_chunkwise_kernel(context.TRITON_KERNEL, args)
        assert not context.triton_usable()  # the forward pass asks this before choosing Triton again
    finally:
        context.log.removeHandler(handler)
    torch.testing.assert_close(out, native)
    warnings = [r for r in records if "Triton kernels unusable" in r.getMessage()]
    assert len(warnings) == 1 and "triton_limit_chunk" in warnings[0].getMessage()
    with pytest.raises(RuntimeError):  # errors of the native kernel itself are not hidden
        context.run_chunkwise_kernel(context.NATIVE_KERNEL, {**args, "q": args["q"][..., :4]})


def test_cuda_kernel_choice_takes_tfla_for_long_sequences(monkeypatch):
    from seiscontrast import context

    monkeypatch.setattr(context, "triton_usable", lambda: True)
    assert context.kernel_name(True, context.XL_MIN_LENGTH) == context.TRITON_XL_KERNEL
    assert context.kernel_name(True, context.XL_MIN_LENGTH - 1) == context.TRITON_KERNEL
    assert context.kernel_name(False, 10 * context.XL_MIN_LENGTH) == context.NATIVE_KERNEL
    monkeypatch.setattr(context, "triton_usable", lambda: False)
    assert context.kernel_name(True, 10 * context.XL_MIN_LENGTH) == context.NATIVE_KERNEL


def test_transformer_context_is_a_drop_in_context_network():
    from seiscontrast.transformer_context import TransformerConfig, TransformerContext

    net = TransformerContext(16, TransformerConfig(layers=3, num_heads=2, pos_conv_kernel=8, pos_conv_groups=2)).eval()
    for frames in (1, 37, 256):
        assert net(torch.randn(2, frames, 16)).shape == (2, frames, 16)
    stages = net.stages()
    assert list(stages) == ["layer3", "layer2", "layer1"]    # head side first, as the schedules expect
    in_stages = [id(p) for ms in stages.values() for m in ms for p in m.parameters()]
    assert sorted(in_stages) == sorted(id(p) for p in net.parameters())   # every parameter in exactly one part
    with pytest.raises(ValueError, match="divisible"):
        TransformerContext(10, TransformerConfig(num_heads=4))


def test_model_config_selects_the_context_network():
    from seiscontrast.config import load_config
    from seiscontrast.pretrain import PretrainConfig
    from seiscontrast.transformer_context import TransformerContext

    tiny = ["model.encoder.channels=[16,16]", "model.context.dim=16", "model.quantizer.dim=16", "model.final_dim=16"]
    xl = build_model(load_config(PretrainConfig, None, [*tiny, "model.context.num_heads=2"]).model)
    tr = build_model(load_config(PretrainConfig, None, [*tiny, "model.transformer.layers=2",
                                                        "model.transformer.num_heads=2"]).model)
    assert isinstance(xl.context, XLSTMUNet) and isinstance(tr.context, TransformerContext)
    assert list(tr.backbone_stages()) == ["context_layer2", "context_layer1", "encoder"]
    out = tr.pretrain_forward(torch.randn(2, 3, 1024))
    assert out.context.shape == out.targets.shape == (2, 1024 // tr.hop, 16)


@pytest.mark.parametrize("length,chunk", [(100, 16), (256, 64), (7, 32)])
def test_our_chunkwise_kernel_is_the_parallel_form_exactly(length, chunk):
    """Outputs and gradients of seiscontrast.chunkwise equal autograd through xlstm's parallel form (float64)."""
    from xlstm.blocks.mlstm.backends import parallel_stabilized_simple

    from seiscontrast.chunkwise import mlstm_chunkwise

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, length, 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    i, f = (3 * torch.randn(2, 3, length, dtype=torch.float64, requires_grad=True) for _ in range(2))
    weight = torch.randn(2, 3, length, 8, dtype=torch.float64)
    ref = parallel_stabilized_simple(q, k, v, i[..., None], f[..., None])
    out = mlstm_chunkwise(q, k, v, i, f, chunk)
    torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-10)
    for a, b in zip(torch.autograd.grad((out * weight).sum(), [q, k, v, i, f]),
                    torch.autograd.grad((ref * weight).sum(), [q, k, v, i, f])):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_faster_xlstm_modules_give_xlstm_results():
    """Our swaps inside xlstm's blocks (block-diagonal q/k/v products at inference, gates without the concatenation)
    give the same outputs and gradients as xlstm's own modules with the same weights."""
    import copy

    from xlstm.blocks.mlstm.cell import mLSTMCell
    from xlstm.components.linear_headwise import LinearHeadwiseExpand

    from seiscontrast.context import BlockDiagonalHeadwise, ContextConfig, SplitGateMLSTMCell, mlstm_stack

    torch.manual_seed(0)
    ours = mlstm_stack(32, 2, ContextConfig(dim=32, num_heads=2, qkv_proj_blocksize=4))
    for p in ours.parameters():   # xlstm initialises gate weights at zero: make every path count
        p.data += 0.1 * torch.randn_like(p)
    theirs = copy.deepcopy(ours)
    swapped = {BlockDiagonalHeadwise: LinearHeadwiseExpand, SplitGateMLSTMCell: mLSTMCell}
    assert {type(m) for m in ours.modules()} >= set(swapped)
    for m in theirs.modules():
        m.__class__ = swapped.get(type(m), type(m))
    x = torch.randn(3, 70, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    out_ours, out_theirs = ours(x), theirs(x)
    torch.testing.assert_close(out_ours, out_theirs, rtol=1e-5, atol=1e-5)
    out_ours.square().sum().backward()
    out_theirs.square().sum().backward()
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert (a.grad - b.grad).abs().max() <= 1e-5 * b.grad.abs().max(), name   # float rounding only


def test_our_chunkwise_kernel_keeps_float32_under_autocast():
    """Autocast (bf16 on CUDA, here on CPU) must not turn the kernel's products into bf16: same result as without."""
    from seiscontrast.chunkwise import mlstm_chunkwise

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 96, 16) for _ in range(3))
    i, f = torch.randn(2, 2, 96), 3 + torch.randn(2, 2, 96)
    ref = mlstm_chunkwise(q, k, v, i, f, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mlstm_chunkwise(q, k, v, i, f, 32)
        assert (q @ k.transpose(-1, -2)).dtype == torch.bfloat16   # autocast is really on
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)


def test_negative_pool_draws_from_a_subset_and_leaves_short_windows_unchanged():
    torch.manual_seed(0)
    mask = torch.zeros(3, 400, dtype=torch.bool)
    mask[0, :300] = True                     # more masked frames than the pool: a pool of 64 of them
    mask[1, 50:90] = True                    # fewer: all of them, as without a pool
    mask[2, 7] = True                        # one: itself, excluded
    pos, neg = sample_negatives(mask, 100, torch.Generator().manual_seed(3), pool_size=64)
    assert not (neg[pos != 2 * 400 + 7] == pos[pos != 2 * 400 + 7][:, None]).any()
    assert ((neg // 400) == (pos // 400)[:, None]).all() and mask.flatten()[neg].all()
    first = neg[pos < 400]
    assert len(first.unique()) == 64         # every frame of window 0 draws from the same 64 frames
    in_pool = torch.isin(pos[pos < 400], first.unique())
    assert ((first[in_pool] == pos[pos < 400][in_pool][:, None]).sum() == 0)
    assert len(neg[(pos >= 400) & (pos < 800)].unique()) == 40

    short = mask[1:]                         # no window above the pool: the draws are those without a pool
    a = sample_negatives(short, 100, torch.Generator().manual_seed(4), pool_size=64)
    b = sample_negatives(short, 100, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_info_nce_with_a_negative_pool_matches_hand_computation():
    torch.manual_seed(2)
    b, t, d = 2, 40, 6
    mask = torch.zeros(b, t, dtype=torch.bool)
    mask[0, 3:33] = True                     # 30 masked frames, pool of 8
    mask[1, 10:15] = True
    c, q = torch.randn(b, t, d), torch.randn(b, t, d)
    cfg = ContrastiveConfig(temperature=0.1, num_negatives=5, negative_pool=8)
    out = info_nce(c, q, mask, cfg, generator=torch.Generator().manual_seed(6))
    pos, neg = sample_negatives(mask, 5, torch.Generator().manual_seed(6), pool_size=8)
    torch.testing.assert_close(out.loss, _info_nce_by_hand(c, q, pos, neg, 0.1), atol=1e-5, rtol=1e-5)
    assert len(neg[pos < t].unique()) == 8


def test_onset_curves_peak_at_an_onset_on_its_components_whatever_the_amplitude():
    torch.manual_seed(0)
    x = 0.01 * torch.randn(1, 3, 2000)
    x[:, 0, 800:] += torch.randn(1200)            # a P-like onset on the vertical only
    x[:, 1:, 1400:] += 3 * torch.randn(2, 600)    # an S-like onset on the horizontals
    curves = onset_curves(x, [[10, 100], [50, 300]])
    assert curves.shape == (1, 4, 2000)
    z_short, h_short = curves[0, 0], curves[0, 1]
    assert abs(int(z_short.argmax()) - 800) <= 3
    assert abs(int(h_short.argmax()) - 1400) <= 3
    assert z_short[1400] < 0.5 < z_short[800]      # no new vertical energy at the S
    assert torch.allclose(onset_curves(1e4 * x, [[10, 100]]), onset_curves(x, [[10, 100]]), atol=1e-4)
    assert onset_curves(torch.zeros(2, 3, 50), [[10, 100]]).abs().max() == 0   # silent (or absent) channels


def test_head_takes_the_onset_curves_as_extra_channels():
    cfg = HeadConfig(hidden=8, onset_windows=[[10, 100]])
    head = PickingHead(16, cfg)
    assert head.refine[0].in_channels == 8 + 3 + 2
    out = head(torch.randn(2, 16, 16), torch.randn(2, 3, 256))
    assert out.log_probs.shape == (2, 3, 256) and torch.isfinite(out.log_probs).all()


def tiny_picker(head: HeadConfig) -> BackbonePicker:
    """A tiny backbone (73 k weights with an 8-channel head) under ``head``."""
    return BackbonePicker(ModelConfig(encoder=ConvEncoderConfig(channels=[8, 8]), context=ContextConfig(
        dim=16, num_heads=2, depths=[1, 1, 1]), quantizer=QuantizerConfig(dim=16), final_dim=16), head)


@pytest.mark.parametrize("unet_channels", [[], [4, 8]])
def test_a_head_without_detection_output_detects_with_one_minus_noise(unet_channels):
    """``head.detection=false``: three outputs, the event probability is 1 − noise, the loss the picking loss."""
    from seiscontrast.finetune import picking_loss

    cfg = HeadConfig(hidden=8, unet_channels=unet_channels, detection=False)
    picker = tiny_picker(cfg)
    assert picker.head.out.out_channels == 3
    out = picker(torch.randn(2, 3, 512))
    assert out.detection_logits is None
    torch.testing.assert_close(out.detection, 1 - out.probs[:, 2:3])
    labels = torch.zeros(2, 3, 512)
    labels[:, 2] = 1
    total, pick = picking_loss(out, labels, torch.ones(2, 1, 512), detection_weight=0.5)
    assert total.item() == pick.item() > 0


def test_unet_head_is_chosen_by_its_config_and_keeps_any_length():
    cfg = HeadConfig(hidden=8, unet_channels=[4, 8, 16], onset_windows=[[10, 100]])
    picker = tiny_picker(cfg)
    assert isinstance(picker.head, UNetPickingHead)
    assert picker.head.down[0][0].in_channels == 3 + 2
    for n in (1024, 1001):                          # 1001 is no multiple of the U-Net's strides
        out = picker(torch.randn(2, 3, n))
        assert out.log_probs.shape == (2, 3, n) and out.detection.shape == (2, 1, n)
    with pytest.raises(ValueError, match="unet_stride"):
        HeadConfig(unet_channels=[8, 16], unet_stride=1)
    alone = UNetPickingHead(16, HeadConfig(hidden=0, unet_channels=[4, 4, 4]))   # no features; 16 frames, 63 samples
    assert alone(torch.randn(2, 16, 16), torch.randn(2, 3, 1000)).log_probs.shape == (2, 3, 1000)


def test_a_head_without_features_skips_the_backbone():
    """``hidden=0``: the U-Net head reads the waveform alone, so the picker does not pay for the backbone."""
    picker = tiny_picker(HeadConfig(hidden=0, unet_channels=[4, 4])).eval()

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone ran")

    x = torch.randn(2, 3, 512)
    expected = picker.head(torch.zeros(2, 7, picker.head.project.in_features), picker.backbone.normalize(x))
    picker.backbone.forward = no_backbone
    assert torch.allclose(picker(x).log_probs, expected.log_probs)
    with pytest.raises(ValueError, match="head.hidden"):
        HeadConfig(hidden=0)                       # the plain head has nothing to refine without features


def test_unet_batchnorm_keeps_deep_levels_at_the_scale_of_the_first():
    """PhaseNet's depth without normalisation starts with its coarse levels fading (each convolution shrinks
    the signal at PyTorch's default initialisation); with ``unet_batchnorm`` every level starts at one scale."""
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4096)
    for batchnorm in (True, False):
        head = UNetPickingHead(16, HeadConfig(hidden=0, unet_channels=[8, 11, 16, 22, 32], unet_batchnorm=batchnorm))
        scales, h = [], x
        with torch.no_grad():
            for level in head.down:
                h = level(h)
                scales.append(h.std().item())
        ratio = scales[-1] / scales[0]
        assert (0.5 < ratio < 2) == batchnorm, (batchnorm, scales)


@pytest.mark.parametrize("kernel, stride, n", [(7, 4, 64), (7, 4, 61), (8, 4, 62), (5, 2, 33)])
def test_unet_levels_stay_aligned_at_any_length(kernel, stride, n):
    """A ramp averaged down by a level and up-sampled back is the same ramp: no level is decoded late."""
    down = CentredDownsample(1, 1, kernel, stride)
    with torch.no_grad():
        down.conv.weight.fill_(1 / down.conv.kernel_size[0])
        down.conv.bias.zero_()
        ramp = 100 + torch.arange(float(n))[None, None]         # large enough for GELU to be the identity
        coarse = down(ramp)
        back = upsample(coarse, stride, n)
    assert coarse.shape[-1] == -(-n // stride) and back.shape[-1] == n
    inner = slice(2 * kernel, n - 2 * kernel)                  # away from the zero padding at the ends
    torch.testing.assert_close(back[..., inner], ramp[..., inner])


def test_unet_head_times_an_onset_to_a_few_samples():
    """Trained alone (the frame features carry nothing), the head must find a P-like onset at any sample from
    the waveform through its levels: a misaligned skip connection or up-sampling shifts or blurs the peak."""
    torch.manual_seed(0)
    head = UNetPickingHead(4, HeadConfig(hidden=4, unet_channels=[8, 16, 16], dropout=0.0))
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    t = torch.arange(256.0)

    def batch(b):
        onset = torch.randint(50, 200, (b,))
        x = 0.05 * torch.randn(b, 3, 256)
        x[:, 0] += (t >= onset[:, None]) * torch.randn(b, 256)     # energy starts at the onset, on Z
        p = torch.exp(-0.5 * ((t - onset[:, None]) / 5.0) ** 2)
        return x, torch.stack([p, torch.zeros_like(p), 1 - p], 1), onset

    for _ in range(100):
        x, y, _ = batch(8)
        loss = -(y * head(torch.zeros(8, 8, 4), x).log_probs).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, _, onset = batch(64)
    with torch.no_grad():
        peak = head.eval()(torch.zeros(64, 8, 4), x).probs[:, 0].argmax(-1)
    assert (peak - onset).abs().float().median() <= 3    # 1 sample when written; the plain head: > 40


@pytest.mark.parametrize("frames, samples", [(16, 256), (128, 4096), (7, 70), (7, 71), (5, 15)])
def test_time_major_upsampling_is_linear_interpolation(frames, samples):
    """The CPU head up-samples frame features without leaving the time-major layout: the same values (and
    gradients) as ``F.interpolate(..., mode="linear", align_corners=False)``, edges included."""
    from seiscontrast.heads import upsample_time_major

    h = torch.randn(3, frames, 5, requires_grad=True)
    expected = F.interpolate(h.transpose(1, 2), size=samples, mode="linear", align_corners=False).transpose(1, 2)
    out = upsample_time_major(h, samples)
    assert out.shape == (3, samples, 5) and out.is_contiguous()
    torch.testing.assert_close(out, expected, atol=2e-6, rtol=0)
    weights = torch.randn_like(out)
    (grad,) = torch.autograd.grad((out * weights).sum(), h)
    (expected_grad,) = torch.autograd.grad((expected * weights).sum(), h)
    torch.testing.assert_close(grad, expected_grad, atol=1e-5, rtol=0)
    with torch.no_grad():                     # the in-place inference path
        torch.testing.assert_close(upsample_time_major(h, samples), expected, atol=2e-6, rtol=0)
