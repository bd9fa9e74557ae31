"""Convert a miniSEED (or any ObsPy-readable) archive, optionally with picks, into a SeisBench-format dataset.

Picks come from a CSV (columns ``network, station, phase, time`` and optionally ``location``, ``channel``; the
CSV that ``seiscontrast pick`` writes is accepted as is) or a QuakeML file (``Pick`` objects with a waveform id
and a phase hint); only first P and S arrivals count (P, Pg, Pn, Sg, …; not pP, PmP or amplitude picks). With
picks, one trace is cut around each event at each station; stations without picks are cut into consecutive
traces (no pick columns) that serve for pretraining.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import seisbench.data as sbd
from obspy import UTCDateTime

from ..logs import get_logger, progress_bar
from .obspy_source import InputReport, StationRecord, station_record
from .windows import WindowConfig

log = get_logger(__name__)


@dataclass
class ConvertConfig:
    """How traces are cut (seconds) and split.

    Attributes:
        trace_length: seconds per trace.
        pre_pick: seconds kept before the first pick of an event.
        max_s_minus_p: an S pick up to this many seconds after a P pick belongs to the same event.
        split_fractions: train/dev/test shares, drawn per trace with ``seed``.
        trace_overlap: seconds shared by consecutive traces of a station without picks.
        keep_tail: without picks, also write the shorter last trace of each record (embeddings cover the end).
    """

    trace_length: float = 60.0
    pre_pick: float = 15.0
    max_s_minus_p: float = 40.0
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    seed: int = 0
    trace_overlap: float = 0.0
    keep_tail: bool = False


#: phase hints of direct first P and S arrivals: P, Pg, Pn, Pb, P*, lower case (TauP's up-going p, s), with an
#: onset letter (IP, ES); not depth phases (pP, sP), reflections (PmP, PcP), core phases or amplitude picks (IAML)
_FIRST_ARRIVAL = re.compile(r"^[IE]?([PS])([GNB*]|[12])?$", re.IGNORECASE)


def first_arrival_phase(hint) -> str | None:
    """``"P"`` or ``"S"`` for a phase hint of a direct first arrival, else ``None``."""
    m = _FIRST_ARRIVAL.match(str(hint).strip()) if isinstance(hint, str) else None
    return m.group(1).upper() if m else None


def read_picks(path: str | Path) -> pd.DataFrame:
    """Picks as a table ``network, station, location, channel, phase (P|S), time (UTCDateTime)`` from CSV or
    QuakeML (``location`` and ``channel`` empty where not given). Only first P and S arrivals are kept
    (:func:`first_arrival_phase`); the hints of the others are logged."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"picks file {path} does not exist")
    columns = ["network", "station", "location", "channel", "phase", "time"]
    if path.suffix.lower() in (".csv", ".txt"):
        table = pd.read_csv(path, dtype={"network": str, "station": str, "location": str, "channel": str})
        missing = {"network", "station", "phase", "time"} - set(table.columns)
        if missing:
            raise ValueError(f"picks file {path}: missing column(s) {sorted(missing)}")
        for col in ("location", "channel"):
            table[col] = table[col].fillna("") if col in table else ""
        times = []
        for line, t in enumerate(table["time"], start=2):   # line 1 is the header
            try:
                times.append(UTCDateTime(t))
            except Exception:
                raise ValueError(f"picks file {path}, line {line}: time {t!r} is not a time ObsPy understands") \
                    from None
        table["time"] = times
    else:
        try:
            catalog = obspy.read_events(str(path))
        except Exception as err:
            raise ValueError(f"picks file {path}: not CSV and not readable by obspy.read_events ({err})") from None
        rows = [dict(network=p.waveform_id.network_code or "", station=p.waveform_id.station_code or "",
                     location=p.waveform_id.location_code or "", channel=p.waveform_id.channel_code or "",
                     phase=p.phase_hint or "", time=p.time)
                for ev in catalog for p in ev.picks]
        table = pd.DataFrame(rows, columns=columns)
    phase = [first_arrival_phase(h) for h in table["phase"]]
    dropped = table["phase"][[p is None for p in phase]].astype(str).value_counts()
    if len(dropped):
        log.info("%s: %d picks that are not first P or S arrivals ignored (%s)", path, int(dropped.sum()),
                 ", ".join(f"{h} {n}" for h, n in dropped.head(8).items()))
    table["phase"] = phase
    table = table[table["phase"].notna()]
    return table[columns].sort_values("time").reset_index(drop=True)


def _events(picks: pd.DataFrame, max_s_minus_p: float) -> list[dict]:
    """Group one station's picks into events ``{"P": time|None, "S": time|None}``."""
    events: list[dict] = []
    for _, row in picks.iterrows():
        last = events[-1] if events else None
        if (row.phase == "S" and last is not None and last["S"] is None and last["P"] is not None
                and 0 < row.time - last["P"] <= max_s_minus_p):
            last["S"] = row.time
        else:
            events.append({"P": row.time if row.phase == "P" else None, "S": row.time if row.phase == "S" else None})
    return events


def _segments(rec: StationRecord, picks: pd.DataFrame, cfg: ConvertConfig, t0: UTCDateTime, t1: UTCDateTime,
              anchor: UTCDateTime):
    """Yield ``(start_sample, {column: sample})`` for each trace a chunk ``[t0, t1)`` owns in its record ``rec``.

    With picks, a chunk owns the events whose first pick falls in it; without, the consecutive traces (on a grid
    from the record's start, ``anchor``) that start in it. The record is read with a trace length of margin, so a
    trace that starts near ``t1`` is still whole.
    """
    fs = rec.sampling_rate
    n_len = int(round(cfg.trace_length * fs))
    n_total = rec.data.shape[1]
    if len(picks):
        for ev in _events(picks, cfg.max_s_minus_p):
            first = ev["P"] if ev["P"] is not None else ev["S"]
            if not t0 <= first < t1:
                continue
            start = int(round((first - rec.start - cfg.pre_pick) * fs))
            start = min(max(0, start), max(0, n_total - n_len))
            cols = {}
            for phase in ("P", "S"):
                if ev[phase] is not None:
                    s = (ev[phase] - rec.start) * fs - start
                    if 0 <= s < n_len:
                        cols[f"trace_{phase.lower()}_arrival_sample"] = float(s)
            if cols:
                yield start, cols
        return
    step = max(1, n_len - int(round(cfg.trace_overlap * fs)))
    k0 = int(np.ceil(round((max(t0, rec.start) - anchor) * fs) / step))     # first grid trace starting in the chunk
    offset = int(round((anchor - rec.start) * fs))                           # grid origin, in record samples
    for k in range(k0, k0 + n_total // step + 2):
        start = offset + k * step
        if rec.start + start / fs >= t1 or start >= n_total:
            break
        whole = start + n_len <= n_total
        if start >= 0 and (whole or k == 0 or cfg.keep_tail):   # whole traces; a record shorter than one: as is
            yield start, {}
        if not whole:
            break


def convert_archive(inputs: Sequence[str | Path], out_dir: str | Path, picks: str | Path | None = None,
                    window: WindowConfig | None = None, cfg: ConvertConfig | None = None,
                    progress: bool = True) -> tuple[Path, InputReport, int]:
    """Write ``out_dir/metadata.csv`` + ``waveforms.hdf5`` from an archive; returns ``(out_dir, report, n)``.

    The archive is planned from headers (:func:`~seiscontrast.archive.plan_files`) and read one station-day at a
    time, so memory does not grow with the archive.
    """
    from ..archive import ArchiveConfig, plan_files, read_chunk, release_memory

    window = window or WindowConfig()
    cfg = cfg or ConvertConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "metadata.csv").exists():
        raise FileExistsError(f"{out} already holds a data set (metadata.csv); choose another folder")
    pick_table = read_picks(picks) if picks is not None else None
    archive, pad = ArchiveConfig(), cfg.trace_length + cfg.pre_pick
    plan = plan_files(inputs, archive, pad)
    report = plan.report
    rng = np.random.default_rng(cfg.seed)
    n_written = 0
    with sbd.WaveformDataWriter(out / "metadata.csv", out / "waveforms.hdf5") as writer:
        writer.data_format = {"dimension_order": "CW", "component_order": window.components,
                              "sampling_rate": window.sampling_rate, "measurement": "velocity",
                              "unit": "counts", "instrument_response": "not restituted"}
        # the writer's own bar (made on the first trace, shown even in batch logs) is ours: one bar, terminal only
        writer._pbar = progress_bar(enabled=progress, desc="traces converted", unit="trace")
        for chunk in plan.chunks:
            stream = read_chunk(chunk, pad, archive, report)
            rec = station_record(chunk.station, stream, window, report) if len(stream) else None
            del stream
            if rec is None:
                continue
            net, sta, loc, band = rec.station.split(".")
            station_picks = pd.DataFrame(columns=["phase", "time"])
            if pick_table is not None:
                sel = (pick_table.network == net) & (pick_table.station == sta)
                if (pick_table.location[sel] != "").any():
                    sel &= pick_table.location == loc
                station_picks = pick_table[sel]
            n_len = int(round(cfg.trace_length * rec.sampling_rate))
            for start, cols in _segments(rec, station_picks, cfg, chunk.t0, chunk.t1, chunk.anchor or rec.start):
                data = rec.data[:, start:start + n_len].copy()   # a view would keep the day alive in the bucket
                r = rng.random()
                split = ("train" if r < cfg.split_fractions[0]
                         else "dev" if r < cfg.split_fractions[0] + cfg.split_fractions[1] else "test")
                t = rec.start + start / rec.sampling_rate
                meta = {"trace_name": f"{rec.station}_{t.strftime('%Y%m%dT%H%M%S.%f')}", "trace_start_time": str(t),
                        "trace_sampling_rate_hz": rec.sampling_rate, "station_network_code": net,
                        "station_code": sta, "station_location_code": loc, "trace_channel": band,
                        "trace_p_arrival_sample": np.nan, "trace_s_arrival_sample": np.nan, "split": split}
                meta.update(cols)
                writer.add_trace(meta, data)
                n_written += 1
            del rec
            release_memory()
        writer._pbar.close()
    if n_written == 0:
        raise ValueError(f"no traces could be written from {list(map(str, inputs))}")
    log.debug("wrote %d traces to %s", n_written, out)
    return out, report, n_written
