"""Pick-level scores (matching, references from pick columns or TauP) and the label-efficiency study end to end."""

import json

import numpy as np
import obspy
import pandas as pd
import pytest
import seisbench.data as sbd
from conftest import TINY_PRETRAIN
from obspy import UTCDateTime

from seiscontrast import pick_metrics as pm
from seiscontrast.config import load_config
from seiscontrast.pretrain import PretrainConfig, run_pretraining
from seiscontrast.report import ReportConfig, run_report


def test_matching_is_one_to_one_and_closest_first():
    # two picks compete for one reference: the closer one wins, the other is a false pick
    assert pm.match([10.3, 10.05], [10.0], 0.5) == pytest.approx([0.05])
    # a pick between two references serves only one of them
    assert pm.match([5.0], [4.8, 5.1], 0.5) == pytest.approx([-0.1])
    assert pm.match([1.0], [2.0], 0.5) == []
    assert sorted(pm.match([1.0, 2.0], [1.2, 1.9], 0.5)) == pytest.approx([-0.2, 0.1])


def test_precision_recall_f1_counts():
    t0 = UTCDateTime(0)
    refs = pm.ReferenceTraces(obspy.Stream(), {(0, "P"): [t0 + 10], (0, "S"): [t0 + 20], (1, "P"): [t0 + 5],
                                               (1, "S"): []}, 2, "x")
    picks = {(0, "P"): [t0 + 10.05, t0 + 30], (0, "S"): [t0 + 20.3], (1, "S"): [t0 + 7]}
    s = pm.score(picks, refs, (0.1, 0.5))
    # P: 2 references, 2 picks, 1 within 0.1 s and within 0.5 s
    assert s["P_0.1s_precision"] == pytest.approx(0.5) and s["P_0.1s_recall"] == pytest.approx(0.5)
    assert s["P_0.5s_f1"] == pytest.approx(2 * 1 / (2 + 2))
    # S: 1 reference, 2 picks; the 0.3 s pick is a hit only at 0.5 s
    assert s["S_0.1s_f1"] == 0.0
    assert s["S_0.5s_recall"] == 1.0 and s["S_0.5s_precision"] == pytest.approx(0.5)
    assert s["S_0.5s_mae"] == pytest.approx(0.3) and s["P_0.1s_mae"] == pytest.approx(0.05)
    assert s["P_n_reference"] == 2 and s["S_n_reference"] == 1


def test_window_pick_counts_by_hand():
    """Peaks of each run above the threshold are picks, label peaks above 0.5 onsets, matched within tolerance."""
    curve = np.array([0, 0.2, 0.5, 0.9, 0.4, 0.1, 0.35, 0.6, 0.2, 0.0])
    assert pm.curve_peaks(curve, 0.3) == [3, 7] and pm.curve_peaks(curve, 0.95) == []
    probs = np.zeros((1, 2, 100))
    labels = np.zeros((1, 2, 100))
    probs[0, 0, 20], probs[0, 0, 70] = 0.8, 0.6     # P: one hit (20 vs 23), one false pick
    labels[0, 0, 23] = 1.0
    labels[0, 1, 50] = 1.0                           # S: an onset nobody picked
    probs[0, 1, 90] = 0.2                            # below the threshold
    assert pm.window_pick_counts(probs, labels, 0.3, tolerance=5).tolist() == [1, 1, 1]
    assert pm.window_pick_counts(probs, labels, 0.3, tolerance=2).tolist() == [0, 2, 2]


def test_references_from_pick_columns(synth_dir):
    refs = pm.reference_traces(synth_dir, "test")
    md = sbd.WaveformDataset(synth_dir).test().metadata
    assert refs.n_traces == len(md) and len(refs.stream) == 3 * len(md)
    i = int(np.flatnonzero(md.trace_p_arrival_sample.notna())[0])
    row = md.iloc[i]
    expected = UTCDateTime(row.trace_start_time) + row.trace_p_arrival_sample / 100.0
    assert abs(refs.onsets[(i, "P")][0] - expected) < 1e-6
    merged = pm.merge([refs, pm.reference_traces(synth_dir, "dev")], "both")
    assert merged.n_traces == len(md) + len(sbd.WaveformDataset(synth_dir).dev())
    assert merged.onsets[(i, "P")] == refs.onsets[(i, "P")]


def _real_like_dataset(path, coordinates=True, n=4):
    """A SeisBench folder like the dummy dataset: traces start at the origin, no picks, only coordinates."""
    rng = np.random.default_rng(0)
    path.mkdir()
    with sbd.WaveformDataWriter(path / "metadata.csv", path / "waveforms.hdf5") as writer:
        writer.data_format = {"dimension_order": "CW", "component_order": "ZNE", "sampling_rate": 20}
        for i in range(n):
            meta = {"trace_start_time": str(UTCDateTime(2020, 1, 1) + 600 * i), "trace_sampling_rate_hz": 20,
                    "station_network_code": "CX", "station_code": "PB01", "split": "test"}
            if coordinates:
                meta.update(source_latitude_deg=-21.0, source_longitude_deg=-69.5 + 0.2 * i, source_depth_km=30.0,
                            station_latitude_deg=-21.04, station_longitude_deg=-69.49)
            writer.add_trace(meta, rng.standard_normal((3, 1200)).astype(np.float32))
    return path


def test_references_from_taup_and_clear_error_without(tmp_path):
    refs = pm.reference_traces(_real_like_dataset(tmp_path / "real"))
    p, s = refs.onsets[(0, "P")][0], refs.onsets[(0, "S")][0]
    origin = UTCDateTime(2020, 1, 1)
    assert 3 < p - origin < s - origin < 15   # ~30 km hypocentral distance: P ~5 s, S ~9 s after the origin
    with pytest.raises(ValueError, match="bare"):
        pm.reference_traces(_real_like_dataset(tmp_path / "bare", coordinates=False))


@pytest.mark.slow
def test_study_end_to_end_and_resumable(synth_dir, tmp_path, monkeypatch):
    pre = tmp_path / "pre"
    run_pretraining(load_config(PretrainConfig, None, [*TINY_PRETRAIN, f"data.sources=['{synth_dir}']",
                                                      "optim.max_steps=2"]), pre, progress=False)
    real = _real_like_dataset(tmp_path / "real")
    cfg = ReportConfig(counts=[8, 16], include_all=False, seeds=[0, 1], select_schedule_at=8, real_data=[str(real)],
                       finetune_configs=["configs/finetune_full.yaml", "configs/finetune_frozen.yaml"],
                       common_overrides=["optim.max_steps=2", "optim.warmup_steps=1", "trainer.batch_size=4",
                                         "trainer.val_every_n_steps=0", "window.length=1024", "picker.head.hidden=8"])
    out = tmp_path / "study"
    summary = run_report(cfg, [str(synth_dir)], out, pretrained=str(pre / "model.pt"), progress=False)
    runs = pd.read_csv(out / "report_runs.csv")
    # both schedules at the selection size, the headline also at 16; baselines at both sizes; two seeds
    cells = runs.drop_duplicates(["model", "size", "seed"])
    headline = [m for m in cells.model.unique() if m.startswith("pretrained") and (cells.model == m).sum() == 4]
    assert len(headline) == 1 and len(cells) == 2 * 2 + 2 + 2 * 2 * 2
    assert set(runs.set) == {"dev", "synthetic test", "real: real"}
    assert dict(zip(cells["size"].astype(str), cells.n_traces)) == {"8": 8, "16": 16}
    f1 = summary[(summary.metric == "P_0.5s_f1") & (summary.set == "synthetic test")]
    assert ((f1["mean"] >= 0) & (f1["mean"] <= 1)).all() and (f1.n_seeds == 2).all()
    text = (out / "report.md").read_text()
    assert f"**{headline[0]}**" in text and "real: real" in text and "Verdict" in text
    assert (out / "label_efficiency.png").stat().st_size > 10_000
    scores = json.loads(next(out.glob("runs/8/seed0/scratch/scores.json")).read_text())
    assert 0 < scores["sets"]["dev"]["threshold"] < 1

    # resuming: nothing is trained again, and the result is the same
    import seiscontrast.finetune as finetune

    monkeypatch.setattr(finetune, "run_finetuning", lambda *a, **k: pytest.fail("a finished cell was retrained"))
    again = run_report(cfg, [str(synth_dir)], out, pretrained=str(pre / "model.pt"), progress=False)
    pd.testing.assert_frame_equal(summary, again)
