import numpy as np
import pytest
import torch

from seiscontrast.data.windows import WindowConfig, highpass, normalize_window


@pytest.mark.parametrize("method", ["std", "peak"])
def test_normalize_numpy_and_torch_agree(method):
    x = np.random.default_rng(0).standard_normal((2, 3, 500)).astype(np.float32) * 1e6 + 7
    a = normalize_window(x, method)
    b = normalize_window(torch.from_numpy(x), method).numpy()
    assert a.dtype == np.float32 and a.shape == x.shape
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(a.mean(-1), 0, atol=1e-5)
    scale = a.reshape(2, -1).std(-1) if method == "std" else np.abs(a).reshape(2, -1).max(-1)
    np.testing.assert_allclose(scale, 1, rtol=1e-4)


def test_normalize_keeps_component_ratio():
    x = np.zeros((3, 100), np.float32)
    x[0] = np.sin(np.arange(100))
    x[1] = 0.1 * np.sin(np.arange(100))
    y = normalize_window(x)
    assert np.abs(y[0]).max() / np.abs(y[1]).max() == pytest.approx(10, rel=1e-3)


@pytest.mark.parametrize("fill", [0.0, 5.0])
def test_normalize_constant_and_zero_is_zero(fill):
    y = normalize_window(np.full((3, 64), fill, np.float32))
    assert np.all(np.isfinite(y)) and not y.any()


def test_normalize_replaces_nan_and_inf():
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    x[0, 3], x[1, 5] = np.nan, np.inf
    assert np.all(np.isfinite(normalize_window(x)))
    assert torch.isfinite(normalize_window(torch.from_numpy(x))).all()


def test_window_config_validation():
    from seiscontrast.model import ModelConfig

    with pytest.raises(ValueError, match="normalization"):
        ModelConfig(normalization="rms")
    with pytest.raises(ValueError, match="components"):
        WindowConfig(components="ZRT")
    assert WindowConfig().duration == pytest.approx(40.96)


def test_normalisation_is_one_setting_applied_once(synth_dir, monkeypatch):
    """Windows leave the generators as recorded; a picker normalises once, for backbone and head alike; stored
    configs from before the window setting moved to the model still load."""
    import torch

    import seiscontrast.model as model_module
    from seiscontrast.config import config_from_dict
    from seiscontrast.data import open_dataset, picking_generator, pretraining_generator, split
    from seiscontrast.finetune import FinetuneConfig
    from seiscontrast.heads import PickerConfig, build_picker
    from seiscontrast.model import ModelConfig

    window = WindowConfig(length=1024)
    data = split(open_dataset(synth_dir, window), "train")
    for gen in (pretraining_generator(data, window), picking_generator(data, window)):
        x = gen[0]["X"]
        assert abs(float(x.std()) - 1.0) > 0.01 or abs(float(x.mean())) > 1e-3   # not normalised here
    calls = []
    real = model_module.normalize_window
    monkeypatch.setattr(model_module, "normalize_window", lambda *a, **k: calls.append(1) or real(*a, **k))
    tiny = ModelConfig()
    tiny.encoder.channels, tiny.context.dim, tiny.context.num_heads = [16, 16], 16, 2
    tiny.context.depths, tiny.quantizer.dim, tiny.final_dim = [1, 1, 1], 16, 16
    net = build_picker(PickerConfig(model=tiny)).eval()
    with torch.no_grad():
        net(torch.randn(2, 3, 1024) * 1e4)
    assert len(calls) == 1
    old = config_from_dict(FinetuneConfig, {"window": {"length": 2048, "normalization": "peak"}})
    assert old.window == WindowConfig(length=2048)


def test_configuration_reference_is_current_and_complete():
    from pathlib import Path

    from seiscontrast.config_reference import reference_markdown

    text = reference_markdown()
    assert (Path(__file__).parents[1] / "docs" / "configuration.md").read_text() == text, \
        "docs/configuration.md is stale: python -m seiscontrast.config_reference > docs/configuration.md"
    assert " |  |" not in text  # every key documented


def test_highpass_removes_microseisms_keeps_onsets_and_gaps():
    fs, t = 100.0, np.arange(12000) / 100.0
    micro, quake = 50 * np.sin(2 * np.pi * 0.15 * t), np.sin(2 * np.pi * 5 * t)
    y = highpass(1000 + micro + quake, fs, 0.5)
    assert y.dtype == np.float32
    assert np.std(y[3000:] - highpass(quake, fs, 0.5)[3000:]) < 0.1 * np.std(micro)   # 2 poles: 11x less at 0.15 Hz
    assert np.std(highpass(quake, fs, 0.5)[3000:]) == pytest.approx(np.std(quake[3000:]), rel=0.02)
    # causal, and started in its steady state: nothing before an onset, no ringing from the trace's offset
    step = np.full(4000, 1e5)
    step[2000:] += np.sin(2 * np.pi * 5 * t[:2000])
    z = highpass(step, fs, 0.5)
    assert np.abs(z[:2000]).max() < 1e-6 * 1e5 and np.abs(z[2000:]).max() > 0.5
    # a zero-filled gap stays zero and the data after it do not ring from the jump back to the offset
    gap = np.full(6000, 2e4) + quake[:6000]
    gap[2000:3000] = 0
    g = highpass(gap, fs, 0.5)
    assert not g[2000:3000].any() and np.abs(g[3000:3050]).max() < 2
    assert not highpass(np.zeros((3, 500)), fs, 1.0).any()
    with pytest.raises(ValueError, match="highpass"):
        WindowConfig(highpass=60.0)


def test_highpass_segments_split_only_at_long_zero_runs():
    from seiscontrast.data.windows import runs, segments

    row = np.ones(40)
    assert segments(row, 8) == [(0, 40)]
    row[3:6] = 0          # 3 zeros: real data can hold a few, they are not a gap
    row[10:20] = 0        # a gap
    row[-8:] = 0          # zero padding at the end
    row[:1] = 0
    assert segments(row, 8) == [(0, 10), (20, 32)]
    assert runs(np.array([True, True, False, True])) == [(0, 2), (3, 4)]
    assert runs(np.zeros(3, dtype=bool)) == [] and runs(np.ones(1, dtype=bool)) == [(0, 1)]
