"""Picking archives: read files, group by station, run the SeisBench-compatible picker, write picks.

Output rows: ``network, station, location, phase, time, probability, start, end`` (times ISO-8601 UTC; ``start``/
``end`` bound where the probability exceeds the threshold, i.e. the pick's uncertainty window). CSV, QuakeML
(ObsPy ``Catalog``/``Pick``) or JSON lines, always written atomically.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from obspy import Stream, Trace
from obspy.core.event import (
    Catalog,
    Comment,
    CreationInfo,
    Event,
    Pick,
    QuantityError,
    ResourceIdentifier,
    WaveformStreamID,
)
from tqdm import tqdm

from . import __version__
from .data.obspy_source import (
    InputReport,
    StationRecord,
    expand_paths,
    group_by_station,
    read_file,
    station_record,
)
from .data.windows import WindowConfig
from .files import atomic_write
from .logs import get_logger
from .picker import SeisContrastPicker

log = get_logger(__name__)
COLUMNS = ["network", "station", "location", "phase", "time", "probability", "start", "end"]


@dataclass
class PickSettings:
    """Attributes: thresholds (probability), overlap (samples or fraction of a window), batch size, device."""

    p_threshold: float = 0.3
    s_threshold: float = 0.3
    overlap: float | None = None
    batch_size: int = 64
    device: str = "cpu"


@dataclass
class PickResult:
    """Picks of a run, the input report, and how much data was processed (stations, hours)."""

    picks: pd.DataFrame
    report: InputReport
    stations: int = 0
    hours: float = 0.0
    annotations: dict = field(default_factory=dict)   # station → (record, annotation Stream) when plotting


def record_stream(rec: StationRecord, min_samples: int = 0) -> Stream:
    """The cleaned record as a Z/N/E Stream for SeisBench (gaps zero-filled, NaN removed, model rate).

    Records shorter than ``min_samples`` (one window) are zero-padded at the end so that they can be picked.
    """
    net, sta, loc, band = rec.station.split(".")
    st = Stream()
    for c, comp in enumerate("ZNE"):
        tr = Trace(np.pad(rec.data[c], (0, max(0, min_samples - rec.data.shape[1]))))
        tr.stats.update(dict(network=net, station=sta, location=loc, channel=f"{band}{comp}",
                             sampling_rate=rec.sampling_rate, starttime=rec.start))
        st += tr
    return st


def pick_files(inputs: Sequence[str | Path], model: SeisContrastPicker, settings: PickSettings,
               keep_annotations: bool = False, progress: bool = True) -> PickResult:
    """Pick every station found in ``inputs``; problems are reported per file, the rest is still picked."""
    report = InputReport()
    window = WindowConfig(length=model.in_samples, sampling_rate=model.sampling_rate)
    files = expand_paths(inputs, report)
    streams = []
    for path in tqdm(files, desc="reading", unit="file", disable=not progress or len(files) < 20):
        st = read_file(path, report)
        if st is not None:
            streams.append(st)
    groups = group_by_station(streams)
    model = model.to(settings.device).eval()
    kwargs = dict(P_threshold=settings.p_threshold, S_threshold=settings.s_threshold,
                  batch_size=settings.batch_size)
    if settings.overlap is not None:
        kwargs["overlap"] = int(settings.overlap) if settings.overlap >= 1 else settings.overlap
    rows, result = [], PickResult(pd.DataFrame(columns=COLUMNS), report)
    records = []
    for key, st in groups.items():
        rec = station_record(key, st, window, report)
        if rec is not None:
            records.append(rec)
    total_h = sum(r.duration for r in records) / 3600
    with tqdm(total=round(total_h, 3), desc="picking", unit="h", disable=not progress,
              bar_format="{l_bar}{bar}| {n:.2f}/{total:.2f} h [{elapsed}<{remaining}]") as bar:
        for rec in records:
            stream = record_stream(rec, model.in_samples)
            args = model.default_args.copy()
            args.update(kwargs)
            try:
                with torch.inference_mode():
                    annotations = model.annotate(stream, **args)
                picks = model.classify_aggregate(annotations, args).picks
            except Exception as err:  # a record SeisBench cannot handle must not stop the others
                report.error(", ".join(rec.sources), f"{rec.station}: picking failed ({type(err).__name__}: {err})")
                continue
            net, sta, loc, _ = rec.station.split(".")
            for p in picks:
                rows.append(dict(network=net, station=sta, location=loc, phase=p.phase,
                                 time=str(p.peak_time), probability=round(float(p.peak_value), 4),
                                 start=str(p.start_time), end=str(p.end_time if p.end_time else p.start_time)))
            if keep_annotations:
                result.annotations[rec.station] = (rec, annotations, picks)
            result.stations += 1
            result.hours += rec.duration / 3600
            bar.update(round(rec.duration / 3600, 3))
    result.picks = pd.DataFrame(rows, columns=COLUMNS).sort_values(["time", "station"]).reset_index(drop=True)
    return result


def picks_to_catalog(picks: pd.DataFrame, model_name: str = "seiscontrast") -> Catalog:
    """ObsPy ``Catalog`` with one (unassociated) ``Event`` holding all picks; probability as a comment."""
    from obspy import UTCDateTime

    info = CreationInfo(agency_id="seiscontrast", author=f"seiscontrast {__version__}", creation_time=UTCDateTime())
    event = Event(resource_id=ResourceIdentifier(prefix="smi:seiscontrast/event"), creation_info=info,
                  comments=[Comment(text="unassociated picks")])
    for row in picks.itertuples():
        t = UTCDateTime(row.time)
        event.picks.append(Pick(
            resource_id=ResourceIdentifier(prefix="smi:seiscontrast/pick"), time=t,
            time_errors=QuantityError(lower_uncertainty=max(0.0, t - UTCDateTime(row.start)),
                                      upper_uncertainty=max(0.0, UTCDateTime(row.end) - t)),
            waveform_id=WaveformStreamID(network_code=row.network, station_code=row.station,
                                         location_code=row.location or ""),
            phase_hint=row.phase, evaluation_mode="automatic", method_id=f"smi:seiscontrast/{model_name}",
            comments=[Comment(text=f"probability={row.probability}")], creation_info=info))
    return Catalog(events=[event])


def write_picks(picks: pd.DataFrame, path: str | Path, fmt: str = "csv") -> Path:
    """Write picks as ``csv``, ``quakeml`` or ``json`` (JSON lines), atomically."""
    path = Path(path)
    if fmt == "csv":
        atomic_write(path, lambda tmp: picks.to_csv(tmp, index=False))
    elif fmt == "json":
        atomic_write(path, lambda tmp: Path(tmp).write_text(
            "".join(json.dumps(r) + "\n" for r in picks.to_dict(orient="records"))))
    elif fmt == "quakeml":
        atomic_write(path, lambda tmp: picks_to_catalog(picks).write(tmp, format="QUAKEML"))
    else:
        raise ValueError(f"unknown output format {fmt!r} (csv, quakeml, json)")
    return path


def summary(result: PickResult) -> str:
    """One line of totals plus one line per input that could not be used."""
    counts = Counter(result.picks.phase)
    lines = [f"processed {result.stations} station record(s), {result.hours:.2f} h of data: "
             f"{len(result.picks)} picks (P {counts.get('P', 0)}, S {counts.get('S', 0)})"]
    for src, msg in result.report.errors:
        lines.append(f"  could not use {src}: {msg}")
    return "\n".join(lines)


def plot_station(station: str, rec: StationRecord, annotations, picks, out_dir: Path,
                 max_hours: float = 2.0) -> Path:
    """Waveforms with P/S probability curves and picks for one station (first ``max_hours`` hours)."""
    from .plots import plt

    n = min(rec.data.shape[1], int(max_hours * 3600 * rec.sampling_rate))
    t = np.arange(n) / rec.sampling_rate
    fig, axes = plt.subplots(4, 1, figsize=(14, 8), sharex=True)
    for ax, c, comp in zip(axes[:3], range(3), "ZNE"):
        ax.plot(t, rec.data[c, :n], lw=0.4, color="k")
        ax.set_ylabel(comp)
    for tr in annotations:
        phase = tr.stats.channel.split("_")[-1]
        if phase not in "PS":
            continue
        ta = tr.times() + (tr.stats.starttime - rec.start)
        axes[3].plot(ta, tr.data, color="tab:blue" if phase == "P" else "tab:red", label=f"{phase} probability")
    for p in picks:
        x = p.peak_time - rec.start
        if x <= t[-1]:
            for ax in axes:
                ax.axvline(x, color="tab:blue" if p.phase == "P" else "tab:red", lw=0.8, alpha=0.7)
    axes[3].set_ylim(0, 1.02)
    if axes[3].lines:
        axes[3].legend(fontsize=8, loc="upper right")
    axes[3].set_xlabel(f"seconds after {rec.start}")
    fig.suptitle(f"{station}: {len(picks)} picks")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{station}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

