"""A corpus of bad and awkward waveform inputs for the picking CLI (written into a folder by ``make_corpus``).

Each entry: file name → what a correct run must do with it: ``"error"`` (reported as unusable, others go on),
``"ok"`` (processed as documented, e.g. resampled or short gaps zero-filled: not reported), ``"warn"`` (used,
but not as recorded: reported as used with changes), ``"no_picks"`` (processed and must not produce picks), or
``"warn_no_picks"`` (both). ``NO_PICK_STATIONS`` are the station codes of the no-pick entries.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from obspy import Stream, Trace, UTCDateTime

T0 = UTCDateTime(2023, 6, 1, 12)
NO_PICK_STATIONS = ("NAN", "ZER", "CON", "LHN", "SPK", "GPZ", "STP")


def _st(station, channels="HHZ,HHN,HHE", seconds=60.0, rate=100.0, fill=None, seed=0, dtype=np.float32, scale=1.0):
    rng = np.random.default_rng(seed)
    st = Stream()
    for ch in channels.split(","):
        n = int(seconds * rate)
        data = (rng.standard_normal(n) * scale).astype(dtype) if fill is None else np.full(n, fill, dtype=dtype)
        tr = Trace(data)
        tr.stats.update(dict(network="BD", station=station, channel=ch, sampling_rate=rate, starttime=T0))
        st += tr
    return st


def make_corpus(folder: Path) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    expect: dict[str, str] = {}

    def write(name, st, fmt="MSEED", outcome="ok", **kw):
        st.write(str(folder / name), format=fmt, **kw)
        expect[name] = outcome

    good = folder / "_reference.mseed"
    _st("REF").write(str(good), format="MSEED")
    raw = good.read_bytes()
    for name, data in {
        "truncated_header.mseed": raw[:30], "truncated_record.mseed": raw[:700],
        "empty.mseed": b"", "text.mseed": b"this is not a seismogram\n" * 40,
        "notes.txt": b"station log: nothing to see\n", "image.png": b"\x89PNG\r\n\x1a\n" + bytes(200),
        "data.json": json.dumps({"a": 1}).encode(), "random_bytes.mseed": np.random.default_rng(1).bytes(4096),
        "corrupt_header.mseed": b"\x00" * 48 + raw[48:1024],
    }.items():
        (folder / name).write_bytes(data)
        expect[name] = "error"
    # a complete record followed by garbage: the readable part is used or the file is reported, never a crash
    (folder / "tail_garbage.mseed").write_bytes(raw + b"\xff" * 300)
    expect["tail_garbage.mseed"] = "any"
    good.unlink()

    st = _st("GAP", seconds=90)
    a, b, c = st.copy(), st.copy(), st.copy()
    a.trim(endtime=T0 + 30)
    b.trim(T0 + 40, T0 + 60)
    c.trim(T0 + 70)
    write("gaps.mseed", a + b + c)
    st = _st("OVL", seconds=90)
    a, b = st.copy(), st.copy()
    a.trim(endtime=T0 + 50)
    b.trim(T0 + 40)
    write("overlap.mseed", a + b)
    st = _st("NAN", fill=np.nan, dtype=np.float64)
    write("all_nan.mseed", st, outcome="warn_no_picks")
    st = _st("NAP", dtype=np.float64)
    st[0].data[100:400] = np.nan
    st[1].data[5000] = np.inf
    write("some_nan_inf.mseed", st, outcome="warn")
    write("one_component.mseed", _st("ONE", channels="HHZ"))
    write("two_components.mseed", _st("TWO", channels="HHZ,HHN"))
    write("rate20.mseed", _st("R20", channels="BHZ,BHN,BHE", rate=20.0))
    write("rate40.mseed", _st("R40", channels="SHZ,SHN,SHE", rate=40.0))
    write("rate200.mseed", _st("R2H", rate=200.0))
    write("short_10s.mseed", _st("SHO", seconds=10))
    write("tiny_5_samples.mseed", _st("TNY", seconds=0.05))
    write("all_zero.mseed", _st("ZER", fill=0.0), outcome="warn_no_picks")
    write("constant.mseed", _st("CON", fill=1234.0), outcome="warn_no_picks")
    # far below a picker's band: skipped with a warning (6 h of 1 Hz noise once gave 8 false P picks)
    write("lh_noise.mseed", _st("LHN", channels="LHZ,LHN,LHE", seconds=6 * 3600, rate=1.0), outcome="warn_no_picks")
    st = _st("SPK", fill=0.0, seconds=300)  # telemetry spikes every 50 s on a flat trace
    for tr in st:
        tr.data[2500::5000] = 5000.0
    write("spikes_flat.mseed", st, outcome="warn_no_picks")
    st = _st("GPZ", seconds=150, seed=4)    # a 20 s gap, zero-filled: its edges are not onsets
    write("gap_20s.mseed", st.slice(endtime=T0 + 60) + st.slice(T0 + 80), outcome="no_picks")
    st = _st("STP", seconds=300, seed=6)    # baseline steps (mass re-centring, digitiser glitches)
    for tr in st:
        tr.data[10000:] += 200.0
        tr.data[20000:] -= 500.0
    write("steps.mseed", st, outcome="warn_no_picks")
    write("huge_amplitude.mseed", _st("HUG", scale=1e30, dtype=np.float64))
    write("int32_counts.mseed", _st("INT", scale=1e6, dtype=np.float64).copy(), encoding="FLOAT64")
    write("z12.mseed", _st("Z12", channels="HHZ,HH1,HH2"))
    st = _st("MIX", channels="HHZ") + _st("MIX", channels="HHN,HHE", rate=50.0)
    write("mixed_rates.mseed", st)
    write("unknown_channels.mseed", _st("UNK", channels="HHX,HHY"), outcome="error")
    write("hydrophone.mseed", _st("HYD", channels="HDH"), outcome="error")
    write("two_stations.mseed", _st("TSA") + _st("TSB", seed=3))
    write("sac_format.sac", _st("SAC", channels="HHZ"), fmt="SAC")
    write("duplicate_a.mseed", _st("DUP"))
    write("duplicate_b.mseed", _st("DUP"))
    write("day_offset.mseed", _st("OFF", seconds=30, seed=5))
    write("float64.mseed", _st("F64", dtype=np.float64))
    write("location_codes.mseed", _st("LOC") + _st("LOC", seed=2).copy())
    (folder / "empty_dir").mkdir(exist_ok=True)
    return expect
