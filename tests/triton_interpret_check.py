"""Run by tests/test_triton_path.py in a subprocess with ``TRITON_INTERPRET=1`` (set before Triton is imported):
the CUDA branch's Triton kernels on CPU tensors, compared with the native kernels. Prints one JSON line."""

import json

import torch

from seiscontrast import context
from seiscontrast.contrastive import ContrastiveConfig, info_nce
from seiscontrast.masking import compute_span_mask
from seiscontrast.model import ModelConfig, build_model

TRITON = ("chunkwise--triton_limit_chunk", "chunkwise--triton_xl_chunk")
# mlstm_kernels' Triton kernels and native_custbw share one hand-written backward, which holds the normaliser
# and the stabiliser constant (so its gradients differ from the exact ones of our kernel, NATIVE_KERNEL);
# gradients are compared with native_custbw, forward outputs with both
NATIVE_SAME_BACKWARD = "chunkwise--native_custbw"


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def cell() -> dict:
    torch.manual_seed(0)
    b, h, s, d = 1, 2, 128, 16  # triton_xl_chunk needs a power-of-two length
    base = [torch.randn(b, h, s, d) for _ in range(3)] + [torch.randn(b, h, s) * 0.5, torch.randn(b, h, s) + 3]
    results = {}
    for name in (context.NATIVE_KERNEL, NATIVE_SAME_BACKWARD, *TRITON):
        x = [t.clone().requires_grad_() for t in base]
        args = dict(q=x[0], k=x[1], v=x[2], i=x[3], f=x[4], eps=1e-6, chunk_size=32,
                    autocast_kernel_dtype=torch.float32)
        out = context.run_chunkwise_kernel(name, args)
        out.square().sum().backward()
        results[name] = (out.detach(), [t.grad for t in x])
    ref_out, ref_grads = results[NATIVE_SAME_BACKWARD]
    return {name: {"out_vs_autograd": rel(results[name][0], results[context.NATIVE_KERNEL][0]),
                   "out": rel(results[name][0], ref_out),
                   "grad": max(rel(g, r) for g, r in zip(results[name][1], ref_grads))} for name in TRITON}


def model_step(name: str) -> tuple[float, dict]:
    """Loss and gradients of a tiny model's pretraining objective with every mLSTM cell on kernel ``name``."""
    context.kernel_name = lambda on_cuda, length=0: name
    context._triton_failure = None
    torch.manual_seed(0)
    cfg = ModelConfig()
    cfg.encoder.channels, cfg.context.dim, cfg.context.num_heads = [16, 16], 16, 2
    cfg.context.depths, cfg.quantizer.dim, cfg.final_dim = [1, 1, 1], 16, 16
    model = build_model(cfg).eval()  # eval: arg-max codes, no dropout, so both runs draw nothing random
    x = torch.randn(2, 3, 512)
    mask = compute_span_mask(2, 128, cfg.masking, generator=torch.Generator().manual_seed(1))
    out = model.pretrain_forward(x, mask)
    nce = info_nce(out.context, out.targets, mask, ContrastiveConfig(), codes=out.quantizer.codes,
                   generator=torch.Generator().manual_seed(2))
    nce.loss.backward()
    return float(nce.loss), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    import triton

    report = {"triton": triton.__version__, "cell": cell()}
    cell_failures = context._triton_failure
    ref_loss, ref_grads = model_step(NATIVE_SAME_BACKWARD)
    for name in TRITON:
        loss, grads = model_step(name)
        report[name] = {"loss": abs(loss - ref_loss), "grad": max(rel(grads[k], ref_grads[k]) for k in ref_grads),
                        "n_grads": len(grads), "triton_failure": context._triton_failure}
    report["cell_failures"] = cell_failures
    print(json.dumps(report))


if __name__ == "__main__":
    main()
