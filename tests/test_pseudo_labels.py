"""Pseudo-labels for self-training: the consensus rule, the augmentations, and a labelled folder end to end."""

import numpy as np
import obspy
import pytest
import seisbench.data as sbd
from obspy import UTCDateTime

from seiscontrast.data import WindowConfig, open_dataset
from seiscontrast.data.synthetic import SynthConfig, synthesize_trace
from seiscontrast.picker import load_picker_model
from seiscontrast.pseudo_labels import (
    AUGMENTATIONS,
    PseudoLabelConfig,
    augment,
    consensus,
    noise_level,
    write_pseudo_labels,
)

T = UTCDateTime(2024, 5, 1)


def _runs(p=(0.0,) * 5, s=(5.0,) * 5, prob=0.9):
    """Runs in which every run picks P at ``T + p[k]`` and S at ``T + s[k]`` (None: no pick in that run)."""
    names = ("plain", *AUGMENTATIONS)
    return {name: [(ph, T + t, prob) for ph, times in (("P", p), ("S", s)) if (t := times[k]) is not None]
            for k, name in enumerate(names)}


def test_consistent_picks_become_labels_at_their_median():
    labels, reason = consensus(_runs(p=(0.0, 0.05, -0.05, 0.1, 0.02)), PseudoLabelConfig())
    assert reason == "kept" and set(labels) == {"P", "S"}
    assert labels["P"] == T + 0.02 and labels["S"] == T + 5.0


@pytest.mark.parametrize("runs, cfg, reason", [
    (_runs(p=(0.0, 0.0, 0.0, 0.3, 0.0)), PseudoLabelConfig(), "P not picked once within 0.2 s under shifted_windows"),
    (_runs(s=(5.0, None, 5.0, 5.0, 5.0)), PseudoLabelConfig(), "S not picked once within 0.2 s under polarity"),
    (_runs(prob=0.4), PseudoLabelConfig(), "P probability 0.40 < 0.5"),
    (_runs(s=(None, 5.0, None, None, None)), PseudoLabelConfig(), "S picked by some augmented runs only"),
    (_runs(s=(None,) * 5), PseudoLabelConfig(), "no consistent S"),
    (_runs(p=(None,) * 5, s=(None,) * 5), PseudoLabelConfig(require=""), "no picks"),
])
def test_a_doubtful_record_gets_no_labels_and_says_why(runs, cfg, reason):
    assert consensus(runs, cfg) == ({}, reason)


def test_two_picks_of_one_phase_make_a_record_doubtful():
    runs = _runs()
    runs["plain"].append(("P", T + 2.0, 0.9))
    assert consensus(runs, PseudoLabelConfig()) == ({}, "2 P picks")


def test_require_nothing_keeps_a_record_with_p_only():
    labels, reason = consensus(_runs(s=(None,) * 5), PseudoLabelConfig(require=""))
    assert reason == "kept" and set(labels) == {"P"}


def test_config_rejects_bad_values():
    for bad in (dict(min_probability=0.0), dict(agreement=0.0), dict(require="PX")):
        with pytest.raises(ValueError):
            PseudoLabelConfig(**bad)


def _stream(rate=20.0, seconds=60.0, seed=0):
    rng = np.random.default_rng(seed)
    st = obspy.Stream()
    for comp in "ZNE":
        st += obspy.Trace(rng.standard_normal(int(rate * seconds)).astype(np.float32),
                          dict(network="XX", station="AB", channel=f"HH{comp}", sampling_rate=rate, starttime=T))
    return st


def test_augmentations_change_a_copy_only():
    st = _stream()
    before = [tr.data.copy() for tr in st]
    cfg = PseudoLabelConfig()
    np.testing.assert_array_equal(augment(st, "polarity", cfg)[0].data, -before[0])
    swapped = augment(st, "swap_horizontals", cfg)
    np.testing.assert_array_equal(swapped.select(component="N")[0].data, before[2])
    np.testing.assert_array_equal(swapped.select(component="E")[0].data, before[1])
    np.testing.assert_array_equal(augment(st, "shifted_windows", cfg)[0].data, before[0])   # the grid moves, not data
    noisy = augment(st, "noise", cfg)
    added = np.stack([tr.data for tr in noisy]) - np.stack(before)
    level = noise_level(np.stack(before), 20.0)
    np.testing.assert_allclose(added.std(1), cfg.noise * level, rtol=0.05)
    for tr, b in zip(st, before):
        np.testing.assert_array_equal(tr.data, b)
    with pytest.raises(ValueError, match="unknown augmentation 'reverse'"):
        augment(st, "reverse", cfg)


def test_noise_level_is_the_quiet_background_not_the_event():
    x = np.random.default_rng(1).standard_normal((3, 6000))
    x[:, 3000:3500] *= 100.0                     # a strong event over 5 of 60 s
    assert np.all(noise_level(x, 100.0) < 1.2)


@pytest.fixture(scope="module")
def unlabelled_records(tmp_path_factory):
    """Clear synthetic events written as a SeisBench folder without any pick columns (as converted real records
    are), half of them at 20 Hz; returns the folder and the true onsets by trace name."""
    out = tmp_path_factory.mktemp("unlabelled") / "ds"
    cfg = SynthConfig(seed=5, noise_fraction=0.0, second_event_fraction=0.0, magnitude_range=[2.5, 3.5],
                      distance_range=[15.0, 60.0], trace_duration=60.0, p_onset_range=[10.0, 20.0])
    truth, i = {}, 0
    with sbd.WaveformDataWriter(out / "metadata.csv", out / "waveforms.hdf5") as writer:
        writer.data_format = {"dimension_order": "CW", "component_order": "ZNE"}
        while len(truth) < 6:
            data, meta = synthesize_trace(cfg, i)
            i += 1
            if (meta["trace_snr_p_db"] < 30 or meta["trace_snr_s_db"] < 30 or meta["trace_p_onset"] != "impulsive"
                    or meta["trace_artefacts"] or not np.isfinite(meta["trace_s_arrival_sample"])):
                continue
            rate, step = (20.0, 5) if len(truth) % 2 else (100.0, 1)
            writer.add_trace({"trace_name": f"rec{len(truth)}", "trace_start_time": str(T), "split": "train",
                              "trace_sampling_rate_hz": rate, "station_network_code": "XX", "station_code": "AB"},
                             data[:, ::step])
            truth[f"rec{len(truth)}"] = (meta["trace_p_arrival_sample"] / 100, meta["trace_s_arrival_sample"] / 100)
    return out, truth


def test_pseudo_labelled_folder_holds_the_consistent_onsets(unlabelled_records, tmp_path):
    folder, truth = unlabelled_records
    table = write_pseudo_labels(load_picker_model("default"), folder, tmp_path / "pl", progress=False)
    assert list(table.trace_name) == list(truth) and (tmp_path / "pl" / "pseudo_labels.csv").is_file()
    kept = table[table.decision == "kept"]
    assert len(kept) >= 4, table.decision.tolist()
    for _, row in kept.iterrows():
        p, s = truth[row.trace_name]
        assert abs(UTCDateTime(row.P_time) - (T + p)) < 0.2 and abs(UTCDateTime(row.S_time) - (T + s)) < 0.3
    # a folder the picking trainer reads: labels in samples of each record's own rate, resampled with the waveform
    ds = open_dataset(tmp_path / "pl", WindowConfig(sampling_rate=100.0))
    meta = ds.metadata.set_index("trace_name_original")
    assert set(meta.index) == set(kept.trace_name) and (meta.split == "train").all()
    for name, row in meta.iterrows():
        rate = row.trace_sampling_rate_hz
        assert row.trace_p_arrival_sample / rate == pytest.approx(UTCDateTime(kept.set_index("trace_name").P_time[name]) - T)
    with pytest.raises(FileExistsError):
        write_pseudo_labels(load_picker_model("default"), folder, tmp_path / "pl", progress=False)


def test_an_empty_split_is_an_error_before_anything_is_written(unlabelled_records, tmp_path):
    folder, _ = unlabelled_records
    with pytest.raises(ValueError, match="no traces in the split"):
        write_pseudo_labels(load_picker_model("default"), folder, tmp_path / "x", splits=("test",), progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(ValueError, match="neither a folder nor a SeisBench dataset class"):
        write_pseudo_labels(load_picker_model("default"), tmp_path / "missing", tmp_path / "y", progress=False)


def test_records_get_channel_codes_for_their_rate(unlabelled_records):
    from seiscontrast.pseudo_labels import band_code, dataset_streams

    assert [band_code(r) for r in (200.0, 100.0, 40.0, 20.0, 5.0, 0.5)] == ["H", "H", "B", "B", "M", "L"]
    ds = sbd.WaveformDataset(unlabelled_records[0], sampling_rate=None, component_order="ZNE")
    channels = [[tr.stats.channel for tr in st] for _, st in dataset_streams(ds)]
    assert channels[:2] == [["HHZ", "HHN", "HHE"], ["BHZ", "BHN", "BHE"]]


def test_a_silent_record_gets_no_labels():
    from seiscontrast.pseudo_labels import run_picks

    st = _stream()
    for tr in st:
        tr.data[:] = 0.0
    runs = run_picks(load_picker_model("default"), st, PseudoLabelConfig())
    assert set(runs) == {"plain", *AUGMENTATIONS} and not any(runs.values())
    assert consensus(runs, PseudoLabelConfig()) == ({}, "no consistent P or S")
