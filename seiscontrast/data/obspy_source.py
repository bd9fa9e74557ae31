"""ObsPy-readable files (miniSEED first) as window sources: continuous archives for pretraining and picking.

Files are read with ``obspy.read``, grouped by station and instrument (``NET.STA.LOC.BH``), merged with gaps
zero-filled, resampled to the model rate, mapped onto Z/N/E (Z/1/2 accepted) and cut into windows that remember
their start time. Every problem with an input is recorded in a :class:`InputReport` with the file name and what
was done; a bad file never stops the others.
"""

from __future__ import annotations

import glob
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
from obspy import Stream, UTCDateTime
from scipy.signal import resample_poly

from ..logs import get_logger
from .windows import WindowConfig, runs

log = get_logger(__name__)

#: last letter of a SEED channel code → component; 1/2 are taken as N/E when no orientation is known.
COMPONENT_MAP = {"Z": "Z", "N": "N", "1": "N", "E": "E", "2": "E"}


@dataclass
class InputReport:
    """What happened to each problematic input: ``(source, message)`` pairs in three kinds.

    ``errors``: input skipped entirely; ``warnings``: input not used as recorded (samples lost or replaced, no
    signal, channel skipped); ``notes``: the documented handling of ordinary archives (resampling, short gaps
    zero-filled and masked, absent components). Errors and warnings make the CLI's exit status non-zero.
    ``log_notes``: also log each note (at INFO); off where the same records are prepared many times.
    """

    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    log_notes: bool = True

    def error(self, source, message: str) -> None:
        """Record (and log) an input that could not be used."""
        self.errors.append((str(source), message))
        log.warning("%s: %s", source, message)

    def warn(self, source, message: str) -> None:
        """Record (and log) an input that was used, but not as recorded."""
        self.warnings.append((str(source), message))
        log.warning("%s: %s", source, message)

    def note(self, source, message: str) -> None:
        """Record (and log) a fix applied to an input."""
        self.notes.append((str(source), message))
        if self.log_notes:
            log.info("%s: %s", source, message)

    @property
    def failed_sources(self) -> list[str]:
        """Sources with at least one error."""
        return sorted({s for s, _ in self.errors})

    def extend(self, other: InputReport) -> None:
        """Add another report's entries (without logging them again)."""
        self.errors += other.errors
        self.warnings += other.warnings
        self.notes += other.notes


@dataclass
class StationRecord:
    """One station's continuous 3-component record on a common time base.

    Attributes:
        station: ``NET.STA.LOC.XX`` (XX = band and instrument code, e.g. ``HH``).
        start: time of sample 0.
        data: float32 ``[3, samples]`` in Z, N, E order at ``sampling_rate`` Hz; gaps and absent channels are 0.
        sampling_rate: Hz.
        sources: files the record was read from.
        gaps: ``(first, end)`` sample ranges where a recorded component had no data (zero-filled), merged over
            components; components absent from the whole record (vertical-only stations) do not count.
    """

    station: str
    start: UTCDateTime
    data: np.ndarray
    sampling_rate: float
    sources: list[str]
    gaps: list[tuple[int, int]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Seconds of data."""
        return self.data.shape[-1] / self.sampling_rate

    @property
    def network(self) -> str:
        """Network code."""
        return self.station.split(".")[0]


def expand_paths(inputs: Sequence[str | Path], report: InputReport) -> list[Path]:
    """Files from a mix of files, directories (recursive) and glob patterns, sorted and de-duplicated."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_file():
            files.append(p)
        elif p.exists() and not p.is_dir():
            report.error(p, "not a regular file (a FIFO, socket or device); skipped")
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            if not found:
                report.error(p, "directory contains no files")
            files.extend(found)
        else:
            matches = sorted(Path(m) for m in glob.glob(str(item), recursive=True) if Path(m).is_file())
            if not matches:
                report.error(item, "no such file, directory or matching pattern")
            files.extend(matches)
    return list(dict.fromkeys(files))


def read_file(path: Path, report: InputReport, headonly: bool = False) -> Stream | None:
    """``obspy.read`` one file (``headonly``: headers only); an unreadable or empty file is reported and skipped
    (returns ``None``)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            st = obspy.read(str(path), headonly=headonly)
        except TypeError as err:  # obspy's way of saying "no reader recognises this file"
            if "Unknown format" in str(err):
                report.error(path, "not a waveform format ObsPy can read; skipped")
            else:
                report.error(path, f"unreadable ({err}); skipped")
            return None
        except Exception as err:  # obspy raises many types (ValueError, IOError, format-specific errors)
            report.error(path, f"unreadable ({type(err).__name__}: {str(err).strip() or 'no detail'}); skipped")
            return None
    for w in caught:  # e.g. libmseed: "Not a SEED record. Will skip bytes ..." — the rest of the file is used
        report.warn(path, f"reader warning: {str(w.message).strip()} (only the readable part is used)")
    if len(st) == 0 or all(tr.stats.npts == 0 for tr in st):
        report.error(path, "contains no samples; skipped")
        return None
    for tr in st:
        tr.stats._source = str(path)
    return st


def station_key(network: str, station: str, location: str, channel: str) -> str:
    """``NET.STA.LOC.XX``, XX being the first two letters (band and instrument) of the channel code: the unit
    that is merged into one 3-component record."""
    return f"{network}.{station}.{location}.{channel[:2]}"


def group_by_station(streams: Iterable[Stream]) -> dict[str, Stream]:
    """``{NET.STA.LOC.XX: Stream}`` (see :func:`station_key`)."""
    groups: dict[str, Stream] = defaultdict(Stream)
    for st in streams:
        for tr in st:
            s = tr.stats
            groups[station_key(s.network, s.station, s.location, s.channel)] += tr
    return dict(sorted(groups.items()))


def remove_glitches(x: np.ndarray, ratio: float = 30.0, context: int = 100,
                    block: int = 1 << 16) -> tuple[np.ndarray, int, int]:
    """Remove isolated spikes (one or two samples) and steps (offset jumps) — telemetry and digitiser glitches,
    not ground motion. Returns ``(cleaned, spike samples replaced, steps removed)``.

    A jump between two samples is *large* when it is ``ratio`` times the mean absolute sample-to-sample change
    on either side of it (``context`` samples, its own neighbourhood excluded); ground motion never jumps out of
    quiet into quiet: an onset is followed by shaking. Two large opposite jumps one or two samples apart are a
    spike (replaced by the 5-sample median); a large jump with small ones either side after which the baseline
    stays moved is a step (the rest is shifted back). Works on cache-sized blocks.
    """
    n = x.size
    if n < 2 * context + 5:
        return x, 0, 0
    jumps = []
    for a in range(0, n - 1, block):  # each block with context on both sides; jumps kept from its own part
        lead = min(a, context)
        found = _large_jumps(x[a - lead: a + block + context], ratio, context) - lead
        jumps.append(a + found[(found >= 0) & (found < block)])
    jumps = np.concatenate(jumps)
    if not jumps.size:
        return x, 0, 0
    d = np.diff(x[np.clip(np.r_[jumps, jumps + 1], 0, n - 1)].reshape(2, -1), axis=0)[0]  # x[j+1] - x[j]
    y = x.copy()
    large = dict(zip(jumps.tolist(), d.tolist()))
    spike_samples, steps = [], []
    for j, dj in large.items():
        for gap in (1, 2):  # jump j up, jump j + gap down (or the reverse): samples j+1 .. j+gap are a spike
            back = large.get(j + gap)
            if back is not None and np.sign(back) == -np.sign(dj):
                spike_samples += list(range(j + 1, j + gap + 1))
                break
        else:  # a step only if the baseline really moves by the jump and stays there
            if not any(k in large for k in (j - 2, j - 1)):
                shift = np.median(x[j + 3: j + context]) - np.median(x[max(0, j - context): j - 1])
                if abs(shift - dj) < 0.3 * abs(dj):
                    steps.append((j, dj))
    if spike_samples:
        at = np.unique(np.clip(spike_samples, 0, n - 1))
        y[at] = np.median(x[np.clip(at[:, None] + np.arange(-2, 3), 0, n - 1)], axis=1)
    for j, dj in steps:
        y[j + 1:] -= dj
    return y, len(set(spike_samples)), len(steps)


def _large_jumps(x: np.ndarray, ratio: float, context: int) -> np.ndarray:
    """Indices ``j`` where ``|x[j+1] - x[j]|`` is ``ratio`` times the mean change on *each* side of it (the
    ``context`` samples before and after, its own neighbourhood excluded): quiet on both sides, unlike an onset."""
    d = np.abs(np.diff(x))
    m = d.size
    cp = np.concatenate([[0.0], np.cumsum(np.pad(d, context, mode="reflect"))])
    before = (cp[context - 3: context - 3 + m] - cp[:m]) / (context - 3)
    after = (cp[2 * context + 1: 2 * context + 1 + m] - cp[context + 4: context + 4 + m]) / (context - 3)
    return np.flatnonzero(d > ratio * np.maximum(before, after) + 1e-9 * (np.abs(x).max() + 1e-30))


def _clean_trace(tr: obspy.Trace, rate: float, report: InputReport) -> obspy.Trace | None:
    src = getattr(tr.stats, "_source", tr.id)
    data = tr.data
    if np.ma.isMaskedArray(data):
        n_masked = int(np.ma.count_masked(data))
        data = data.filled(0)
        if n_masked:
            report.warn(src, f"{tr.id}: {n_masked} masked samples zero-filled")
    data = np.asarray(data, dtype=np.float64)
    bad = ~np.isfinite(data)
    if bad.any():
        report.warn(src, f"{tr.id}: {int(bad.sum())} NaN/inf samples set to 0")
        data = np.where(bad, 0.0, data)
    data, n_spikes, n_steps = remove_glitches(data)
    if n_spikes:
        report.warn(src, f"{tr.id}: {n_spikes} isolated spike sample(s) replaced by the local median")
    if n_steps:
        report.warn(src, f"{tr.id}: {n_steps} isolated step(s) in the baseline removed")
    tr.data = data
    if tr.stats.sampling_rate <= 0:
        report.error(src, f"{tr.id}: sampling rate {tr.stats.sampling_rate} Hz is not valid; trace skipped")
        return None
    if abs(tr.stats.sampling_rate - rate) > 1e-6 * rate:
        ratio = Fraction(rate / tr.stats.sampling_rate).limit_denominator(1000)
        # polyphase resampling: anti-aliased, exact for the usual 20/40/50/200 Hz ratios, fast on day-long traces
        report.note(src, f"{tr.id}: resampled {tr.stats.sampling_rate:g} Hz -> {rate:g} Hz")
        tr.data = resample_poly(tr.data, ratio.numerator, ratio.denominator) if tr.stats.npts > 1 else tr.data
        tr.stats.sampling_rate = rate
    return tr


def station_record(key: str, stream: Stream, window: WindowConfig, report: InputReport) -> StationRecord | None:
    """Merge one station's traces onto a common ``[3, samples]`` Z/N/E array at ``window.sampling_rate``."""
    rate = window.sampling_rate
    sources = sorted({getattr(tr.stats, "_source", key) for tr in stream})
    by_comp: dict[str, Stream] = defaultdict(Stream)
    for tr in stream:
        comp = COMPONENT_MAP.get(tr.stats.channel[-1:].upper())
        if comp is None:
            report.note(getattr(tr.stats, "_source", key), f"{tr.id}: channel is not Z/N/E/1/2; ignored")
            continue
        if tr.stats.channel[-1] in "12" and any(t.stats.channel[-1] in "NE" for t in stream):
            continue  # a true N/E pair is preferred over unoriented 1/2
        tr = _clean_trace(tr.copy(), rate, report)
        if tr is not None:
            by_comp[comp] += tr
    if not by_comp:
        report.error(", ".join(sources), f"{key}: no usable Z/N/E/1/2 channel; skipped")
        return None
    merged = Stream()
    spans: dict[str, list[tuple[UTCDateTime, UTCDateTime]]] = {}
    for comp, st in by_comp.items():
        spans[comp] = [(tr.stats.starttime, tr.stats.endtime) for tr in st]
        for gap in st.get_gaps():
            kind = "gap" if gap[6] > 0 else "overlap"
            report.note(", ".join(sources), f"{key} {comp}: {kind} of {abs(gap[6]):.2f} s at {gap[4]} "
                        + ("zero-filled" if kind == "gap" else "resolved (later data kept)"))
        try:
            st.merge(method=1, fill_value=0)
        except Exception as err:  # e.g. inconsistent metadata that ObsPy refuses to merge
            report.error(", ".join(sources), f"{key} {comp}: cannot merge traces ({err}); component dropped")
            continue
        for tr in st:
            tr.stats.channel = tr.stats.channel[:2] + comp
        merged += st
    if not merged:
        return None
    start = min(tr.stats.starttime for tr in merged)
    end = max(tr.stats.endtime for tr in merged)
    n = int(round((end - start) * rate)) + 1
    data = np.zeros((3, n), dtype=np.float32)
    for tr in merged:
        c = window.components.index(tr.stats.channel[-1])
        i0 = int(round((tr.stats.starttime - start) * rate))
        seg = np.asarray(tr.data, dtype=np.float32)[: n - i0]
        data[c, i0: i0 + len(seg)] = seg
    missing = [c for c in window.components if c not in by_comp]
    if missing:
        report.note(", ".join(sources), f"{key}: component(s) {''.join(missing)} absent; zero-filled")
    if not np.any(data):
        report.warn(", ".join(sources), f"{key}: all samples are zero; no signal to use")
    else:
        for comp in by_comp:
            row = data[window.components.index(comp)]
            if row.size and row.min() == row.max():
                report.warn(", ".join(sources), f"{key} {comp}: constant value {row[0]:g}; no signal to use")
    covered = np.ones(n, dtype=bool)
    for comp in spans:
        has = np.zeros(n, dtype=bool)
        for t0, t1 in spans[comp]:
            has[max(0, int(round((t0 - start) * rate))): int(round((t1 - start) * rate)) + 1] = True
        covered &= has
    return StationRecord(key, start, data, rate, sources, runs(~covered))


def read_records(inputs: Sequence[str | Path], window: WindowConfig,
                 report: InputReport | None = None) -> tuple[list[StationRecord], InputReport]:
    """Read files/directories/globs into one :class:`StationRecord` per station and instrument."""
    report = report if report is not None else InputReport()
    streams = [st for p in expand_paths(inputs, report) if (st := read_file(p, report)) is not None]
    records = []
    for key, st in group_by_station(streams).items():
        rec = station_record(key, st, window, report)
        if rec is not None:
            records.append(rec)
    return records, report
