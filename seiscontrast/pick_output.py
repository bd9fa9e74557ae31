"""Writing picks: CSV, QuakeML (ObsPy ``Catalog``/``Pick``), JSON or JSON Lines, always atomically; the run
summary; a figure per station (waveforms, probability curves, picks)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from obspy import UTCDateTime
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

from . import __version__
from .data.obspy_source import StationRecord
from .files import atomic_write

FORMATS = ("csv", "quakeml", "json", "jsonl")
#: namespace of the QuakeML extension element that carries each pick's probability
NAMESPACE = "https://seiscontrast.readthedocs.io/xmlns/pick/1.0"


def format_from_suffix(path: str | Path | None) -> str:
    """Output format implied by a file name (``csv`` when nothing else fits)."""
    suffix = Path(path).suffix.lower() if path else ""
    return {".xml": "quakeml", ".qml": "quakeml", ".quakeml": "quakeml", ".json": "json",
            ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "csv")


def pick_id(row) -> str:
    """Stable QuakeML resource id of a pick: the same pick gets the same id in every run."""
    t = UTCDateTime(row.time).strftime("%Y%m%dT%H%M%S.%f")
    return f"smi:seiscontrast/pick/{row.network}.{row.station}.{row.location}.{row.channel}/{row.phase}/{t}"


def picks_to_catalog(picks: pd.DataFrame, model: str = "default", version: str = __version__) -> Catalog:
    """ObsPy ``Catalog`` with one ``Event`` that holds the (unassociated) picks.

    Each pick carries a stable id, ``method_id`` naming the model and its version, the channel it was read from,
    the uncertainty window as lower/upper uncertainty, and its probability as an extension element (QuakeML has no
    probability field for picks) plus a comment for readers that drop extensions.
    """
    info = CreationInfo(agency_id="seiscontrast", author=f"seiscontrast {__version__}", creation_time=UTCDateTime())
    method = ResourceIdentifier(f"smi:seiscontrast/method/{model.replace(':', '/')}/{version}")
    event = Event(resource_id=ResourceIdentifier(prefix="smi:seiscontrast/event"), creation_info=info,
                  comments=[Comment(text="unassociated picks")])
    for row in picks.itertuples():
        t = UTCDateTime(row.time)
        pick = Pick(
            resource_id=ResourceIdentifier(pick_id(row)), time=t,
            time_errors=QuantityError(lower_uncertainty=max(0.0, t - UTCDateTime(row.start)),
                                      upper_uncertainty=max(0.0, UTCDateTime(row.end) - t)),
            waveform_id=WaveformStreamID(network_code=row.network, station_code=row.station,
                                         location_code=row.location or "", channel_code=row.channel),
            phase_hint=row.phase, evaluation_mode="automatic", method_id=method,
            comments=[Comment(text=f"probability={row.probability}")], creation_info=info)
        pick.extra = {"probability": {"value": f"{row.probability:g}", "namespace": NAMESPACE}}
        event.picks.append(pick)
    return Catalog(events=[event])


def write_picks(picks: pd.DataFrame, path: str | Path, fmt: str = "csv", model: str = "default",
                version: str = __version__) -> Path:
    """Write picks as ``csv``, ``quakeml``, ``json`` (one array) or ``jsonl`` (one object per line), atomically."""
    path = Path(path)
    picks = picks.assign(location=picks.location.fillna("")) if len(picks) else picks
    records = picks.to_dict(orient="records")
    if fmt == "csv":
        atomic_write(path, lambda tmp: picks.to_csv(tmp, index=False))
    elif fmt == "json":
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(records, indent=1) + "\n"))
    elif fmt == "jsonl":
        atomic_write(path, lambda tmp: Path(tmp).write_text("".join(json.dumps(r) + "\n" for r in records)))
    elif fmt == "quakeml":
        atomic_write(path, lambda tmp: picks_to_catalog(picks, model, version).write(
            tmp, format="QUAKEML", nsmap={"seiscontrast": NAMESPACE}))
    else:
        raise ValueError(f"unknown output format {fmt!r} ({', '.join(FORMATS)})")
    return path


def summary(result, max_lines: int = 20) -> str:
    """Totals, then the inputs that could not be used and those used with changes (at most ``max_lines``)."""
    counts = Counter(result.picks.phase)
    lines = [f"processed {result.chunks} station chunk(s) of {result.stations} station(s), {result.hours:.2f} h of "
             f"data: {len(result.picks)} picks (P {counts.get('P', 0)}, S {counts.get('S', 0)})"]
    problems = ([f"  could not use {s}: {m}" for s, m in dict.fromkeys(result.report.errors)]
                + [f"  used with changes {s}: {m}" for s, m in dict.fromkeys(result.report.warnings)])
    lines += problems[:max_lines]
    if len(problems) > max_lines:
        lines.append(f"  … and {len(problems) - max_lines} more (all in pick.log)")
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
        keep = ta <= t[-1]
        axes[3].plot(ta[keep], tr.data[keep], color="tab:blue" if phase == "P" else "tab:red",
                     label=f"{phase} probability")
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
