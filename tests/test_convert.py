import numpy as np
import pandas as pd
import pytest
from conftest import make_stream
from obspy import UTCDateTime
from obspy.core.event import Catalog, Event, Pick, WaveformStreamID

from seiscontrast.data import WindowConfig, open_dataset
from seiscontrast.data.convert import convert_archive, read_picks

T0 = UTCDateTime(2021, 5, 3, 12)


def _archive(tmp_path):
    make_stream(start=T0, seconds=300, station="AAA").write(str(tmp_path / "AAA.mseed"), format="MSEED")
    make_stream(start=T0, seconds=130, station="BBB", rate=50.0).write(str(tmp_path / "BBB.mseed"), format="MSEED")
    return tmp_path


def test_convert_with_csv_picks(tmp_path):
    arch = _archive(tmp_path / "arch") if (tmp_path / "arch").mkdir() is None else None
    picks = pd.DataFrame({"network": ["XX", "XX", "XX"], "station": ["AAA", "AAA", "AAA"],
                          "phase": ["P", "S", "P"],
                          "time": [str(T0 + 100), str(T0 + 108.5), str(T0 + 200)]})
    picks.to_csv(tmp_path / "picks.csv", index=False)
    out, report, n = convert_archive([arch], tmp_path / "ds", tmp_path / "picks.csv", WindowConfig())
    ds = open_dataset(out, WindowConfig())
    meta = ds.metadata
    aaa = meta[meta.station_code == "AAA"].sort_values("trace_p_arrival_sample")
    assert len(aaa) == 2
    first = aaa.iloc[0]
    assert first.trace_p_arrival_sample == 1500 and first.trace_s_arrival_sample == 2350  # 15 s pre-pick
    assert np.isnan(aaa.iloc[1].trace_s_arrival_sample)
    bbb = meta[meta.station_code == "BBB"]
    assert len(bbb) == 2 and bbb.trace_p_arrival_sample.isna().all()  # continuous segments, resampled
    assert ds.get_waveforms(0).shape == (3, 6000)


def test_read_picks_from_quakeml(tmp_path):
    ev = Event(picks=[Pick(time=T0 + 5, phase_hint="Pg", waveform_id=WaveformStreamID("XX", "AAA", "", "HHZ")),
                      Pick(time=T0 + 9, phase_hint="Sg", waveform_id=WaveformStreamID("XX", "AAA", "", "HHN"))])
    Catalog(events=[ev]).write(str(tmp_path / "picks.xml"), format="QUAKEML")
    table = read_picks(tmp_path / "picks.xml")
    assert table.phase.tolist() == ["P", "S"] and table.station.tolist() == ["AAA", "AAA"]
    assert table.channel.tolist() == ["HHZ", "HHN"]


def test_only_first_arrivals_are_read_as_p_and_s(tmp_path):
    hints = ["P", "Pn", "pP", "PmP", "IAML", "Sg", "sP", "ES", "p", "PKP", "S*", ""]
    pd.DataFrame({"network": "XX", "station": "AAA", "phase": hints,
                  "time": [str(T0 + i) for i in range(len(hints))]}).to_csv(tmp_path / "p.csv", index=False)
    table = read_picks(tmp_path / "p.csv")
    assert table.phase.tolist() == ["P", "P", "S", "S", "P", "S"]
    assert [t - T0 for t in table.time] == [0, 1, 5, 7, 8, 10]


def test_a_bad_time_names_the_file_and_line(tmp_path):
    pd.DataFrame({"network": ["XX", "XX"], "station": ["AAA", "AAA"], "phase": ["P", "S"],
                  "time": [str(T0), "yesterday"]}).to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(ValueError, match=r"p\.csv, line 3: time 'yesterday'"):
        read_picks(tmp_path / "p.csv")


def test_continuous_traces_run_on_across_days(tmp_path):
    """Read one station-day at a time, a continuous record still gives consecutive whole traces on one grid:
    none lost or doubled at midnight, and a pick at 00:00:30 ends up in one event trace."""
    (tmp_path / "arch").mkdir()
    start = UTCDateTime(2021, 5, 3, 23, 50, 0.25)
    for i, (sta, secs) in enumerate((("AAA", 1200), ("CCC", 45))):
        make_stream(start=start, seconds=secs, station=sta, seed=i).write(str(tmp_path / "arch" / f"{sta}.mseed"),
                                                                          format="MSEED")
    _, _, n = convert_archive([tmp_path / "arch"], tmp_path / "ds", None, WindowConfig(), progress=False)
    meta = open_dataset(tmp_path / "ds", WindowConfig()).metadata
    aaa = meta[meta.station_code == "AAA"]
    starts = sorted(UTCDateTime(t) - start for t in aaa.trace_start_time)
    assert starts == [60.0 * k for k in range(20)]
    assert len(meta[meta.station_code == "CCC"]) == 1          # shorter than one trace: kept as it is
    picks = pd.DataFrame({"network": ["XX"], "station": ["AAA"], "phase": ["P"],
                          "time": [str(UTCDateTime(2021, 5, 4, 0, 0, 30))]})
    picks.to_csv(tmp_path / "picks.csv", index=False)
    convert_archive([tmp_path / "arch" / "AAA.mseed"], tmp_path / "ev", tmp_path / "picks.csv", WindowConfig(),
                    progress=False)
    events = open_dataset(tmp_path / "ev", WindowConfig()).metadata
    assert len(events) == 1 and events.trace_p_arrival_sample.iloc[0] == 1500
