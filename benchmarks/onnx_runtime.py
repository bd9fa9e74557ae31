"""The bundled picker's network on ONNX Runtime vs eager PyTorch, on CPU, in the same run.

A lever for picking throughput that changes no weight: the network exported with ``torch.onnx.export``
(``dynamo=True``) and run by ONNX Runtime, which fuses the elementwise work around the convolutions and the mLSTM
products. Prints the export time, the time per batch of 64 windows for both (interleaved, best of ``--reps``) and
the largest difference of the probabilities. Needs ``pip install onnxruntime onnxscript`` (not dependencies of
seiscontrast).

    python benchmarks/onnx_runtime.py [--reps 6] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from seiscontrast.picker import SeisContrastPicker


class Probabilities(torch.nn.Module):
    """The picker network with one tensor out (P, S, noise, detection probabilities), as ONNX needs."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        return torch.cat([out.probs, out.detection], 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    try:
        import onnxruntime as ort
    except ImportError:
        raise SystemExit("needs onnxruntime and onnxscript: pip install onnxruntime onnxscript") from None
    torch.set_num_threads(args.threads)
    picker = SeisContrastPicker.default().eval()
    net = Probabilities(picker.net).eval()
    x = torch.randn(args.batch, 3, picker.in_samples)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "picker.onnx"
        t0 = time.perf_counter()
        torch.onnx.export(net, (x,), str(path), dynamo=True, external_data=False, input_names=["x"],
                          output_names=["probabilities"])
        export_s = time.perf_counter() - t0
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        # its threads would otherwise spin-wait after each run, slowing the PyTorch run that follows
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    times = {"onnxruntime": [], "pytorch": []}
    for rep in range(args.reps + 1):    # the first round warms both up
        t0 = time.perf_counter()
        fast = session.run(None, {"x": xn})[0]
        t1 = time.perf_counter()
        with torch.inference_mode():
            eager = net(x).numpy()
        t2 = time.perf_counter()
        if rep:
            times["onnxruntime"].append(t1 - t0)
            times["pytorch"].append(t2 - t1)
    best = {k: min(v) for k, v in times.items()}
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, {args.threads} threads, batch {args.batch} x "
          f"{picker.in_samples} samples; export {export_s:.0f} s")
    for k, v in best.items():
        print(f"{k:12s} {v:.3f} s per batch (best of {args.reps}; median {np.median(times[k]):.3f} s)")
    print(f"speed-up {best['pytorch'] / best['onnxruntime']:.2f}x; largest probability difference "
          f"{np.abs(fast - eager).max():.1e}")


if __name__ == "__main__":
    main()
