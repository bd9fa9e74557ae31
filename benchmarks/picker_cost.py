"""What a cheaper picker network would cost per window: the bundled picker's architecture with config changes,
against SeisBench PhaseNet, in one process (network forward only, batches of 64, 2 threads, freed memory kept as
when picking; weights are random, which costs the same as trained ones).

Each network runs on its own window length and its own default overlap, so the figure that decides throughput
is the cost per *new* sample (window minus overlap): to match PhaseNet's speed, a picker's forward must cost no
more per new sample than PhaseNet's (SeisBench's stacking and pick extraction add about the same to both).

    python benchmarks/picker_cost.py                                   # the candidates below
    python benchmarks/picker_cost.py --variant "model.context.depths=[0,1,1]" "head.hidden=8"
    python benchmarks/picker_cost.py --layouts     # the bundled picker, channels-last vs channels-first convolutions
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch

CANDIDATES = {
    "bundled": [],
    "no top U-Net stage": ["model.context.depths=[0,1,1]"],
    "unidirectional mLSTM": ["model.context.bidirectional=false"],
    "frames every 32 samples": ["model.encoder.strides=[4,8]"],
    "frames every 64 samples": ["model.encoder.strides=[8,8]"],
    "head of 8 channels": ["head.hidden=8"],
    "frames every 32 samples, unidirectional": ["model.encoder.strides=[4,8]", "model.context.bidirectional=false"],
}


def build(overrides: list[str]):
    """The bundled picker's architecture (random weights) with ``picker.`` config overrides ``KEY=VALUE``, applied
    and checked as ``seiscontrast finetune`` applies its own (:func:`~seiscontrast.config.load_config`)."""
    from seiscontrast.config import config_from_dict, config_to_dict, load_config, save_config
    from seiscontrast.heads import PickerConfig
    from seiscontrast.picker import SeisContrastPicker

    config = copy.deepcopy(SeisContrastPicker.default().config)
    with tempfile.TemporaryDirectory() as tmp:
        bundled = Path(tmp) / "picker.yaml"
        save_config(config_from_dict(PickerConfig, config["picker"]), bundled)
        config["picker"] = config_to_dict(load_config(PickerConfig, bundled, overrides))
    return SeisContrastPicker(config).eval()


def ms_per_window(model, samples: int, batch: int, reps: int) -> float:
    x = torch.randn(batch, 3, samples)
    with torch.inference_mode():
        for _ in range(2):
            model(x)
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1000 / batch


def channels_first(model):
    """``model`` with its convolutions run as plain ``nn.Conv1d`` (channels-first), as before
    :mod:`seiscontrast.conv`; the same weights and arithmetic."""
    from seiscontrast.conv import Conv1d

    for module in model.modules():
        if type(module) is Conv1d:
            module.__class__ = torch.nn.Conv1d
    return model


def compare_layouts(batch: int, reps: int, rounds: int = 3):
    """The bundled picker with channels-last (today) and channels-first convolutions, alternately in one process,
    and the largest difference between their probabilities."""
    last, first = build([]), channels_first(build([]))
    first.load_state_dict(last.state_dict())
    x = torch.randn(batch, 3, last.in_samples)
    with torch.inference_mode():
        diff = (last(x) - first(x)).abs().max().item()
    for r in range(rounds):
        a = ms_per_window(last, last.in_samples, batch, reps)
        b = ms_per_window(first, first.in_samples, batch, reps)
        print(f"round {r + 1}: channels-last {a:.3f} ms/window, channels-first {b:.3f} ms/window, "
              f"speed-up {b / a:.2f}x", flush=True)
    print(f"largest difference between the two networks' probabilities: {diff:.1e}")


def new_samples(model) -> int:
    """Samples a window adds beyond its overlap with the previous one, at the model's default overlap."""
    return model.in_samples - model._get_overlap(model.in_samples, model.default_args)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", nargs="+", metavar="KEY=VALUE", help="measure this one variant instead of the list")
    ap.add_argument("--layouts", action="store_true",
                    help="only compare the bundled picker's convolution layouts (channels-last vs channels-first)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import seisbench.models as sbm

    from seiscontrast.memory import keep_freed_memory

    keep_freed_memory()
    if args.layouts:
        return compare_layouts(args.batch, args.reps)
    phasenet = sbm.PhaseNet().eval()
    pn = ms_per_window(phasenet, phasenet.in_samples, args.batch, args.reps) / new_samples(phasenet) * 1000
    print(f"{'network':42} {'ms/window':>9} {'µs per new sample':>18} {'vs PhaseNet':>11} {'parameters':>10}")
    print(f"{'SeisBench PhaseNet':42} {'':>9} {pn:18.3f} {1.0:11.2f}")
    variants = {"variant": args.variant} if args.variant else CANDIDATES
    for name, overrides in variants.items():
        try:
            model = build(overrides)
        except ValueError as err:   # ConfigError: an unknown key or a wrong value, named
            raise SystemExit(f"error: {err}") from None
        ms = ms_per_window(model, model.in_samples, args.batch, args.reps)
        per_sample = ms / new_samples(model) * 1000
        print(f"{name:42} {ms:9.2f} {per_sample:18.3f} {pn / per_sample:11.2f} "
              f"{sum(p.numel() for p in model.parameters()):10d}", flush=True)


if __name__ == "__main__":
    main()
