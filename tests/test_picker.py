"""The picker as a SeisBench WaveformModel: annotate/classify, weight formats, empty data."""

import numpy as np
import pytest
import seisbench.util as sbu
import torch
from obspy import Stream, Trace, UTCDateTime

from seiscontrast.config import load_config
from seiscontrast.finetune import FinetuneConfig, run_finetuning
from seiscontrast.picker import SeisContrastPicker, load_picker_model

T0 = UTCDateTime(2022, 3, 1)


@pytest.fixture(scope="module")
def tiny_picker_file(synth_dir, tmp_path_factory):
    cfg = load_config(FinetuneConfig, None, [
        "window.length=1024", "picker.model.encoder.channels=[16,16]",
        "picker.model.context.dim=16", "picker.model.context.num_heads=2", "picker.model.context.depths=[1,1,1]",
        "picker.model.quantizer.dim=16", "picker.model.final_dim=16", "picker.head.hidden=8",
        "optim.max_steps=3", "optim.warmup_steps=1", "trainer.batch_size=4", "trainer.val_every_n_steps=0",
        f"data.sources=['{synth_dir}']"])
    return run_finetuning(cfg, tmp_path_factory.mktemp("tinypicker") / "run", progress=False)


def _stream(seconds=100, rate=100.0, fill=None, seed=0):
    rng = np.random.default_rng(seed)
    st = Stream()
    for comp in "ZNE":
        data = rng.standard_normal(int(seconds * rate)).astype(np.float32) if fill is None else \
            np.full(int(seconds * rate), fill, np.float32)
        tr = Trace(data)
        tr.stats.update(dict(network="XX", station="AAA", channel=f"HH{comp}", sampling_rate=rate, starttime=T0))
        st += tr
    return st


def test_annotate_and_classify_like_phasenet(tiny_picker_file):
    model = SeisContrastPicker.from_file(tiny_picker_file)
    ann = model.annotate(_stream())
    channels = sorted(tr.stats.channel for tr in ann)
    assert channels == sorted(f"SeisContrastPicker_{p}" for p in "PSND")
    assert all(tr.stats.sampling_rate == 100 for tr in ann)
    assert ann[0].stats.endtime - ann[0].stats.starttime > 90
    out = model.classify(_stream(), P_threshold=0.01, S_threshold=0.01)
    assert isinstance(out.picks, sbu.PickList) and len(out.picks) > 0   # at 0.01 even an untrained net picks
    for p in out.picks:
        assert p.phase in "PS" and 0 <= p.peak_value <= 1 and p.start_time <= p.peak_time


def test_resampling_and_z12_handled_by_seisbench(tiny_picker_file):
    model = SeisContrastPicker.from_file(tiny_picker_file)
    st = _stream(rate=40.0)
    for tr, ch in zip(st, ("HHZ", "HH1", "HH2")):
        tr.stats.channel = ch
    ann = model.annotate(st)
    assert len(ann) == 4 and ann[0].stats.sampling_rate == 100


def test_seisbench_weight_format_round_trip(tiny_picker_file, tmp_path):
    model = SeisContrastPicker.from_file(tiny_picker_file)
    model.save(tmp_path / "mymodel")
    assert (tmp_path / "mymodel.json").is_file() and (tmp_path / "mymodel.pt").is_file()
    again = SeisContrastPicker.load(tmp_path / "mymodel", weights_only=True)
    x = torch.randn(2, 3, 1024)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), again.eval()(x))
    via_loader = load_picker_model(str(tmp_path / "mymodel.json"))
    assert isinstance(via_loader, SeisContrastPicker)


@pytest.mark.parametrize("fill", [0.0, 3.0, np.nan])
def test_no_picks_from_empty_data(tiny_picker_file, fill):
    model = SeisContrastPicker.from_file(tiny_picker_file)
    picks = model.classify(_stream(fill=fill), P_threshold=1e-6, S_threshold=1e-6).picks
    assert len(picks) == 0


def test_pretrained_backbone_is_not_a_picker(tmp_path):
    from seiscontrast.checkpoints import ModelSpec, save_model_file
    from seiscontrast.model import ModelConfig

    save_model_file(tmp_path / "m.pt", ModelSpec("pretrained", model=ModelConfig()), {})
    with pytest.raises(ValueError, match="pretrained"):
        load_picker_model(str(tmp_path / "m.pt"))
    with pytest.raises(FileNotFoundError, match="nope"):
        load_picker_model("nope.pt")


def test_window_highpass_filters_each_trace_before_picking(tiny_picker_file):
    """A model whose window has a high-pass filters what it picks, by default; ``highpass=0`` turns it off, and a
    SeisBench model refuses the setting instead of ignoring it."""
    import copy

    import seisbench.models as sbm

    from seiscontrast.data.windows import highpass
    from seiscontrast.pick import PickSettings

    plain = SeisContrastPicker.from_file(tiny_picker_file)
    config = copy.deepcopy(plain.config)
    config["window"]["highpass"] = 1.0
    filtered = SeisContrastPicker(config, net=plain.net).eval()
    assert filtered.default_args["highpass"] == 1.0 and "highpass" not in plain.default_args
    st = _stream(seed=3)
    for tr in st:
        tr.data += 500 * np.sin(2 * np.pi * 0.2 * tr.times()).astype(np.float32)
    pre = st.copy()
    for tr in pre:
        tr.data = highpass(tr.data, tr.stats.sampling_rate, 1.0)
    a, b, c = filtered.annotate(st), plain.annotate(pre), filtered.annotate(st, highpass=0)
    np.testing.assert_allclose(a[0].data, b[0].data, atol=1e-5)
    assert not np.allclose(a[0].data, c[0].data, atol=1e-3)
    assert PickSettings(highpass=2.0).annotate_args(filtered)["highpass"] == 2.0
    with pytest.raises(ValueError, match="high-pass"):
        PickSettings(highpass=1.0).annotate_args(sbm.PhaseNet())
    with pytest.raises(ValueError, match=r"XX.AAA..HH.: a high-pass at 1 Hz needs data sampled above 2 Hz"):
        filtered.annotate(_stream(rate=1.0), highpass=1.0)


@pytest.mark.parametrize("option, value, message", [
    ("--highpass", "-1", "high-pass corner must be >= 0 Hz"), ("--p-threshold", "1.5", "P threshold must be"),
    ("--s-threshold", "0", "S threshold must be"), ("--overlap", "-2", "overlap must be >= 0"),
    ("--batch-size", "0", "batch size must be >= 1")])
def test_pick_settings_out_of_range_are_refused_up_front(tmp_path, option, value, message, capsys):
    """A bad picking setting stops ``seiscontrast pick`` with one line naming it, before any model or file loads."""
    from seiscontrast.cli import main

    assert main(["pick", str(tmp_path / "absent.mseed"), "--model", str(tmp_path / "absent.pt"), option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and value in err and "absent" not in err


def tiny_picker_spec(**head):
    """The spec of a tiny seiscontrast picker (8-channel head) with these head settings."""
    from seiscontrast.checkpoints import ModelSpec
    from seiscontrast.config import config_from_dict
    from seiscontrast.heads import PickerConfig

    picker = config_from_dict(PickerConfig, {"model": {
        "encoder": {"channels": [8, 8]}, "context": {"dim": 16, "num_heads": 2, "depths": [1, 1, 1]},
        "quantizer": {"dim": 16}, "final_dim": 16}, "head": {"hidden": 8, **head}})
    return ModelSpec("picker", picker=picker, labels="PSND")


@pytest.mark.parametrize("batchnorm, detection", [(False, True), (True, False)])
def test_a_unet_head_picker_file_loads_with_its_weights(tmp_path, batchnorm, detection):
    from seiscontrast.checkpoints import load_model, save_model_file
    from seiscontrast.heads import UNetPickingHead

    spec = tiny_picker_spec(unet_channels=[4, 8, 8], unet_batchnorm=batchnorm, detection=detection)
    net = spec.build()
    net(3 + 2 * torch.randn(4, 3, 1000))        # batch statistics move the running ones away from their start
    net.eval()
    save_model_file(tmp_path / "unet.pt", spec, net.state_dict())
    loaded = load_model(tmp_path / "unet.pt", kind="picker")
    assert isinstance(loaded.net.head, UNetPickingHead) and loaded.spec.picker.head.unet_channels == [4, 8, 8]
    x = torch.randn(1, 3, 1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(x).log_probs, net(x).log_probs)


@pytest.mark.parametrize("written_as", ["spec", "run config"])
def test_a_picker_file_from_before_head_detection_keeps_its_detection_output(tmp_path, written_as):
    """Heads have no detection output by default now; a file whose config does not name ``head.detection`` was
    written when they all had one, and must load as such, with its weights."""
    from seiscontrast.checkpoints import FORMAT, load_model
    from seiscontrast.config import config_to_dict
    from seiscontrast.heads import HeadConfig

    assert not HeadConfig().detection
    spec = tiny_picker_spec(detection=True)
    net = spec.build().eval()
    old = config_to_dict(spec)
    del old["picker"]["head"]["detection"]
    payload = {"format": FORMAT, "kind": "picker", "state_dict": net.state_dict(), "meta": {}}
    payload.update({"spec": old, "config": {}} if written_as == "spec" else
                   {"spec": None, "config": {"picker": old["picker"], "window": old["window"]}})
    torch.save(payload, tmp_path / "old.pt")
    loaded = load_model(tmp_path / "old.pt", kind="picker")
    assert loaded.spec.picker.head.detection and loaded.net.head.out.out_channels == 4
    x = torch.randn(1, 3, 1000)
    with torch.no_grad():
        torch.testing.assert_close(loaded.net(x).detection, net(x).detection)


def test_calibrate_chooses_each_phases_best_threshold_and_picking_uses_it(tiny_picker_file, synth_dir, tmp_path):
    """``seiscontrast calibrate --data``: per phase the threshold with the best dev F1, stored in a copy of the
    file with the same weights; picking then uses it unless told otherwise, and ``--p/s-threshold`` set it."""
    from seiscontrast import pick_metrics
    from seiscontrast.checkpoints import read_model_file
    from seiscontrast.cli import main
    from seiscontrast.pick import PickSettings, model_thresholds

    out = tmp_path / "calibrated.pt"
    candidates = [0.05, 0.3, 0.6]
    assert main(["calibrate", str(tiny_picker_file), "--data", str(synth_dir), "--thresholds", *map(str, candidates),
                 "--out", str(out)]) == 0
    original = load_picker_model(str(tiny_picker_file))
    dev = pick_metrics.reference_traces(synth_dir, "dev")
    table = pick_metrics.threshold_table(original, pick_metrics.annotate(original, dev), dev, 0.5, candidates)
    expected = {p: candidates[int(np.argmax(table[f"{p} f1"].fillna(-1).to_numpy()))] for p in "PS"}
    calibrated = load_picker_model(str(out))
    assert model_thresholds(calibrated) == expected and model_thresholds(original) == {"P": 0.3, "S": 0.3}
    assert PickSettings().annotate_args(calibrated)["S_threshold"] == expected["S"]
    assert PickSettings(p_threshold=0.7).for_model(calibrated).p_threshold == 0.7
    before, after = read_model_file(tiny_picker_file)[1], read_model_file(out)[1]
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert main(["calibrate", str(out), "--p-threshold", "0.45", "--s-threshold", "0.55"]) == 0   # in place
    assert model_thresholds(load_picker_model(str(out))) == {"P": 0.45, "S": 0.55}
    assert "set by hand" in read_model_file(out)[2]["thresholds_source"]


def test_picking_keeps_a_seisbench_models_own_thresholds():
    """Weights that carry thresholds (SeisBench's ``default_args``) pick at them unless told otherwise."""
    import seisbench.models as sbm

    from seiscontrast.pick import PickSettings

    model = sbm.PhaseNet()
    model.default_args.update(P_threshold=0.44)
    args = PickSettings().annotate_args(model)
    assert args["P_threshold"] == 0.44 and args.get("S_threshold", 0.3) == 0.3
    assert PickSettings(p_threshold=0.2).annotate_args(model)["P_threshold"] == 0.2


@pytest.mark.parametrize("argv, message", [
    ([], "give --data to choose the thresholds"),
    (["--p-threshold", "0.5"], "both --p-threshold and --s-threshold"),
    (["--p-threshold", "1.5", "--s-threshold", "0.5"], "probabilities in (0, 1]"),
    (["--data", "no_such_dataset_folder"], "'no_such_dataset_folder' is neither a folder")])
def test_calibrate_refuses_what_it_cannot_do(tiny_picker_file, tmp_path, argv, message, capsys):
    from seiscontrast.checkpoints import ModelSpec, save_model_file
    from seiscontrast.cli import main
    from seiscontrast.model import ModelConfig

    assert main(["calibrate", str(tiny_picker_file), *argv, "--out", str(tmp_path / "x.pt")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
    save_model_file(tmp_path / "backbone.pt", ModelSpec("pretrained", model=ModelConfig()), {})
    assert main(["calibrate", str(tmp_path / "backbone.pt"), "--p-threshold", "0.5", "--s-threshold", "0.5"]) == 2
    assert "backbone.pt" in capsys.readouterr().err
