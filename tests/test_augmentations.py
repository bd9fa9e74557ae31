"""Fine-tuning augmentations: each does what it says to the training windows, and none is on by default."""

import numpy as np
import pytest

from seiscontrast.config import load_config
from seiscontrast.data import WindowConfig, open_dataset, picking_generator, split
from seiscontrast.data.augmentations import AugmentConfig
from seiscontrast.finetune import FinetuneConfig

WINDOW = WindowConfig(length=1024)


def _windows(synth_dir, augment, n=24):
    """The first ``n`` training windows, each drawn with the same seed as without augmentation."""
    gen = picking_generator(split(open_dataset(synth_dir, WINDOW), "train"), WINDOW, augment=augment)
    out = []
    for i in range(n):
        np.random.seed(i)
        out.append(gen[i])
    return out


def test_augmentations_change_the_windows_as_named(synth_dir):
    plain = _windows(synth_dir, None)
    flipped = _windows(synth_dir, AugmentConfig(polarity_flip=1.0))
    for a, b in zip(plain, flipped):
        np.testing.assert_array_equal(b["X"], -a["X"])
        np.testing.assert_array_equal(b["y"], a["y"])           # labels are untouched

    dropped = _windows(synth_dir, AugmentConfig(channel_dropout=1.0))
    zero_channels = [int((~w["X"].any(axis=-1)).sum()) for w in dropped]
    assert max(zero_channels) >= 1 and max(zero_channels) <= 2   # never all three channels

    noisy = _windows(synth_dir, AugmentConfig(gaussian_noise=1.0, noise_scale=0.5))
    assert all(not np.array_equal(a["X"], b["X"]) for a, b in zip(plain, noisy) if a["X"].any())


def test_a_gap_over_a_pick_removes_its_label(synth_dir):
    plain = _windows(synth_dir, None, n=40)
    gapped = _windows(synth_dir, AugmentConfig(gap=1.0), n=40)
    lost = 0
    for a, b in zip(plain, gapped):
        zeroed = ~b["X"].any(axis=0) & a["X"].any(axis=0)
        for phase in (0, 1):
            peak = int(np.argmax(a["y"][phase]))
            if a["y"][phase, peak] > 0.9 and zeroed[peak]:
                assert b["y"][phase].max() < 0.5     # the pick in the gap is no longer labelled
                lost += 1
    assert lost >= 1


def test_augmentations_are_off_by_default_and_checked():
    cfg = load_config(FinetuneConfig, None, [])
    assert cfg.augment == AugmentConfig()
    with pytest.raises(ValueError, match="augment.gap"):
        load_config(FinetuneConfig, None, ["augment.gap=1.5"])
