import math

import numpy as np
import pandas as pd
import pytest

from seiscontrast.data.synthetic import SynthConfig, head_waves, site_reverberations, synthesize_trace

CFG = SynthConfig(n_traces=400, seed=3)


@pytest.fixture(scope="module")
def traces():
    return [synthesize_trace(CFG, i, return_parts=True) for i in range(150)]


def test_deterministic_for_seed():
    a, ma = synthesize_trace(CFG, 7)
    b, mb = synthesize_trace(CFG, 7)
    c, _ = synthesize_trace(SynthConfig(seed=4), 7)
    np.testing.assert_array_equal(a, b)
    assert ma == mb
    assert not np.array_equal(a, c)


def test_shape_and_metadata(traces):
    data, meta, _, _ = traces[0]
    assert data.shape == (3, 6000) and data.dtype == np.float32
    for key in ("trace_sampling_rate_hz", "split", "station_code", "trace_category"):
        assert key in meta
    table = pd.DataFrame([t[1] for t in traces])
    assert set(table.split) == {"train", "dev", "test"}
    assert 0.03 < (table.trace_category == "noise").mean() < 0.3
    assert table.trace_snr_p_db.min() < 10 and table.trace_snr_p_db.max() > 50  # a wide SNR range
    assert {"impulsive", "emergent"} <= set(table.trace_p_onset.dropna())


def _single_events(traces):
    for data, meta, signal, noise in traces:
        if (meta["trace_category"] == "earthquake" and "trace_p2_arrival_sample" not in meta
                and np.isfinite(meta["trace_p_arrival_sample"])):
            yield data, meta, signal, noise


def test_energy_starts_at_the_labelled_p_sample(traces):
    """The clean signal is exactly zero before the P label and non-zero right after it."""
    n = 0
    for _, meta, signal, _ in _single_events(traces):
        p = int(meta["trace_p_arrival_sample"])
        post = np.abs(signal[:, p:p + 200]).max()
        assert np.abs(signal[:, :p]).max() <= 1e-6 * post
        assert np.abs(signal[:, p:p + 30]).max() > 1e-3 * post  # energy within 0.3 s of the label
        n += 1
    assert n > 50


def test_onsets_stand_out_of_noise_when_snr_is_high(traces):
    ratios = []
    for data, meta, _, _ in _single_events(traces):
        if meta["trace_snr_p_db"] > 30 and "gap" not in meta["trace_artefacts"]:
            p = int(meta["trace_p_arrival_sample"])
            x = np.diff(data.astype(np.float64), axis=1)  # remove microseism/offset to see the onset
            before, after = x[:, max(0, p - 300):p - 5].std(), x[:, p:p + 150].std()
            ratios.append(after / before)
    assert len(ratios) > 10 and np.median(ratios) > 5


def test_s_after_p_and_consistent_with_distance(traces):
    for _, meta, _, _ in _single_events(traces):
        s = meta["trace_s_arrival_sample"]
        if np.isfinite(s):
            sp = (s - meta["trace_p_arrival_sample"]) / 100
            expected = meta["path_hyp_distance_km"] * (1 / meta["path_vs_km_s"] - 1 / meta["path_vp_km_s"])
            assert sp == pytest.approx(expected, abs=0.011)


def test_p_on_vertical_s_on_horizontals(traces):
    """Averaged over events, P is strongest on Z, S on the horizontals."""
    p_ratio, s_ratio = [], []
    for _, meta, signal, _ in _single_events(traces):
        p, s = int(meta["trace_p_arrival_sample"]), meta["trace_s_arrival_sample"]
        if not np.isfinite(s) or s - p < 150:
            continue
        s = int(s)
        pz, ph = np.abs(signal[0, p:p + 100]).max(), np.abs(signal[1:, p:p + 100]).max()
        sz, sh = np.abs(signal[0, s:s + 100]).max(), np.abs(signal[1:, s:s + 100]).max()
        p_ratio.append(pz / ph)
        s_ratio.append(sz / sh)
    assert np.median(p_ratio) > 1.0 > np.median(s_ratio)


def test_noise_traces_have_no_picks(traces):
    for _, meta, signal, _ in traces:
        if meta["trace_category"] == "noise":
            assert not np.any(signal)
            assert "trace_p_arrival_sample" not in meta


def test_vertical_only_stations_and_accelerometers_are_drawn():
    only_z = SynthConfig(seed=5, vertical_only_fraction=1.0, accelerometer_fraction=0.7)
    kinds = set()
    for i in range(6):
        data, meta = synthesize_trace(only_z, i)
        assert meta["trace_components"] == "Z" and not data[1:].any() and data[0].any()
        kinds.add((meta["station_instrument"], meta["trace_channel"]))
    assert ("accelerometer", "HN") in kinds
    data, meta = synthesize_trace(SynthConfig(seed=5, vertical_only_fraction=0.0), 0)
    assert meta["trace_components"] == "ZNE" and data[1:].any()


def test_low_rate_records_are_band_limited_like_resampled_real_data():
    """A trace recorded at 20 Hz and resampled to 100 Hz has nothing above 10 Hz, spikes and bursts included."""
    cfg = SynthConfig(n_traces=400, seed=3, resample_low_rates=True)
    n = 0
    for data, meta in (synthesize_trace(cfg, i) for i in range(100)):
        if meta["trace_original_rate_hz"] == 20.0:
            spec = np.abs(np.fft.rfft(data.astype(np.float64), axis=-1)) ** 2
            freqs = np.fft.rfftfreq(data.shape[-1], 0.01)
            assert spec[:, freqs > 10.5].sum() < 1e-4 * spec.sum()
            n += 1
    assert n > 5


def _band_rms(x, lo, hi, fs=100.0):
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1 / fs)
    return np.fft.irfft(spec * ((freqs >= lo) & (freqs < hi)), len(x)).std()


def test_broadband_microseisms_as_strong_as_configured_other_sensors_unchanged():
    """``broadband_microseisms`` sets the microseism / (> 1 Hz) noise ratio of broadband stations; the other
    sensors, the events and every other draw stay as they were."""
    plain, strong = SynthConfig(seed=2), SynthConfig(seed=2, broadband_microseisms=[40.0, 40.0])
    seen, ratios = set(), []
    for i in range(16):
        a, meta, _, noise_a = synthesize_trace(plain, i, return_parts=True)
        b, meta_b, _, noise = synthesize_trace(strong, i, return_parts=True)
        assert meta == meta_b
        seen.add(meta["station_instrument"])
        if meta["station_instrument"] != "broadband":
            np.testing.assert_array_equal(a, b)
            continue
        ratios.append([_band_rms(x[0].astype(np.float64), 0.05, 0.5) / _band_rms(x[0].astype(np.float64), 1, 50)
                       for x in (noise, noise_a)])
    strong_ratio, plain_ratio = np.median(ratios, axis=0)
    # 40 in the microseism peak (0.12-0.3 Hz), which this band mostly holds; 0.3-8 before
    assert 15 < strong_ratio < 80 and strong_ratio > 4 * plain_ratio and len(ratios) >= 5
    assert {"broadband", "short-period"} <= seen
    with pytest.raises(ValueError, match="broadband_microseisms"):
        SynthConfig(broadband_microseisms=[5.0, 1.0])


def _with_and_without(extra: str, traces: int = 12, **option):
    """For the first ``traces`` traces of seed 4, with and without ``option``: check that the noise and metadata are the
    same but for the ``extra`` key the option adds; yield ``(metadata, signal without, signal with, extra value)``."""
    for i in range(traces):
        _, meta, sig_a, noise_a = synthesize_trace(SynthConfig(seed=4), i, return_parts=True)
        _, meta_b, sig_b, noise_b = synthesize_trace(SynthConfig(seed=4, **option), i, return_parts=True)
        np.testing.assert_array_equal(noise_a, noise_b)
        value = meta_b.pop(extra, None)   # None: the option added nothing to this trace (e.g. no event)
        assert meta == meta_b
        yield meta, sig_a, sig_b, value


def test_nucleation_phase_weak_start_same_onset_other_draws_unchanged():
    """``nucleation_fraction``: an event's first ``delay`` seconds carry only the weak sub-event (its source scaled
    by the ratio), the main release follows, the picks stay at the weak onset, and the noise and every other
    draw are as without it."""
    checked = 0
    for meta, _, sig_b, delay in _with_and_without(nucleation_fraction=1.0, extra="source_nucleation_delay_s"):
        p = meta.get("trace_p_arrival_sample", np.nan)
        if not np.isfinite(p) or np.isfinite(meta.get("trace_p2_arrival_sample", np.nan)) or delay < 0.05:
            continue
        p, lag = int(p), int(round(delay * SynthConfig.sampling_rate))
        main = np.abs(sig_b[:, p + lag:p + lag + 200]).max()
        assert np.abs(sig_b[:, :p]).max() < 1e-6 * main                   # nothing before the labelled onset
        assert 1e-3 * main < np.abs(sig_b[:, p:p + lag]).max() < 0.5 * main   # a weak start, then the main release
        checked += 1
    assert checked >= 3
    with pytest.raises(ValueError, match="nucleation_fraction"):
        SynthConfig(nucleation_fraction=1.5)


def test_head_waves_by_hand():
    """Pn/Sn times in a 30 km crust over an 8 km/s mantle (Vs 4.6): first at 300 km, not at 30 km, none for a
    source below the crust."""
    crust = {"thickness": 30.0, "vp_mantle": 8.0, "vs_mantle": 4.6, "ratio_P": 0.3, "ratio_S": 0.1}
    ev = {"depth": 10.0, "distance": 300.0, "hyp": math.hypot(300.0, 10.0), "vp": 6.0, "vs": 3.5}
    out = head_waves(ev, crust)
    t_pn = 300 / 8 + 50 * math.sqrt(1 / 36 - 1 / 64)           # 43.01 s, against 50.03 s direct
    t_sn = 300 / 4.6 + 50 * math.sqrt(1 / 3.5**2 - 1 / 4.6**2)
    assert out["t_P"] == pytest.approx(t_pn) and out["P"] == (0.3, pytest.approx(ev["hyp"] / 6 - t_pn))
    assert out["t_S"] == pytest.approx(t_sn) and out["S"] == (0.1, pytest.approx(ev["hyp"] / 3.5 - t_sn))
    assert head_waves({**ev, "distance": 30.0, "hyp": math.hypot(30.0, 10.0)}, crust) is None
    assert head_waves({**ev, "depth": 40.0, "hyp": math.hypot(300.0, 40.0)}, crust) is None


def test_crust_labels_the_first_visible_arrival_other_draws_unchanged():
    """``crust_fraction``: a visible head wave is labelled and nothing precedes it; a head wave too weak to see
    precedes the labelled direct wave; events without head waves and all noise are as without the option."""
    seen = set()
    for i in range(60):
        kw = dict(seed=3, distance_range=[100.0, 400.0], depth_range=[1.0, 20.0])
        _, meta_a, sig_a, noise_a = synthesize_trace(SynthConfig(**kw), i, return_parts=True)
        _, meta, sig, noise = synthesize_trace(SynthConfig(**kw, crust_fraction=1.0), i, return_parts=True)
        np.testing.assert_array_equal(noise_a, noise)
        p, phase = meta.get("trace_p_arrival_sample", np.nan), meta.get("path_p_phase")
        if phase is None or not np.isfinite(p) or np.isfinite(meta.get("trace_p2_arrival_sample", np.nan)):
            continue
        seen.add(phase)
        p = int(p)
        s_a, s_b = meta_a["trace_s_arrival_sample"], meta["trace_s_arrival_sample"]
        assert s_a == s_b or (np.isnan(s_a) and np.isnan(s_b)) or meta["path_s_phase"] == "Sn"
        if phase == "P" and meta["path_s_phase"] == "S":   # no head wave first: the record without the option
            np.testing.assert_array_equal(sig, sig_a)
            assert meta_a["trace_p_arrival_sample"] == p
        elif phase == "Pn":
            assert np.abs(sig[0, :p]).max() < 1e-6 * np.abs(sig[0]).max()
        elif phase == "Pg":   # after a head wave lost in the noise (or starting before the trace)
            assert np.abs(sig[0, :p]).max() > 1e-3 * np.abs(sig[0]).max()
            assert meta_a["trace_p_arrival_sample"] == p
    assert seen == {"P", "Pn", "Pg"}
    with pytest.raises(ValueError, match="crust_fraction"):
        SynthConfig(crust_fraction=-0.1)


def test_site_reverberations_by_hand():
    x = np.zeros((1, 10))
    x[0, 1] = 1.0
    y = site_reverberations(x, delay=3, reflection=0.5)
    np.testing.assert_allclose(y[0], [0, 1, 0, 0, -0.5, 0, 0, 0.25, 0, 0])


def test_site_resonance_rings_after_the_onset_other_draws_unchanged():
    """``site_resonance_fraction``: the station's signal rings (a layer's reverberations), nothing precedes the
    labelled onset, and the noise, picks and every other draw are as without it."""
    checked = 0
    for meta, sig_a, sig_b, f0 in _with_and_without(site_resonance_fraction=1.0, extra="station_site_f0_hz"):
        assert 1.0 <= f0 <= 25.0
        p = meta.get("trace_p_arrival_sample", np.nan)
        if not np.isfinite(p):
            continue
        p = int(p)
        assert np.abs(sig_b[:, :p]).max() < 1e-6 * np.abs(sig_b).max()   # nothing before the labelled onset
        assert not np.allclose(sig_a, sig_b)
        checked += 1
    assert checked >= 5
    assert "station_site_f0_hz" not in synthesize_trace(SynthConfig(seed=4), 0)[1]
    with pytest.raises(ValueError, match="site_resonance_fraction"):
        SynthConfig(site_resonance_fraction=-0.1)


def test_linear_phase_digitiser_rings_before_the_onset_other_draws_unchanged():
    """``linear_phase_fraction``: the anti-alias filter is zero-phase, so a low-rate record's onset rings within a
    second before the labelled arrival (nothing earlier), with the same energy as through the minimum-phase
    filter; the noise, picks and every other draw are as without it."""
    rings = checked = 0
    for meta, sig_a, sig_b, kind in _with_and_without(linear_phase_fraction=1.0, extra="trace_digitiser_filter",
                                                      traces=40):
        assert kind == "linear-phase"
        p = meta.get("trace_p_arrival_sample", np.nan)
        if not np.isfinite(p) or np.isfinite(meta.get("trace_p2_arrival_sample", np.nan)):
            continue
        p, post = int(p), np.abs(sig_b[:, int(p):int(p) + 200]).max()
        assert np.abs(sig_b[:, :p - 100]).max() < 1e-3 * post          # nothing more than 1 s before the arrival
        assert np.abs(sig_a[:, :p]).max() < 1e-6 * post                # the minimum-phase record: nothing at all
        energy = (sig_b.astype(np.float64) ** 2).sum() / (sig_a.astype(np.float64) ** 2).sum()
        assert 0.75 < energy < 1.33
        rings += meta["trace_original_rate_hz"] <= 40 and np.abs(sig_b[:, p - 100:p]).max() > 0.05 * post
        checked += 1
    assert checked >= 15 and rings >= 3
    assert "trace_digitiser_filter" not in synthesize_trace(SynthConfig(seed=4), 0)[1]
    with pytest.raises(ValueError, match="linear_phase_fraction"):
        SynthConfig(linear_phase_fraction=2.0)
