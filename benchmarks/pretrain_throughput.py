"""Pretraining step throughput: our chunkwise xLSTM U-Net vs the same U-Net on xlstm's parallel formulation.

Measured in the same run, with identical weights: forward + backward of the full pretraining objective
(masking, encoder, context network, quantizer, InfoNCE with 100 negatives) for a batch of windows.
Also reports how the step time grows with window length (chunkwise kernels should grow ~linearly) and, on a
GPU, tokens/s and peak memory in bf16.

    python benchmarks/pretrain_throughput.py                      # CPU: tiny + base, 4096/8192/16384
    python benchmarks/pretrain_throughput.py --device cuda --configs base
    SEISCONTRAST_KEEP_FREED_MEMORY=0 python benchmarks/pretrain_throughput.py   # glibc's malloc defaults
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from seiscontrast.config import load_config
from seiscontrast.contrastive import info_nce
from seiscontrast.memory import keep_freed_memory
from seiscontrast.model import build_model
from seiscontrast.pretrain import PretrainConfig

ROOT = Path(__file__).resolve().parents[1]
#: the longest window the parallel form runs at: its [S, S] matrices at 16384 samples (4096 frames) filled this
#: 24 GB machine and the process was killed
PARALLEL_MAX_LENGTH = 4096


def build(config: str, kernel: str, length: int, device: str):
    cfg = load_config(PretrainConfig, ROOT / "configs" / f"pretrain_{config}.yaml",
                      [f"model.context.kernel={kernel}", f"window.length={length}"])
    torch.manual_seed(0)
    return cfg, build_model(cfg.model).to(device).train()


def step_time(cfg, model, batch: int, length: int, device: str, reps: int, bf16: bool) -> float:
    x = torch.randn(batch, 3, length, device=device)
    times = []
    for i in range(reps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
            out = model.pretrain_forward(x)
            loss = info_nce(out.context, out.targets, out.mask, cfg.loss.contrastive, codes=out.quantizer.codes).loss
            loss = loss + 0.1 * out.quantizer.diversity_loss
        loss.backward()
        model.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        if i:  # first iteration is warm-up
            times.append(time.perf_counter() - t0)
    return min(times)


def _timed(fn, reps: int, device: str) -> float:
    times = []
    for i in range(reps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    return min(times)


def component_ratios(name: str, batch: int, frames: int, device: str, reps: int) -> dict:
    """Parallel / chunkwise time for the mLSTM cell kernel alone and for the context network alone (fwd + bwd)."""
    from xlstm.blocks.mlstm.backends import parallel_stabilized_simple

    from seiscontrast.context import ChunkwiseMLSTMKernel, XLSTMUNet

    cfg, _ = build(name, "chunkwise", frames * 4, device)
    ctx = cfg.model.context
    heads, dh = ctx.num_heads, int(ctx.dim * ctx.proj_factor) // ctx.num_heads
    shape = (batch, heads, frames, dh)
    q, k, v = (torch.randn(shape, device=device, requires_grad=True) for _ in range(3))
    i, f = (torch.randn(batch, heads, frames, 1, device=device, requires_grad=True) for _ in range(2))
    chunk = ChunkwiseMLSTMKernel(ctx.chunk_size)
    t_par = _timed(lambda: parallel_stabilized_simple(q, k, v, i, f).sum().backward(), reps, device)
    t_chk = _timed(lambda: chunk(q, k, v, i, f).sum().backward(), reps, device)
    nets = {}
    for kernel in ("parallel", "chunkwise"):
        torch.manual_seed(0)
        c = load_config(PretrainConfig, ROOT / "configs" / f"pretrain_{name}.yaml",
                        [f"model.context.kernel={kernel}"]).model.context
        nets[kernel] = XLSTMUNet(c).to(device)
    x = torch.randn(batch, frames, ctx.dim, device=device)
    t_net = {k: _timed(lambda n=n: n(x).sum().backward(), reps, device) for k, n in nets.items()}
    return {"kernel_parallel_s": t_par, "kernel_chunkwise_s": t_chk, "kernel_ratio": t_par / t_chk,
            "context_parallel_s": t_net["parallel"], "context_chunkwise_s": t_net["chunkwise"],
            "context_ratio": t_net["parallel"] / t_net["chunkwise"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["tiny", "base"])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--lengths", nargs="+", type=int, default=[4096, 8192, 16384])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--skip-parallel", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    # as training does (seiscontrast.memory); SEISCONTRAST_KEEP_FREED_MEMORY=0 measures glibc's defaults
    kept = keep_freed_memory(every_block=True)
    bf16 = args.device == "cuda"
    results = {"device": args.device, "threads": torch.get_num_threads(), "batch": args.batch,
               "keep_freed_memory": kept, "rows": []}
    print(f"device={args.device} threads={torch.get_num_threads()} batch={args.batch} bf16={bf16} "
          f"keep_freed_memory={kept}")
    print(f"{'config':6} {'kernel':10} {'length':>6} {'step s':>8} {'windows/s':>10} {'tokens/s':>10} {'peak MB':>8}")
    for name in args.configs:
        for length in args.lengths:
            parallel = not args.skip_parallel and length == args.lengths[0]
            if parallel and length > PARALLEL_MAX_LENGTH:
                print(f"(not running the parallel form at {length} samples: its [S, S] matrices grow with the square "
                      f"of the length; it runs at {PARALLEL_MAX_LENGTH} samples at most)")
                parallel = False
            kernels = ["chunkwise"] + (["parallel"] if parallel else [])
            for kernel in kernels:
                cfg, model = build(name, kernel, length, args.device)
                if args.device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                t = step_time(cfg, model, args.batch, length, args.device, args.reps, bf16)
                peak = torch.cuda.max_memory_allocated() / 2**20 if args.device == "cuda" else float("nan")
                row = dict(config=name, kernel=kernel, length=length, step_s=t, windows_per_s=args.batch / t,
                           tokens_per_s=args.batch * length / 4 / t, peak_mb=peak)
                results["rows"].append(row)
                print(f"{name:6} {kernel:10} {length:6d} {t:8.3f} {row['windows_per_s']:10.2f} "
                      f"{row['tokens_per_s']:10.0f} {peak:8.0f}", flush=True)
                del model
    parts_length = min(args.lengths[0], PARALLEL_MAX_LENGTH)
    print(f"\nparts alone at {parts_length} samples (fwd + bwd, parallel time / chunkwise time)")
    for name in args.configs:
        parts = component_ratios(name, args.batch, parts_length // 4, args.device, args.reps)
        results[f"parts_{name}"] = parts
        print(f"{name}: mLSTM cell kernel {parts['kernel_ratio']:.1f}x ({parts['kernel_parallel_s']:.3f} s vs "
              f"{parts['kernel_chunkwise_s']:.3f} s); context network {parts['context_ratio']:.1f}x "
              f"({parts['context_parallel_s']:.2f} s vs {parts['context_chunkwise_s']:.2f} s)", flush=True)
    print("\nsummary (whole pretraining step)")
    for name in args.configs:
        rows = [r for r in results["rows"] if r["config"] == name]
        base = {r["kernel"]: r for r in rows if r["length"] == args.lengths[0]}
        if "parallel" in base:
            ratio = base["parallel"]["step_s"] / base["chunkwise"]["step_s"]
            print(f"{name}: chunkwise is {ratio:.1f}x faster than xlstm's parallel form at {args.lengths[0]} samples "
                  f"(target >= 5x: {'met' if ratio >= 5 else 'NOT met'})")
        chunk = sorted((r for r in rows if r["kernel"] == "chunkwise"), key=lambda r: r["length"])
        per_sample = [r["step_s"] / r["length"] for r in chunk]
        growth = ", ".join(f"{r['length']}: {r['step_s'] / chunk[0]['step_s']:.2f}x" for r in chunk)
        linear = all(b <= a * 1.15 for a, b in zip(per_sample, per_sample[1:]))
        quadrupled = [r["step_s"] / chunk[0]["step_s"] for r in chunk if r["length"] == 4 * chunk[0]["length"]]
        target = f"; 4x the length: {quadrupled[0]:.2f}x (target <= 4.5x: " \
                 f"{'met' if quadrupled[0] <= 4.5 else 'NOT met'})" if quadrupled else ""
        print(f"{name}: step time vs {chunk[0]['length']} samples: {growth} "
              f"({'grows no faster than the length' if linear else 'grows faster than the length'}{target})")
    if args.device == "cpu":   # the whole run's high-water mark (Linux: kB)
        results["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak resident memory of the run: {results['peak_rss_mb']:.0f} MB")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"pretrain_throughput_{args.device}.json"
    target.write_text(json.dumps(results, indent=2))
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
