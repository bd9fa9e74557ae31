"""Archive picking: chunk plans (files and SDS), picks at chunk edges made exactly once, resume after SIGKILL,
shards that partition the work, worker processes, SeisBench models by name (offline), refusal to mix settings."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from obspy import Stream, Trace, UTCDateTime

from seiscontrast.archive import ArchiveConfig, parse_shard, plan_files, plan_sds
from seiscontrast.data.synthetic_archive import write_sds_archive

START = UTCDateTime(2024, 1, 1, 23, 40)
# P onsets (s after START): on a 300 s chunk edge, S across an edge, P and S either side of midnight, on an edge
EVENTS = [300.0, 598.5, 1197.5, 1500.0]


def _pick(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "seiscontrast.cli", "pick", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def _sds_args(root, out, *extra):
    return ["--sds", str(root), "--start", "2024-01-01", "--end", "2024-01-03", "--out", str(out), "-q", *extra]


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("sds")
    truth = write_sds_archive(root, START, START + 1800, ["A01", "B02"], EVENTS)
    return root, truth


@pytest.fixture(scope="module")
def chunked(archive, tmp_path_factory):
    root, _ = archive
    out = tmp_path_factory.mktemp("chunked") / "picks.csv"
    res = _pick(*_sds_args(root, out, "--chunk", "300"))
    assert res.returncode == 0, res.stderr
    return pd.read_csv(out)


def _same_picks(a: pd.DataFrame, b: pd.DataFrame, tol: float = 0.0):
    assert len(a) == len(b)
    for (_, x), (_, y) in zip(a.iterrows(), b.iterrows()):
        assert (x.station, x.phase) == (y.station, y.phase)
        assert abs(UTCDateTime(x.time) - UTCDateTime(y.time)) <= tol


def test_chunk_edge_events_picked_exactly_once(archive, chunked):
    _, truth = archive
    for (_, phase), group in chunked.groupby(["station", "phase"]):   # nothing doubled anywhere
        times = sorted(UTCDateTime(t) for t in group.time)
        assert all(b - a > 1.0 for a, b in zip(times, times[1:])), (phase, times)
    for row in truth.itertuples():                                   # nothing lost
        sta = chunked[chunked.station == row.station]
        for phase, t in (("P", row.p_time), ("S", row.s_time)):
            near = [UTCDateTime(x) - t for x in sta[sta.phase == phase].time]
            assert sum(abs(d) <= 0.5 for d in near) == 1, (row.station, phase, t, near)


def test_chunking_does_not_change_picks(archive, chunked, tmp_path):
    root, _ = archive
    res = _pick(*_sds_args(root, tmp_path / "day.csv"))        # one chunk per station-day
    assert res.returncode == 0, res.stderr
    _same_picks(chunked, pd.read_csv(tmp_path / "day.csv"), tol=0.05)


def test_resume_after_sigkill_gives_the_same_picks(archive, chunked, tmp_path):
    root, _ = archive
    out = tmp_path / "picks.csv"
    args = [sys.executable, "-m", "seiscontrast.cli", "pick", *_sds_args(root, out, "--chunk", "300")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunk_dir = tmp_path / "picks_chunks" / "chunks"
    deadline = time.time() + 300
    while time.time() < deadline and not (chunk_dir.is_dir() and len(list(chunk_dir.glob("*.json"))) >= 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(chunk_dir.glob("*.json")))
    assert 2 <= done < 12 and not out.exists()         # killed mid-run: some chunks saved, no output yet
    res = subprocess.run([a for a in args if a != "-q"], capture_output=True, text=True, timeout=600)   # same, not -q
    assert res.returncode == 0, res.stderr
    assert "resuming" in res.stderr and f"{done} of 12" in res.stderr
    _same_picks(chunked, pd.read_csv(out))


def test_shards_partition_the_work_and_the_last_writes_the_output(archive, chunked, tmp_path):
    root, _ = archive
    out = tmp_path / "picks.csv"
    first = _pick(*_sds_args(root, out, "--chunk", "300", "--shard", "0/2", "--jobs", "2"))
    assert first.returncode == 0, first.stderr
    assert "6 of 12 chunks" in first.stdout and not out.exists()
    second = _pick(*_sds_args(root, out, "--chunk", "300", "--shard", "1/2"))
    assert second.returncode == 0, second.stderr
    _same_picks(chunked, pd.read_csv(out))
    other = _pick(*_sds_args(root, out, "--chunk", "300", "--p-threshold", "0.5"))
    assert other.returncode == 2 and "--restart" in other.stderr and "pick" in other.stderr


def test_shard_lists_cover_every_chunk_once(archive):
    root, _ = archive
    plan = plan_sds(root, UTCDateTime(2024, 1, 1), UTCDateTime(2024, 1, 3), [], ArchiveConfig(chunk=300))
    ids = [c.id for c in plan.chunks]
    assert len(ids) == len(set(ids)) == 2 * 6                       # 2 stations x 30 min of data in 300 s chunks
    edges = [(c.t0, c.t1) for c in plan.chunks if c.station == "SX.A01..HH"]
    assert edges[0][0] == START and all(a[1] == b[0] for a, b in zip(edges, edges[1:]))   # contiguous
    for n in (1, 3, 7):
        parts = [c.id for i in range(n) for c in plan.shard(i, n)]
        assert sorted(parts) == sorted(ids)
    assert parse_shard("2/8") == (2, 8)
    for bad in ("8/8", "1", "a/b", "-1/3"):
        with pytest.raises(ValueError, match="shard"):
            parse_shard(bad)


def test_sds_selection_with_wildcards(archive, tmp_path):
    root, _ = archive
    day = (UTCDateTime(2024, 1, 1), UTCDateTime(2024, 1, 2))
    plan = plan_sds(root, *day, ["SX.A*..HH?"], ArchiveConfig())
    assert {c.station for c in plan.chunks} == {"SX.A01..HH"}
    assert [(c.t0, c.t1) for c in plan.chunks] == [(START, day[1])]      # the data within the requested time
    plan = plan_sds(root, *day, ["SX.B02..HHZ", "XX.*"], ArchiveConfig())
    assert {c.station for c in plan.chunks} == {"SX.B02..HH"} and plan.chunks[0].channels == ("HHZ",)
    with pytest.raises(ValueError, match="ZZ.NONE"):
        plan_sds(root, *day, ["ZZ.NONE.*.*"], ArchiveConfig())
    with pytest.raises(FileNotFoundError, match="nowhere"):
        plan_sds(tmp_path / "nowhere", *day, [], ArchiveConfig())


def _write(path, station, start, seconds, rate=100.0, channels="HHZ,HHN,HHE"):
    st = Stream()
    for k, ch in enumerate(channels.split(",")):
        st += Trace(np.random.default_rng(k).standard_normal(int(seconds * rate)).astype(np.float32),
                    header=dict(network="EV", station=station, channel=ch, sampling_rate=rate, starttime=start))
    st.write(str(path), format="MSEED")


def test_event_files_months_apart_are_separate_records(tmp_path):
    times = [UTCDateTime(2021, 3, 1, 4), UTCDateTime(2021, 9, 12, 17, 59, 30), UTCDateTime(2022, 1, 5)]
    for k, t in enumerate(times):
        _write(tmp_path / f"ev{k}.mseed", "MON", t, 90)
    plan = plan_files([tmp_path], ArchiveConfig(chunk=3600), pad=45)
    spans = [(c.t0, c.t1) for c in plan.chunks]
    # three records of 90 s, the second cut at the hour; never months of zero-filled samples
    assert spans == [(times[0], times[0] + 90), (times[1], UTCDateTime(2021, 9, 12, 18)),
                     (UTCDateTime(2021, 9, 12, 18), times[1] + 90), (times[2], times[2] + 90)]
    assert all(c.sources == (str(tmp_path / f"ev{k}.mseed"),) for c, k in zip(plan.chunks, [0, 1, 1, 2]))


def test_low_rate_channels_skipped_with_a_warning(tmp_path):
    _write(tmp_path / "lh.mseed", "LOW", UTCDateTime(2021, 1, 1), 3600, rate=1.0, channels="LHZ,LHN,LHE")
    plan = plan_files([tmp_path], ArchiveConfig(), pad=45)
    assert plan.chunks == [] and len(plan.report.warnings) == 3 and "1 Hz" in plan.report.warnings[0][1]
    plan = plan_files([tmp_path], ArchiveConfig(min_rate=1.0), pad=45)   # on request
    assert len(plan.chunks) == 1


def test_low_rate_sds_channels_skipped_once_unless_asked(tmp_path):
    write_sds_archive(tmp_path, UTCDateTime(2024, 1, 1, 20), UTCDateTime(2024, 1, 2, 4), ["L01"], fs=1.0,
                      channels="LH")
    span = (UTCDateTime(2024, 1, 1), UTCDateTime(2024, 1, 3))
    plan = plan_sds(tmp_path, *span, [], ArchiveConfig())
    assert plan.chunks == [] and len(plan.report.warnings) == 3                      # once per channel, 2 days
    assert all("1 Hz is far below" in m for _, m in plan.report.warnings)
    plan = plan_sds(tmp_path, *span, [], ArchiveConfig(min_rate=1.0))                # on request
    assert [(c.t0, c.t1) for c in plan.chunks] == [(UTCDateTime(2024, 1, 1, 20), UTCDateTime(2024, 1, 2)),
                                                   (UTCDateTime(2024, 1, 2), UTCDateTime(2024, 1, 2, 4))]


def test_fifo_is_reported_by_name(tmp_path):
    fifo = tmp_path / "pipe.mseed"
    os.mkfifo(fifo)
    plan = plan_files([fifo], ArchiveConfig(), pad=45)
    assert plan.report.errors == [(str(fifo), "not a regular file (a FIFO, socket or device); skipped")]


def test_seisbench_model_names():
    from seiscontrast.picker import load_picker_model, parse_seisbench_name, seisbench_pickers

    assert parse_seisbench_name("seisbench:PhaseNet:instance") == ("PhaseNet", "instance", "latest")
    assert parse_seisbench_name("seisbench:EQTransformer:original:2") == ("EQTransformer", "original", "2")
    assert {"PhaseNet", "EQTransformer", "PhaseNetLight"} <= set(seisbench_pickers())
    assert "DeepDenoiser" not in seisbench_pickers()
    for bad in ("seisbench:PhaseNet", "seisbench::x", "seisbench:a:b:c:d"):
        with pytest.raises(ValueError, match="seisbench:CLASS:WEIGHTS"):
            load_picker_model(bad)
    with pytest.raises(ValueError, match="not a SeisBench picker.*PhaseNet"):
        load_picker_model("seisbench:NoSuchNet:x")


def test_seisbench_download_failure_is_explained(monkeypatch):
    import seisbench.models as sbm

    from seiscontrast.picker import load_picker_model

    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(sbm.PhaseNet, "from_pretrained", classmethod(offline))
    with pytest.raises(ValueError, match="PhaseNet weights 'instance'.*ConnectionError.*internet access"):
        load_picker_model("seisbench:PhaseNet:instance")


def test_seisbench_model_picks_an_archive_offline(archive, tmp_path):
    """A SeisBench PhaseNet from SeisBench's own cache (weights written here, untrained) through the whole CLI."""
    import seisbench.models as sbm
    import torch

    root, _ = archive
    cache = tmp_path / "sbcache"
    folder = cache / "models" / "v3" / "phasenet"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    sbm.PhaseNet(phases="PSN").save(folder / "local")
    for suffix in ("json", "pt"):
        (folder / f"local.{suffix}").rename(folder / f"local.{suffix}.v1")
    env = dict(os.environ, SEISBENCH_CACHE_ROOT=str(cache))
    out = tmp_path / "p.xml"
    res = _pick(*_sds_args(root, out, "--select", "SX.A01..*", "--model", "seisbench:PhaseNet:local",
                           "--p-threshold", "0.01", "--s-threshold", "0.01"), env=env)
    assert res.returncode == 0, res.stderr
    text = out.read_text()
    assert "smi:seiscontrast/method/seisbench/PhaseNet/local/v1" in text and "<pick " in text


def test_inventory_rotates_z12_to_zne(tmp_path):
    from obspy.core.inventory import Channel, Inventory, Network, Station

    from seiscontrast.archive import read_chunk
    from seiscontrast.data.obspy_source import InputReport

    t0 = UTCDateTime(2022, 5, 1)
    _write(tmp_path / "z12.mseed", "ROT", t0, 120, channels="HHZ,HH1,HH2")
    # channel 1 points east, channel 2 south: N = -HH2, E = HH1
    chans = [Channel(code, "", 0, 0, 0, 0, azimuth=az, dip=dip, sample_rate=100.0)
             for code, az, dip in (("HHZ", 0, -90), ("HH1", 90, 0), ("HH2", 180, 0))]
    inv = Inventory(networks=[Network("EV", stations=[Station("ROT", 0, 0, 0, channels=chans)])])
    inv.write(str(tmp_path / "inv.xml"), format="STATIONXML")
    cfg = ArchiveConfig(inventory=str(tmp_path / "inv.xml"))
    chunk = plan_files([tmp_path / "z12.mseed"], cfg, pad=45).chunks[0]
    raw = read_chunk(chunk, 45, ArchiveConfig(), InputReport())
    report = InputReport()
    st = read_chunk(chunk, 45, cfg, report)
    assert sorted(tr.stats.channel for tr in st) == ["HHE", "HHN", "HHZ"] and not report.warnings
    np.testing.assert_allclose(st.select(channel="HHN")[0].data, -raw.select(channel="HH2")[0].data, atol=1e-4)
    np.testing.assert_allclose(st.select(channel="HHE")[0].data, raw.select(channel="HH1")[0].data, atol=1e-4)
    inv.networks[0].stations[0].code = "OTHER"           # no orientation for this station: said, and 1/2 kept
    inv.write(str(tmp_path / "inv2.xml"), format="STATIONXML")
    st = read_chunk(chunk, 45, ArchiveConfig(inventory=str(tmp_path / "inv2.xml")), report)
    assert sorted(tr.stats.channel for tr in st) == ["HH1", "HH2", "HHZ"] and "cannot rotate" in report.warnings[0][1]


def test_pick_files_in_python_matches_the_cli_example():
    from seiscontrast.pick import COLUMNS, PickSettings, pick_files
    from seiscontrast.picker import RESOURCES, SeisContrastPicker

    model = SeisContrastPicker.default()
    result = pick_files([RESOURCES / "example"], model)
    assert list(result.picks.columns) == COLUMNS and (result.chunks, result.stations) == (1, 1)
    # as the README prints: the P at the model's own threshold (0.4), the weaker S (0.34) only at 0.3
    assert sorted(result.picks.phase) == ["P"] and not result.report.errors and not result.report.warnings
    lower = pick_files([RESOURCES / "example"], model, PickSettings(s_threshold=0.3)).picks
    assert sorted(lower.phase) == ["P", "S"] and lower.probability.min() < 0.4
    assert [n for _, n in result.report.notes] == ["BW.RJOB..EH: 30.0 s is shorter than one window (40.96 s); "
                                                   "zero-padded"]
