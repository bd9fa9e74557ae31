"""A synthetic SDS archive: continuous band-limited noise at a few stations with synthetic events inserted at
known times, some of them straddling midnight (for archive-picking tests and benchmarks).

Event waveforms come from :func:`~seiscontrast.data.synthetic.synthesize_trace` (clean signal part, impulsive
onsets, scaled to a chosen peak signal-to-noise ratio); the onsets are returned as a table.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from obspy import Trace, UTCDateTime
from obspy.clients.filesystem.sds import SDS_FMTSTR
from scipy.signal import butter, sosfilt

from .synthetic import SynthConfig, synthesize_trace


def clear_events(n: int, seed: int = 0, fs: float = 100.0) -> list[tuple[np.ndarray, int, int]]:
    """``n`` clean event signals ``(signal [3, samples], P sample, S sample)`` with impulsive, well-separated onsets."""
    cfg = SynthConfig(seed=seed, sampling_rate=fs, noise_fraction=0.0, second_event_fraction=0.0,
                      magnitude_range=[2.0, 3.5], distance_range=[10.0, 80.0], p_onset_range=[5.0, 10.0])
    out, i = [], 0
    while len(out) < n:
        _, meta, signal, _ = synthesize_trace(cfg, i, return_parts=True)
        i += 1
        s = meta.get("trace_s_arrival_sample", np.nan)
        if meta["trace_p_onset"] != "impulsive" or not np.isfinite(s) or meta["trace_snr_p_db"] < 20:
            continue
        out.append((signal, int(meta["trace_p_arrival_sample"]), int(s)))
    return out


def write_sds_archive(root: str | Path, start: UTCDateTime, end: UTCDateTime, stations: Sequence[str] = ("A01",),
                      event_times: Sequence[float] = (), snr: float = 30.0, fs: float = 100.0, network: str = "SX",
                      channels: str = "HH", seed: int = 0) -> pd.DataFrame:
    """Write ``[start, end)`` of noise + events into day files of an SDS archive; returns the true onsets.

    ``event_times`` are P onset times in seconds after ``start`` (every station records every event, shifted by
    0.37 s per station). Generated one station-day at a time (noise continuous across midnight), so a long
    archive needs the memory of one day. Returns one row per station and event: ``station, p_time, s_time``.
    """
    events = clear_events(len(event_times), seed, fs)
    # 1-20 Hz noise (scaled down for low-rate channels, e.g. 1 Hz LH)
    sos = butter(4, [min(1.0, 0.05 * fs), min(20.0, 0.4 * fs)], btype="bandpass", fs=fs, output="sos")
    rows = []
    for k, sta in enumerate(stations):
        rng = np.random.default_rng([seed, k])
        state = np.zeros((3, sos.shape[0], 2))
        onsets = [int(round((t + 0.37 * k) * fs)) for t in event_times]   # P sample from start
        for (_, p, s), t_p in zip(events, onsets):
            rows.append(dict(station=sta, p_time=start + t_p / fs, s_time=start + (t_p + s - p) / fs))
        day = UTCDateTime(start.year, start.month, start.day)
        while day < end:
            a0 = max(0, int(round((day - start) * fs)))              # first sample of this day file
            a1 = min(int(round((end - start) * fs)), int(round((day + 86400 - start) * fs)))
            data = np.empty((3, a1 - a0))
            for c in range(3):
                data[c], state[c] = sosfilt(sos, rng.standard_normal(a1 - a0), zi=state[c])
            noise_std = data.std()
            for (signal, p, _), t_p in zip(events, onsets):
                shift = t_p - p - a0                                     # signal sample 0 within this day
                i, j = max(0, shift), min(a1 - a0, shift + signal.shape[1])
                if j > i:
                    data[:, i:j] += signal[:, i - shift: j - shift] * (snr * noise_std / np.abs(signal).max())
            _write_day(root, network, sta, channels, start + a0 / fs, (data * 1000).astype(np.int32), fs)
            day += 86400
    return pd.DataFrame(rows)


def _write_day(root, network, station, band, t0, data, fs) -> None:
    for c, comp in enumerate("ZNE"):
        tr = Trace(data[c], header=dict(network=network, station=station, location="", channel=f"{band}{comp}",
                                        sampling_rate=fs, starttime=t0))
        path = Path(root) / SDS_FMTSTR.format(year=t0.year, doy=t0.julday, sds_type="D", network=network,
                                              station=station, location="", channel=tr.stats.channel)
        os.makedirs(path.parent, exist_ok=True)
        tr.write(str(path), format="MSEED", encoding="STEIM2")
