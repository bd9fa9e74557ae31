import numpy as np
import pandas as pd
import pytest

from seiscontrast.data import (
    DatasetConfig,
    WindowConfig,
    block_fraction_mask,
    open_dataset,
    open_datasets,
    picking_generator,
    pretraining_generator,
    split,
)
from seiscontrast.data.seisbench_source import steered_generator, trace_filters
from seiscontrast.data.windows import highpass


def test_open_local_folder_and_splits(synth_dir):
    ds = open_dataset(synth_dir, WindowConfig())
    assert len(ds) == 240
    sizes = {name: len(split(ds, name)) for name in ("train", "dev", "test")}
    assert sum(sizes.values()) == 240 and min(sizes.values()) > 0


def test_unknown_source_names_it():
    with pytest.raises(ValueError, match="NotADataset"):
        open_dataset("NotADataset", WindowConfig())


def test_seisbench_class_names_are_resolved(monkeypatch):
    import seisbench.data as sbd

    seen = {}

    class Fake(sbd.WaveformDataset):
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr(sbd, "ETHZ", Fake)
    assert isinstance(open_dataset("ETHZ", WindowConfig()), Fake)
    assert seen["sampling_rate"] == 100.0 and seen["component_order"] == "ZNE"


def test_combined_sources(synth_dir):
    ds = open_datasets([synth_dir, synth_dir], WindowConfig())
    assert len(ds) == 480


@pytest.mark.parametrize("n", [1, 17, 1000])
def test_fraction_masks_are_nested(n):
    masks = [block_fraction_mask(n, f, seed=5, block=8) for f in (0.05, 0.1, 0.2, 0.5, 1.0)]
    for small, large in zip(masks, masks[1:]):
        assert not np.any(small & ~large)
    assert masks[-1].all() and masks[0].any()
    np.testing.assert_array_equal(masks[2], block_fraction_mask(n, 0.2, seed=5, block=8))
    if n == 1000:
        assert 0.15 < masks[2].mean() < 0.25


@pytest.mark.parametrize("n", [5, 17, 1000])
def test_count_masks_are_nested_and_exact(n):
    """Counts are prefixes of the same block order as fractions: 16 ⊂ 64 ⊂ fraction 0.5 ⊂ all."""
    masks = [block_fraction_mask(n, 1.0, seed=3, block=8, max_items=c) for c in (1, 16, 64)]
    masks += [block_fraction_mask(n, 0.5, seed=3, block=8), block_fraction_mask(n, 1.0, seed=3, block=8)]
    assert [int(m.sum()) for m in masks[:3]] == [min(c, n) for c in (1, 16, 64)]
    for small, large in zip(masks, masks[1:]):
        if small.sum() <= large.sum():
            assert not np.any(small & ~large)
    # 16 traces are two whole blocks of neighbouring traces
    if n == 1000:
        idx = np.flatnonzero(masks[1])
        assert len({i // 8 for i in idx}) == 2
    other_seed = block_fraction_mask(n, 1.0, seed=4, block=8, max_items=16)
    assert n < 32 or not np.array_equal(other_seed, masks[1])


def test_training_fraction_subset(synth_dir):
    ds = open_dataset(synth_dir, WindowConfig())
    small = split(ds, "train", DatasetConfig(fraction=0.2, fraction_block=4))
    big = split(ds, "train", DatasetConfig(fraction=0.5, fraction_block=4))
    assert set(small.metadata.trace_name) <= set(big.metadata.trace_name)
    assert len(small) < len(big) < len(split(ds, "train"))


def test_pretraining_windows(synth_dir):
    gen = pretraining_generator(open_dataset(synth_dir, WindowConfig()), WindowConfig())
    x = gen[0]["X"]
    assert x.shape == (3, 4096) and x.dtype == np.float32 and np.isfinite(x).all() and x.std() > 0


def test_short_window_config_and_resampling(synth_dir):
    w = WindowConfig(length=1000, sampling_rate=50.0)
    x = pretraining_generator(open_dataset(synth_dir, w), w)[3]["X"]
    assert x.shape == (3, 1000)


def test_picking_labels_follow_the_picks(synth_dir):
    ds = open_dataset(synth_dir, WindowConfig())
    train = split(ds, "train")
    gen = picking_generator(train, WindowConfig(), sigma=20, noise_share=0.0)
    np.random.seed(0)
    checked = 0
    for i in range(40):
        sample = gen[i]
        y = sample["y"]
        assert y.shape == (3, 4096)
        np.testing.assert_allclose(y.sum(0), 1, atol=1e-5)  # P + S + noise = 1
        assert sample["detections"].shape == (1, 4096)
        if y[0].max() > 0.99:
            p = int(np.argmax(y[0]))
            x = sample["X"]
            # the P label sits where the trace wakes up: more energy just after than just before
            row = train.metadata.iloc[i]
            if (300 < p < 3900 and row.trace_snr_p_db > 25 and np.isnan(row.trace_p2_arrival_sample)
                    and not isinstance(row.trace_artefacts, str)):  # no bursts/gaps/second event
                d = np.diff(x, axis=1)
                assert d[:, p:p + 100].std() > 2 * d[:, p - 250:p - 10].std()
                checked += 1
    assert checked >= 3


def test_picks_in_window_padding_are_not_labelled(synth_dir):
    """A trace shorter than the window around its pick is zero-padded; a pick there must get no label."""
    train = split(open_dataset(synth_dir, WindowConfig()), "train")
    gen = picking_generator(train, WindowConfig(), sigma=20, noise_share=0.0)
    np.random.seed(3)
    padded_windows = 0
    for i in range(len(train)):
        sample = gen[i]
        flat = np.abs(np.diff(sample["X"], axis=1)).sum(0) == 0  # constant stretches: padding (or gaps)
        padded_windows += bool(flat[:200].all() or flat[-200:].all())
        for channel in (0, 1):  # P, S
            if sample["y"][channel].max() > 0.5:
                peak = int(np.argmax(sample["y"][channel]))
                assert not flat[max(0, peak - 5):peak + 5].all(), f"trace {i}: label on padding at {peak}"
    assert padded_windows > 0  # the case this test is about did occur


def test_steered_windows_are_cut_where_asked_and_moved_into_the_trace(synth_dir):
    """Evaluation windows: SeisBench's SteeredWindow cuts the asked span; one asked to start before the trace
    starts at the trace's start, and window_borders says by how much it moved (evaluation corrects for it)."""
    import pandas as pd

    from seiscontrast.data.seisbench_source import steered_generator, trace_ids

    w = WindowConfig(length=1024)
    data = open_datasets([synth_dir, synth_dir], w)            # two sources: trace names repeat, datasets differ
    rows = [0, 300, 5]
    starts = np.array([200, 10, -150])
    control = pd.DataFrame(trace_ids(data.metadata, rows)).assign(start_sample=starts, end_sample=starts + 1024)
    gen = steered_generator(data, control, w)
    for k, (row, start) in enumerate(zip(rows, starts)):
        wf = data.get_waveforms(row).astype(np.float32)
        sample = gen[k]
        p0 = max(0, start)
        np.testing.assert_array_equal(sample["X"], wf[:, p0:p0 + 1024])
        assert sample["window_borders"][0] == start - p0


def test_sliding_windows_cover_the_whole_trace(synth_dir):
    from seiscontrast.data.seisbench_source import sliding_generator

    w = WindowConfig(length=1000)
    data = open_dataset(synth_dir, w)
    wf = data.get_waveforms(3)
    x = sliding_generator(data, w)[3]["X"]
    n = wf.shape[-1]
    assert x.shape == (-(-n // 1000), 3, 1000)
    np.testing.assert_array_equal(np.concatenate(list(x), axis=-1)[:, :n], wf.astype(np.float32))
    assert not x[-1][:, n - (len(x) - 1) * 1000:].any()           # the end is zero-padded


def test_window_highpass_is_applied_to_the_trace_before_windows_are_cut(synth_dir):
    """``window.highpass`` reaches every generator: the windows are those of the filtered traces."""
    plain, filtered = WindowConfig(length=1000), WindowConfig(length=1000, highpass=1.0)
    ds = open_dataset(synth_dir, plain)
    control = pd.DataFrame({"trace_name": [ds.metadata.trace_name.iloc[2]], "start_sample": [1500],
                            "end_sample": [2500]})
    a = steered_generator(ds, control, plain)[0]["X"]
    b = steered_generator(ds, control, filtered)[0]["X"]
    whole = highpass(ds.get_waveforms(2), 100.0, 1.0)
    np.testing.assert_allclose(b, whole[:, 1500:2500], rtol=1e-5, atol=1e-5 * np.abs(whole).max())
    assert not np.allclose(a, b)
    assert str(trace_filters(filtered)[0]) == "HighPass (1 Hz)" and trace_filters(plain) == []
