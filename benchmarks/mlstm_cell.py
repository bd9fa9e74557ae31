"""The mLSTM cell alone: our chunkwise kernel vs ``mlstm_kernels``' native ones and xlstm's parallel form.

In one run, on the same random inputs (batch 8, 4 heads, head dim 64 by default), forward + backward:

* time at each length, and growth relative to the first length (linear: 4x for 4x the length);
* gradients against autograd through xlstm's parallel form (the exact gradients of the same function), and
  against the same with the normaliser and stabiliser held constant (what ``mlstm_kernels``' hand-written
  backward, shared by its Triton kernels, computes).

    python benchmarks/mlstm_cell.py                  # 1024 and 4096 frames, 2 threads
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from mlstm_kernels.torch import get_mlstm_kernel
from mlstm_kernels.torch.kernel_wrappers import wrap_chunkwise__pad_zeros
from xlstm.blocks.mlstm.backends import parallel_stabilized_simple

from seiscontrast.chunkwise import mlstm_chunkwise

ROOT = Path(__file__).resolve().parents[1]


def kernels(chunk: int) -> dict:
    def library(name):
        kernel = get_mlstm_kernel(name)
        return lambda q, k, v, i, f: wrap_chunkwise__pad_zeros(
            mlstm_chunkwise_kernel=kernel, q=q, k=k, v=v, i=i, f=f, chunk_size=chunk,
            autocast_kernel_dtype=torch.float32)

    return {"seiscontrast (ours)": lambda q, k, v, i, f: mlstm_chunkwise(q, k, v, i, f, chunk),
            "mlstm_kernels native_autograd": library("chunkwise--native_autograd"),
            "mlstm_kernels native_custbw": library("chunkwise--native_custbw"),
            "xlstm parallel": lambda q, k, v, i, f: parallel_stabilized_simple(q, k, v, i[..., None], f[..., None])}


def inputs(batch, heads, length, dim, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    qkv = [torch.randn(batch, heads, length, dim, generator=g, dtype=dtype).requires_grad_() for _ in range(3)]
    gates = [(2 * torch.randn(batch, heads, length, generator=g, dtype=dtype)).requires_grad_() for _ in range(2)]
    return qkv + gates


def timed(fn, args, reps: int) -> float:
    times = []
    for _ in range(reps + 1):   # the first run warms up
        for a in args:
            a.grad = None
        t = time.perf_counter()
        fn(*args).sum().backward()
        times.append(time.perf_counter() - t)
    return min(times[1:])


def gradient_check(chunk: int) -> dict:
    """Largest gradient difference (relative to the largest reference gradient) of each kernel."""
    args = inputs(2, 2, 128, 16, seed=1)
    weight = torch.randn(2, 2, 128, 16, generator=torch.Generator().manual_seed(2))

    def grads(out):
        return torch.autograd.grad((out * weight).sum(), args)

    exact = grads(parallel_stabilized_simple(args[0], args[1], args[2], args[3][..., None], args[4][..., None]))
    held = grads(mlstm_chunkwise(*args, chunk, constant_normalizer=True))
    out = {}
    for name, fn in kernels(chunk).items():
        g = grads(fn(*args))
        out[name] = {ref_name: max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(g, ref))
                     for ref_name, ref in (("vs exact", exact), ("vs normaliser held constant", held))}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel-up-to", type=int, default=2048, help="longest length for the quadratic form")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mlstm_cell.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = {}
    for name, fn in kernels(a.chunk).items():
        for length in a.lengths:
            if name == "xlstm parallel" and length > a.parallel_up_to:
                continue
            args = inputs(a.batch, a.heads, length, a.dim)
            rows.setdefault(name, {})[length] = timed(fn, args, a.reps)
            print(f"{name:32s} {length:6d} frames  {rows[name][length]:.3f} s", flush=True)
    first = a.lengths[0]
    print(f"\nforward + backward, batch {a.batch}, {a.heads} heads, head dim {a.dim}, chunk {a.chunk}, "
          f"{a.threads} threads (growth = time / time at {first} frames)")
    for name, times in rows.items():
        growth = ", ".join(f"{n}: {t / times[first]:.1f}x" for n, t in times.items())
        ratio = ", ".join(f"{n}: {t / rows['seiscontrast (ours)'][n]:.2f}x" for n, t in times.items())
        print(f"{name:32s} growth {growth};  ours is faster by {ratio}")
    grads = gradient_check(a.chunk)
    print("\ngradients (largest difference / largest gradient)")
    for name, g in grads.items():
        print(f"{name:32s} " + ", ".join(f"{k} {v:.1e}" for k, v in g.items()))
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"settings": vars(a), "seconds": rows, "gradients": grads}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
