"""Real seismic noise for synthetic traces: quiet segments cut from real recordings, drawn to any length and rate.

Synthetic noise has the spectra we thought of; real noise has the ones stations record (cultural lines, wind,
instrument self-noise, the microseism of each site, glitches). Mixing synthetic earthquakes into real noise is the
best known cure for the gap between synthetic training data and real records, so ``seiscontrast synth
--noise-bank`` does it.

A bank is built once (:func:`build_noise_bank`) from ObsPy-readable files and SeisBench datasets. Each channel is
cut into 5 s blocks; a block is kept when it is quiet in the 2-20 Hz band (where small local events are):
rms at most ``QUIET_RATIO`` and peak at most ``MAX_PEAK_RATIO`` times the rms of the
channel's quietest fifth of blocks, STA/LTA below ``MAX_STA_LTA`` (so earthquakes, their codas and bursts stay
out), and before the first pick where the metadata has picks. Runs of quiet blocks are stored per channel, at the
recorded rate, in one HDF5 file with their source, station, channel, rate and sensor kind
(``accelerometer`` for SEED instrument code ``N``, ``short-period`` for geophones and E/S-band seismometers,
else ``broadband``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
from scipy.signal import resample_poly

from ..logs import progress_bar

BLOCK_S = 5.0
QUIET_RATIO = 2.0
MAX_PEAK_RATIO = 6.0
MAX_STA_LTA = 2.5
MIN_SEGMENT_S = 10.0
PICK_MARGIN_S = 2.0


def sensor_kind(channel: str) -> str:
    """``accelerometer``, ``short-period`` or ``broadband`` from a SEED channel code (``HNZ``, ``EHZ``, ``BHZ``)."""
    band, inst = (channel + "  ")[:2].upper()
    if inst in "NLG":
        return "accelerometer"
    if inst == "P" or (inst == "H" and band in "ES"):
        return "short-period"
    return "broadband"


def quiet_runs(x: np.ndarray, fs: float, stop: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` sample ranges of ``x`` made of quiet ``BLOCK_S`` blocks (see the module docstring),
    at least ``MIN_SEGMENT_S`` long; only samples before ``stop`` count."""
    from obspy.signal.filter import bandpass
    from obspy.signal.trigger import classic_sta_lta

    block = int(BLOCK_S * fs)
    n = len(x) if stop is None else max(0, min(len(x), stop))
    nb = n // block
    if nb < 1 or not np.isfinite(x[:n]).all():
        return []
    # local events live at 2-20 Hz, where neither the microseism nor a digitiser's white noise hides them
    y = bandpass(x[:nb * block] - np.median(x[:nb * block]), 2.0, min(20.0, 0.45 * fs), fs, corners=4, zerophase=True)
    blocks = y.reshape(nb, block)
    rms = np.sqrt(np.mean(blocks**2, axis=1))
    floor = np.quantile(rms, 0.2)
    if floor <= 0:                          # dead or zero-filled channel
        return []
    ratio = classic_sta_lta(y, max(1, int(0.5 * fs)), max(2, int(10 * fs))) if len(y) > 10 * fs else np.zeros(len(y))
    trig = ratio.reshape(nb, block).max(axis=1)
    peak = np.abs(blocks).max(axis=1)
    quiet = (rms <= QUIET_RATIO * floor) & (peak <= MAX_PEAK_RATIO * floor) & (trig < MAX_STA_LTA) & (rms > 0)
    runs, start = [], None
    for i, q in enumerate([*quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if (i - start) * BLOCK_S >= MIN_SEGMENT_S:
                runs.append((start * block, i * block))
            start = None
    return runs


def _first_pick(metadata: dict) -> int | None:
    picks = [float(v) for k, v in metadata.items() if k.endswith("_arrival_sample") and v is not None
             and np.isfinite(np.asarray(v, dtype=float)).all()]
    return int(min(picks)) if picks else None


def _seisbench_channels(source: str):
    """``(source, station, channel, rate, data, stop)`` per component of every trace of a SeisBench dataset."""
    from .seisbench_source import open_dataset
    from .windows import WindowConfig

    ds = open_dataset(source, WindowConfig(components="ZNE"), resample=False)
    for i in range(len(ds)):
        wf, meta = ds.get_sample(i)
        first = _first_pick(meta)
        stop = None if first is None else first - int(PICK_MARGIN_S * meta["trace_sampling_rate_hz"])
        band = str(meta.get("trace_channel") or meta.get("station_type") or "HH")[:2]
        station = f"{meta.get('station_network_code', '')}.{meta.get('station_code', '')}"
        for c, comp in enumerate("ZNE"):
            yield str(source), station, band + comp, float(meta["trace_sampling_rate_hz"]), wf[c], stop


def _file_channels(path: str, report):
    from .obspy_source import read_file

    st = read_file(Path(path), report)
    if st is None:
        return
    st.merge(method=1, fill_value=None)
    for tr in st.split():
        x = np.asarray(tr.data, dtype=np.float64)
        yield str(path), f"{tr.stats.network}.{tr.stats.station}", tr.stats.channel, float(tr.stats.sampling_rate), x, None


def build_noise_bank(sources: Sequence[str], out: str | Path, progress: bool = True) -> tuple[Path, dict]:
    """Write the quiet segments of ``sources`` (waveform files, folders, globs, SeisBench datasets) to ``out``
    (HDF5); returns ``(out, summary)`` with the seconds kept per sensor kind and per source."""
    from ..files import atomic_write
    from .obspy_source import InputReport, expand_paths
    from .sources import is_seisbench_source

    report = InputReport()
    sb = [s for s in sources if is_seisbench_source(s)]
    files = [str(p) for p in expand_paths([s for s in sources if not is_seisbench_source(s)], report)]
    summary: dict = {"seconds_by_kind": {}, "seconds_by_source": {}, "segments": 0}

    def channels():
        for s in sb:
            yield from _seisbench_channels(s)
        for f in files:
            yield from _file_channels(f, report)

    def write(tmp: str) -> None:
        with h5py.File(tmp, "w") as h5:
            for source, station, channel, fs, x, stop in progress_bar(channels(), enabled=progress,
                                                                       desc="noise channels", unit="channel"):
                for a, b in quiet_runs(x, fs, stop):
                    seg = x[a:b] - np.mean(x[a:b])
                    d = h5.create_dataset(f"s{summary['segments']:07d}", data=seg.astype(np.float32))
                    kind = sensor_kind(channel)
                    d.attrs.update(source=source, station=station, channel=channel, sampling_rate=fs, kind=kind,
                                   offset_s=a / fs)
                    summary["segments"] += 1
                    secs = (b - a) / fs
                    summary["seconds_by_kind"][kind] = summary["seconds_by_kind"].get(kind, 0) + secs
                    summary["seconds_by_source"][source] = summary["seconds_by_source"].get(source, 0) + secs
        if summary["segments"] == 0:
            raise ValueError(f"no quiet segment of at least {MIN_SEGMENT_S} s found in {list(sources)}")

    atomic_write(out, write)   # unreadable inputs are warned about by the report and skipped
    return Path(out), summary


@dataclass
class NoiseSegment:
    data: np.ndarray
    sampling_rate: float
    station: str
    channel: str
    kind: str
    source: str


class NoiseBank:
    """The segments of a bank file, grouped by recording (station, band and rate), drawn as 3-component noise."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        groups: dict[tuple, list[NoiseSegment]] = {}
        with h5py.File(self.path, "r") as h5:
            for name in h5:
                d = h5[name]
                a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in d.attrs.items()}
                seg = NoiseSegment(d[()], float(a["sampling_rate"]), a["station"], a["channel"], a["kind"], a["source"])
                groups.setdefault((seg.station, seg.channel[:2], seg.sampling_rate), []).append(seg)
        if not groups:
            raise ValueError(f"{self.path}: the noise bank holds no segments")
        self.groups = list(groups.values())

    def draw(self, rng: np.random.Generator, n: int, fs: float) -> tuple[np.ndarray, NoiseSegment]:
        """``[3, n]`` Z/N/E noise at ``fs`` from one recording, and a segment describing it.

        Z comes from the vertical channel, N and E from the horizontals; a recording without horizontals (or
        without a vertical) lends its other channel from other times, so the components stay uncorrelated.
        """
        group = self.groups[int(rng.integers(len(self.groups)))]
        vertical = [s for s in group if s.channel[2:3] in ("Z", "")] or group
        horizontal = [s for s in group if s.channel[2:3] not in ("Z", "")] or vertical
        out = np.stack([_stitch(rng, pool, n, fs) for pool in (vertical, horizontal, horizontal)])
        return out, vertical[0]


def _stitch(rng, pool: list[NoiseSegment], n: int, fs: float, fade_s: float = 0.5) -> np.ndarray:
    """``n`` samples at ``fs`` from random pieces of ``pool``, joined by equal-power cross-fades; every piece is
    scaled to the first one's rms, so no join looks like a rise in energy (an onset)."""
    fade = max(1, int(fade_s * fs))
    out = np.zeros(n)
    pos, level = 0, None
    while pos < n:
        seg = pool[int(rng.integers(len(pool)))]
        ratio = Fraction(fs / seg.sampling_rate).limit_denominator(1000)
        need = n - pos + fade
        take = min(len(seg.data), math.ceil(need / ratio) + 64)
        i0 = int(rng.integers(0, len(seg.data) - take + 1))
        piece = seg.data[i0:i0 + take].astype(np.float64)
        if ratio != 1:
            piece = resample_poly(piece, ratio.numerator, ratio.denominator)
        piece = piece[:need] - piece[:need].mean()
        rms = float(np.sqrt(np.mean(piece**2))) or 1.0
        level = rms if level is None else level
        piece *= level / rms * (-1 if rng.random() < 0.5 else 1)     # noise has no preferred polarity
        if pos == 0:
            out[:len(piece)] = piece[:n]
            pos = len(piece)
            continue
        start = pos - fade
        k = min(fade, len(piece))
        theta = np.linspace(0, np.pi / 2, k)
        out[start:start + k] = out[start:start + k] * np.cos(theta) + piece[:k] * np.sin(theta)
        rest = piece[k:n - start]
        out[start + k:start + k + len(rest)] = rest
        pos = start + k + len(rest)
    return out
