"""The picking head built time-major against the head as it was (channels-first up-sampling, then a copy into the
convolutions' channels-last layout; ``std()`` as the window scale), alternately in one process.

    python benchmarks/head_layout.py [--models default runs/x/picker.pt] [--rounds 5]

Prints the largest probability difference between the two and the median time per batch of 64 windows (2 threads)
of each round.
"""

from __future__ import annotations

import argparse

import torch
from picker_cost import ms_per_window  # benchmarks/ is on the path when run as a script
from torch.nn import functional as F

import seiscontrast.model as model_module
from seiscontrast import heads
from seiscontrast.data.windows import normalize_window
from seiscontrast.picker import SeisContrastPicker


def channels_first_forward(self, features, waveform):
    """``PickingHead.forward`` before the time-major layout."""
    h = self.project(self.dropout(features)).transpose(1, 2)
    h = F.interpolate(h, size=waveform.shape[-1], mode="linear", align_corners=False)
    h = torch.cat([h, *heads.waveform_inputs(waveform, self.cfg, h.dtype)], dim=1)
    return heads._output(self.out(self.refine(h)))


def std_normalize(x, method="std", eps=1e-8):
    """``normalize_window`` for tensors before the norm-based scale."""
    x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)
    x = x - x.mean(dim=-1, keepdim=True)
    return x / x.flatten(-2).std(dim=-1, correction=0).clamp_min(eps)[..., None, None]


NEW = (heads.PickingHead.forward, normalize_window)
OLD = (channels_first_forward, std_normalize)


def use(variant) -> None:
    heads.PickingHead.forward, model_module.normalize_window = variant


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["default"], help="picker files ('default': the bundled one)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x = torch.randn(64, 3, 4096, generator=torch.Generator().manual_seed(0))
    for name in args.models:
        model = (SeisContrastPicker.default() if name == "default" else SeisContrastPicker.from_file(name)).eval()
        with torch.inference_mode():
            use(OLD)
            before = model(x)
            use(NEW)
            print(f"{name}: largest probability difference {(model(x) - before).abs().max().item():.1e}")
            times = {"before": [], "now": []}
            for _ in range(args.rounds):
                for label, variant in (("before", OLD), ("now", NEW)):
                    use(variant)
                    times[label].append(ms_per_window(model, 4096, 64, reps=7) * 64)
            use(NEW)
        for label, values in times.items():
            print(f"  {label:6} ms per batch of 64: " + " ".join(f"{v:.1f}" for v in values))


if __name__ == "__main__":
    main()
