"""Real noise under synthetic events: the bank keeps only quiet parts, and synthetic traces use it."""

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import T_START, make_stream

from seiscontrast.cli import main
from seiscontrast.data.noise_bank import NoiseBank, build_noise_bank, sensor_kind
from seiscontrast.data.synthetic import SynthConfig, synthesize_trace

EVENT_S = (70.0, 78.0)   # onset, and where the coda has decayed to twice the noise


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Four minutes of accelerometer noise (HN?) with a local event at 70 s."""
    st = make_stream(seconds=240.0, channels="HNZ,HNN,HNE", seed=4)
    rng = np.random.default_rng(0)
    t = np.arange(int(25 * 100)) / 100
    env = (1 - np.exp(-t / 0.05)) * np.exp(-t / 4.0)
    for tr in st:
        burst = np.convolve(rng.standard_normal(len(t)), np.hanning(9), "same") * env * 8
        i0 = int(EVENT_S[0] * 100)
        tr.data[i0:i0 + len(t)] += burst.astype(np.float32)
    path = tmp_path_factory.mktemp("noise") / "XX.ACC.mseed"
    st.write(str(path), format="MSEED")
    return path


@pytest.fixture(scope="module")
def bank(recording, tmp_path_factory):
    out, summary = build_noise_bank([str(recording)], tmp_path_factory.mktemp("bank") / "bank.h5", progress=False)
    return out, summary


def test_sensor_kinds_follow_seed_codes():
    assert [sensor_kind(c) for c in ("HNZ", "ENE", "EHZ", "SHN", "DPZ", "BHZ", "HHE")] == [
        "accelerometer", "accelerometer", "short-period", "short-period", "short-period", "broadband", "broadband"]


def test_bank_keeps_the_quiet_parts_and_leaves_the_event_out(bank):
    path, summary = bank
    with h5py.File(path) as f:
        spans = [(f[k].attrs["offset_s"], f[k].attrs["offset_s"] + len(f[k]) / 100.0, f[k].attrs["kind"]) for k in f]
    assert spans and all(kind == "accelerometer" for *_, kind in spans)
    assert all(b <= EVENT_S[0] or a >= EVENT_S[1] for a, b, _ in spans)      # nothing of the event
    kept = summary["seconds_by_kind"]["accelerometer"]
    assert 3 * 180 <= kept <= 3 * 230          # most of the 232 s outside the event, on each channel


def test_drawn_noise_has_the_asked_length_rate_and_level(bank):
    noise_bank = NoiseBank(bank[0])
    rng = np.random.default_rng(1)
    x, seg = noise_bank.draw(rng, 9000, 50.0)            # 180 s at 50 Hz from 100 Hz segments of ~60 s
    assert x.shape == (3, 9000) and np.isfinite(x).all() and seg.kind == "accelerometer"
    rms = np.sqrt((x.reshape(3, 30, 300) ** 2).mean(-1))
    assert rms.max() / rms.min() < 2.0                   # pieces joined without steps in level
    assert abs(np.corrcoef(x[1], x[2])[0, 1]) < 0.2       # components are not copies of each other


def test_synthetic_traces_take_real_noise_and_its_sensor(bank):
    cfg = SynthConfig(seed=2, noise_bank=str(bank[0]), real_noise_fraction=1.0, noise_fraction=0.0)
    for i in range(4):
        data, meta, signal, noise = synthesize_trace(cfg, i, return_parts=True)
        assert meta["trace_noise_source"] == "XX.ACC.mseed:XX.STA.HNZ"
        assert meta["station_instrument"] == "accelerometer" and meta["trace_channel"] == "HN"
        assert meta["trace_original_rate_hz"] == 100.0
        assert np.isfinite(data).all() and noise.std() > 0
    other = synthesize_trace(SynthConfig(seed=2, noise_bank=str(bank[0]), real_noise_fraction=0.0), 0)[1]
    assert other["trace_noise_source"] == "synthetic"


def test_velocity_noise_can_be_seen_by_a_colocated_accelerometer(tmp_path):
    """``colocated_accelerometer_fraction``: real noise from a broadband sensor becomes its time derivative (ground
    acceleration) at the same level above 1 Hz, the trace an accelerometer's (HN); picks and the noise drawn stay."""
    st = make_stream(seconds=240.0, channels="HHZ,HHN,HHE", seed=5)
    path = tmp_path / "XX.VEL.mseed"
    st.write(str(path), format="MSEED")
    bank = str(build_noise_bank([str(path)], tmp_path / "bank.h5", progress=False)[0])
    base = dict(seed=3, noise_bank=bank, real_noise_fraction=1.0, noise_fraction=0.0)
    for i in range(3):
        _, meta_v, _, noise_v = synthesize_trace(SynthConfig(**base), i, return_parts=True)
        _, meta_a, _, noise_a = synthesize_trace(SynthConfig(**base, colocated_accelerometer_fraction=1.0), i,
                                                 return_parts=True)
        assert meta_v["station_instrument"] == "broadband"
        assert meta_a["station_instrument"] == "accelerometer" and meta_a["trace_channel"] == "HN"
        assert meta_a["trace_noise_source"] == meta_v["trace_noise_source"] + " as acceleration"
        assert meta_a["trace_p_arrival_sample"] == meta_v["trace_p_arrival_sample"]
        derivative = np.gradient(noise_v.astype(np.float64), axis=-1)
        for c in range(3):
            assert np.corrcoef(derivative[c], noise_a[c])[0, 1] > 0.999
    with pytest.raises(ValueError, match="colocated_accelerometer_fraction"):
        SynthConfig(colocated_accelerometer_fraction=1.5)


def test_synth_command_cuts_a_bank_and_records_the_noise_source(recording, tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["synth", str(out), "--n-traces", "12", "--jobs", "1", "--real-noise", str(recording),
                 "--real-noise-fraction", "0.5", "-q"]) == 0
    assert "noise bank" in capsys.readouterr().out and (out / "noise_bank.h5").is_file()
    meta = pd.read_csv(out / "metadata.csv")
    sources = set(meta.trace_noise_source)
    assert "synthetic" in sources and "XX.ACC.mseed:XX.STA.HNZ" in sources


def test_colocated_accelerometers_without_real_noise_are_refused(tmp_path, capsys):
    """The option acts on real-noise traces only: without ``--real-noise`` it would silently do nothing."""
    out = tmp_path / "ds"
    assert main(["synth", str(out), "--n-traces", "4", "--colocated-accelerometers", "0.5", "-q"]) == 2
    assert "needs --real-noise" in capsys.readouterr().err and not out.exists()


def test_a_recording_without_quiet_parts_is_refused_by_name(tmp_path):
    st = make_stream(seconds=8.0, start=T_START)        # shorter than the shortest segment kept
    path = tmp_path / "short.mseed"
    st.write(str(path), format="MSEED")
    with pytest.raises(ValueError, match="short.mseed"):
        build_noise_bank([str(path)], tmp_path / "b.h5", progress=False)
    assert not (tmp_path / "b.h5").exists()


def test_an_unknown_dataset_name_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="NotADataset"):
        build_noise_bank(["NotADataset"], tmp_path / "b.h5", progress=False)
    assert not (tmp_path / "b.h5").exists()
