"""Waveform archives as a list of station × time chunks, planned from headers only (no sample data is read).

An archive is plain files (directories, globs) or an SDS tree (``ROOT/YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY``,
read through ObsPy's ``obspy.clients.filesystem.sds.Client``). Traces are grouped per station and instrument
(``NET.STA.LOC.BB``); a station's data forms *records* (continuous spans, broken where the data stops for longer than
``max_gap``, so event files months apart are never zero-filled into one record); records are cut into chunks at
multiples of ``chunk`` seconds since the epoch (midnight for the default of one day). Each chunk owns the picks
whose time falls in ``[t0, t1)`` and is read with ``pad`` seconds of data on either side, so that a pick near a
chunk edge is made with the same context as anywhere else, and made exactly once.
"""

from __future__ import annotations

import ctypes
import fnmatch
import gc
import hashlib
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import obspy
from obspy import Stream, UTCDateTime

from .data.obspy_source import InputReport, expand_paths, read_file, station_key


@dataclass
class ArchiveConfig:
    """How an archive is cut into chunks.

    Attributes:
        chunk: seconds per chunk, on a grid from midnight UTC (21600: four per station-day; a station-day of
            100 Hz data as one chunk peaks at 1.5 GB, in 6 h chunks at 1.1 GB, with the same picks).
        max_gap: seconds without data after which a station's data starts a new record instead of being zero-filled.
        min_rate: channels sampled below this (Hz; LH, VH …) are skipped with a warning: far below a picker's band.
        inventory: StationXML file; Z/1/2 (and 1/2/3) channels are rotated to Z/N/E with its azimuths and dips.
    """

    chunk: float = 21600.0
    max_gap: float = 120.0
    min_rate: float = 10.0
    inventory: str | None = None


@dataclass(frozen=True)
class Chunk:
    """One station × time span to pick.

    Attributes:
        station: ``NET.STA.LOC.BB``.
        t0, t1: the span whose picks this chunk owns (``t0 <= pick < t1``).
        sources: files to read (plain files), or the SDS root (``sds``).
        channels: SEED channel codes to read (wildcards allowed).
        fingerprint: sizes and modification times of the sources; a changed file gives a new chunk id.
        first: whether this is the station's first chunk (plots show it).
        anchor: start of the record the chunk belongs to: windows are placed on a grid from there, so that
            every chunking of a record sees the windows an unchunked run sees.
    """

    station: str
    t0: UTCDateTime
    t1: UTCDateTime
    sources: tuple[str, ...]
    channels: tuple[str, ...]
    sds: str | None = None
    fingerprint: str = ""
    first: bool = False
    anchor: UTCDateTime | None = None

    @property
    def id(self) -> str:
        """Stable name: station, span and a digest of the sources' state."""
        span = f"{self.t0.strftime('%Y%m%dT%H%M%S')}-{self.t1.strftime('%Y%m%dT%H%M%S')}"
        return f"{self.station}.{span}.{self.fingerprint[:10]}"

    @property
    def hours(self) -> float:
        """Length of the owned span in hours."""
        return (self.t1 - self.t0) / 3600


@dataclass
class Segment:
    """Header facts of one trace in one file."""

    path: str
    channel: str
    start: UTCDateTime
    end: UTCDateTime
    rate: float


@dataclass
class ArchivePlan:
    """The chunks to pick and what was found wrong while indexing."""

    chunks: list[Chunk]
    report: InputReport = field(default_factory=InputReport)

    def shard(self, index: int, count: int) -> list[Chunk]:
        """Chunks of shard ``index`` of ``count`` (0-based): every chunk is in exactly one shard."""
        if not 0 <= index < count:
            raise ValueError(f"shard {index}/{count}: the index must be in 0..{count - 1}")
        return self.chunks[index::count]


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` (0-based I, as in ``$SLURM_ARRAY_TASK_ID/N``) → ``(I, N)``."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: expected I/N, e.g. 0/8") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need N >= 1 and 0 <= I < N")
    return i, n


def fingerprint(paths) -> str:
    """Digest of the files' paths, sizes and modification times (a changed file changes it)."""
    h = hashlib.sha1()
    for p in sorted(paths):
        try:
            s = os.stat(p)
            h.update(f"{p}:{s.st_size}:{s.st_mtime_ns};".encode())
        except OSError:
            h.update(f"{p}:missing;".encode())
    return h.hexdigest()


def _skip_low_rate(seg_id: str, rate: float, cfg: ArchiveConfig, report: InputReport, source: str) -> bool:
    if rate >= cfg.min_rate:
        return False
    report.warn(source, f"{seg_id}: {rate:g} Hz is far below a picker's band; skipped (--min-rate {rate:g} to pick it)")
    return True


def index_files(inputs: Sequence[str | Path], cfg: ArchiveConfig, report: InputReport) -> dict[str, list[Segment]]:
    """``{NET.STA.LOC.BB: [Segment]}`` from the headers of every file (``obspy.read(headonly=True)``)."""
    groups: dict[str, list[Segment]] = defaultdict(list)
    for path in expand_paths(inputs, report):
        st = read_file(path, report, headonly=True)
        for tr in st or []:
            s = tr.stats
            if s.npts == 0:
                continue
            if s.sampling_rate <= 0:
                report.error(path, f"{tr.id}: sampling rate {s.sampling_rate} Hz is not valid; trace skipped")
                continue
            if _skip_low_rate(tr.id, s.sampling_rate, cfg, report, str(path)):
                continue
            end = s.starttime + s.npts / s.sampling_rate   # end of the last sample's interval
            groups[station_key(s.network, s.station, s.location, s.channel)].append(
                Segment(str(path), s.channel, s.starttime, end, s.sampling_rate))
    return dict(sorted(groups.items()))


def _records(segments: list[Segment], max_gap: float) -> list[list[Segment]]:
    """Split a station's segments into runs whose gaps are at most ``max_gap`` seconds."""
    runs: list[list[Segment]] = []
    end = None
    for seg in sorted(segments, key=lambda s: (s.start, s.path)):
        if end is None or seg.start - end > max_gap:
            runs.append([])
            end = seg.end
        runs[-1].append(seg)
        end = max(end, seg.end)
    return runs


def _grid(t0: UTCDateTime, t1: UTCDateTime, step: float) -> list[tuple[UTCDateTime, UTCDateTime]]:
    """``[t0, t1)`` cut at multiples of ``step`` seconds since the epoch."""
    edges, k = [t0], (int(t0.timestamp // step) + 1) * step
    while k < t1.timestamp:
        edges.append(UTCDateTime(k))
        k += step
    edges.append(t1)
    return list(zip(edges[:-1], edges[1:]))


def _chunks(station: str, segments: list[Segment], cfg: ArchiveConfig, pad: float, sds: str | None = None,
            start: UTCDateTime | None = None, end: UTCDateTime | None = None) -> list[Chunk]:
    """A station's chunks: records (split at gaps longer than ``max_gap``) cut on the chunk grid, within
    ``[start, end)`` when given."""
    chunks = []
    for run in _records(segments, cfg.max_gap):
        anchor, t_end = min(s.start for s in run), max(s.end for s in run)
        t_start, t_end = max(anchor, start or anchor), min(t_end, end or t_end)
        if t_end <= t_start:
            continue
        channels = tuple(sorted({s.channel for s in run}))
        for t0, t1 in _grid(t_start, t_end, cfg.chunk):
            srcs = sorted({s.path for s in run if s.start < t1 + pad and s.end > t0 - pad})
            chunks.append(Chunk(station, t0, t1, tuple(srcs), channels, sds, fingerprint(srcs), not chunks,
                                anchor))
    return chunks


def plan_files(inputs: Sequence[str | Path], cfg: ArchiveConfig, pad: float) -> ArchivePlan:
    """Chunks of plain files/directories/globs."""
    report = InputReport()
    chunks = []
    for station, segments in index_files(inputs, cfg, report).items():
        chunks += _chunks(station, segments, cfg, pad)
    return ArchivePlan(chunks, report)


def _file_span(path: str, report: InputReport) -> tuple[UTCDateTime, UTCDateTime, float] | None:
    """First sample time, end of the last sample and sampling rate of a day file: miniSEED's first and last
    record only, else the headers."""
    from obspy.io.mseed.util import get_record_information, get_start_and_end_time

    try:
        first, last = get_start_and_end_time(path)
        rate = get_record_information(path)["samp_rate"]
        return first, last + 1.0 / rate, rate
    except Exception:  # not miniSEED (or odd record lengths): read every header
        st = read_file(Path(path), report, headonly=True)
        if st is None:
            return None
        return (min(tr.stats.starttime for tr in st), max(tr.stats.endtime + tr.stats.delta for tr in st),
                st[0].stats.sampling_rate)


def sds_channels(root: str | Path, select: Sequence[str], sds_type: str = "D") -> dict[str, list[str]]:
    """``{NET.STA.LOC.BB: [channel codes]}`` of an SDS archive matching ``select`` (``NET.STA.LOC.CHA`` patterns
    with ``*``/``?`` wildcards; an empty location is written ``NET.STA..CHA``; none: every channel)."""
    from obspy.clients.filesystem.sds import Client

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"SDS root {root} is not a directory")
    patterns = list(select) or ["*"]
    groups: dict[str, list[str]] = defaultdict(list)
    for nslc in Client(str(root), sds_type=sds_type).get_all_nslc(sds_type=sds_type):
        if any(fnmatch.fnmatchcase(".".join(nslc), p) for p in patterns):
            groups[station_key(*nslc)].append(nslc[3])
    if not groups:
        raise ValueError(f"no channel in SDS archive {root} matches {', '.join(patterns)}")
    return dict(groups)


def plan_sds(root: str | Path, start: UTCDateTime, end: UTCDateTime, select: Sequence[str], cfg: ArchiveConfig,
             pad: float = 60.0, sds_type: str = "D", channels: dict[str, list[str]] | None = None) -> ArchivePlan:
    """Chunks of an SDS archive between ``start`` and ``end`` for channels matching ``select`` (see
    :func:`sds_channels`; ``channels``: its result, when already known).

    Only the first and last record of each day file are read to plan (a gap inside a day file is zero-filled and
    masked when picked, however long)."""
    from obspy.clients.filesystem.sds import Client

    root = Path(root)
    if end <= start:
        raise ValueError(f"--end {end} must be after --start {start}")
    groups = channels if channels is not None else sds_channels(root, select, sds_type)
    report = InputReport()
    client = Client(str(root), sds_type=sds_type)
    chunks = []
    for station, codes in sorted(groups.items()):
        net, sta, loc, _ = station.split(".")
        segments, low_rate = [], set()
        day = UTCDateTime(start.year, start.month, start.day) - 86400   # the day before may hold data after midnight
        while day < end:
            for c in codes:
                path = os.path.join(str(root), client.FMTSTR.format(
                    network=net, station=sta, location=loc, channel=c, year=day.year, doy=day.julday,
                    sds_type=sds_type))
                if c in low_rate or not os.path.isfile(path) or (span := _file_span(path, report)) is None:
                    continue
                if _skip_low_rate(f"{net}.{sta}.{loc}.{c}", span[2], cfg, report, path):
                    low_rate.add(c)   # said once per channel, not once per day
                    continue
                segments.append(Segment(path, c, *span))
            day += 86400
        chunks += _chunks(station, segments, cfg, pad, str(root), start, end)
    return ArchivePlan(chunks, report)


def read_chunk(chunk: Chunk, pad: float, cfg: ArchiveConfig, report: InputReport, stride: float = 0.0) -> Stream:
    """The chunk's traces between ``t0 - pad`` and ``t1 + pad`` (only those records are read from miniSEED).

    With a window ``stride`` (seconds), the start moves back onto the window grid of the chunk's record."""
    a, b = chunk.t0 - pad, chunk.t1 + pad
    if stride > 0 and chunk.anchor is not None and a > chunk.anchor:
        a = chunk.anchor + np.floor((a - chunk.anchor) / stride) * stride
    net, sta, loc, band = chunk.station.split(".")
    st = Stream()
    if chunk.sds:
        from obspy.clients.filesystem.sds import Client

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            st = Client(chunk.sds).get_waveforms(net, sta, loc, f"{band}?", a, b, merge=False)
        for w in caught:
            report.warn(chunk.sds, f"{chunk.station}: reader warning: {str(w.message).strip()}")
        for tr in st:
            tr.stats._source = os.path.join(chunk.sds, tr.id)
    else:
        for path in chunk.sources:
            with warnings.catch_warnings(record=True):  # reader warnings were reported when indexing
                warnings.simplefilter("always")
                try:
                    part = obspy.read(path, starttime=a, endtime=b)
                except Exception as err:  # the file changed or vanished since indexing
                    report.error(path, f"unreadable ({type(err).__name__}: {err}); skipped")
                    continue
            for tr in part.select(network=net, station=sta, location=loc, channel=f"{band}?"):
                tr.stats._source = path
                st += tr
    kept = Stream()
    for tr in st:
        if tr.stats.sampling_rate <= 0:
            continue
        if not _skip_low_rate(tr.id, tr.stats.sampling_rate, cfg, report, tr.stats._source):
            kept += tr
    kept.trim(a, b)
    kept = Stream([tr for tr in kept if tr.stats.npts > 0])
    if cfg.inventory and any(tr.stats.channel[-1] in "123" for tr in kept):
        kept = _rotate(kept, cfg.inventory, chunk.station, report)
    return kept


def release_memory() -> None:
    """Hand a finished chunk's memory back to the system: without it, glibc keeps freed arenas and the resident
    size of a long run creeps up chunk after chunk."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, musl): nothing to trim
        pass


@lru_cache(maxsize=2)
def _inventory(path: str):
    return obspy.read_inventory(path)


def _rotate(st: Stream, inventory: str, station: str, report: InputReport) -> Stream:
    """Z/1/2 → Z/N/E from the inventory's orientations; without metadata 1/2 stay and are taken as N/E."""
    sources = {tr.stats._source for tr in st}
    try:
        rotated = st.copy().rotate("->ZNE", inventory=_inventory(inventory), components=("Z12", "123"))
    except Exception as err:  # no response/orientation for these channels at this time
        report.warn(inventory, f"{station}: cannot rotate to Z/N/E ({type(err).__name__}: {err}); 1/2 used as N/E")
        return st
    for tr in rotated:
        tr.stats._source = next(iter(sources))
    return rotated
