"""Picking one station × time chunk with any SeisBench picker (ours, or SeisBench's PhaseNet, EQTransformer …).

A chunk is read with context on either side (:func:`context_pad`), cleaned and merged into one Z/N/E record
(:func:`~seiscontrast.data.obspy_source.station_record`), annotated by SeisBench, masked near gaps (a zero-filled
stretch starts and ends like an onset), and reduced to the picks whose time the chunk owns. Rows are
``network, station, location, channel, phase, time, probability, start, end`` (times ISO-8601 UTC; ``start``/
``end`` bound where the probability exceeds the threshold, the pick's uncertainty window). Archive runs
(resumable, parallel, sharded) are in :mod:`seiscontrast.pick_run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import seisbench.models as sbm
import torch
from obspy import Stream, Trace, UTCDateTime

from .archive import ArchiveConfig, ArchivePlan, Chunk, plan_files, read_chunk
from .data.obspy_source import InputReport, StationRecord, station_key, station_record
from .data.windows import WindowConfig
from .logs import get_logger, progress_bar
from .memory import keep_freed_memory

log = get_logger(__name__)
COLUMNS = ["network", "station", "location", "channel", "phase", "time", "probability", "start", "end"]


@dataclass
class PickSettings:
    """Attributes: thresholds (probability; ``None``: the model's own, :func:`model_thresholds`), overlap (samples
    or fraction of a window; ``None``: the model's default), batch size, device, ``gap_margin``: seconds around a
    zero-filled gap without picks, ``sweep``: further thresholds (both phases) at which each chunk is also picked
    from the same probabilities (:attr:`ChunkResult.sweep`; for choosing thresholds, ``seiscontrast score-picks
    --thresholds``), and ``highpass``: corner (Hz) of the high-pass of seiscontrast models (``None``: the model's
    own, 0: off)."""

    p_threshold: float | None = None
    s_threshold: float | None = None
    overlap: float | None = None
    batch_size: int = 64
    device: str = "cpu"
    gap_margin: float = 2.0
    sweep: tuple[float, ...] = ()
    highpass: float | None = None

    def __post_init__(self):
        thresholds = [("P threshold", self.p_threshold), ("S threshold", self.s_threshold),
                      *(("sweep threshold", t) for t in self.sweep)]
        for name, value in thresholds:
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be a probability in (0, 1], got {value:g}")
        if self.overlap is not None and self.overlap < 0:
            raise ValueError(f"overlap must be >= 0 (samples, or a fraction of a window), got {self.overlap:g}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        if self.gap_margin < 0:
            raise ValueError(f"gap margin must be >= 0 s, got {self.gap_margin:g}")
        if self.highpass is not None and self.highpass < 0:
            raise ValueError(f"high-pass corner must be >= 0 Hz (0: off), got {self.highpass:g}")

    def for_model(self, model: sbm.WaveformModel) -> PickSettings:
        """These settings with the thresholds left to the model (``None``) set to its own."""
        own = model_thresholds(model)
        return replace(self, p_threshold=own["P"] if self.p_threshold is None else self.p_threshold,
                       s_threshold=own["S"] if self.s_threshold is None else self.s_threshold)

    def annotate_args(self, model: sbm.WaveformModel) -> dict:
        """The model's default ``annotate``/``classify`` arguments with these settings applied."""
        resolved = self.for_model(model)
        args = model.default_args.copy()
        args.update(P_threshold=resolved.p_threshold, S_threshold=resolved.s_threshold, batch_size=self.batch_size)
        if self.overlap is not None:
            args["overlap"] = int(self.overlap) if self.overlap >= 1 else self.overlap
        if self.highpass is not None:
            if "highpass" not in model._annotate_args:
                raise ValueError(f"a high-pass ({self.highpass:g} Hz) is a setting of seiscontrast models; "
                                 f"{model.__class__.__name__} takes its input as it comes")
            args["highpass"] = self.highpass
        return args


def model_thresholds(model: sbm.WaveformModel) -> dict[str, float]:
    """The P and S thresholds ``model`` picks at unless told otherwise: those its weights carry (SeisBench's
    ``default_args``; ours: chosen by ``seiscontrast calibrate``), else its class default."""
    fallback = model._annotate_args.get("*_threshold", (None, 0.3))[1]
    return {phase: float(model.default_args.get(f"{phase}_threshold", fallback)) for phase in "PS"}


def picks_at_threshold(model: sbm.WaveformModel, annotations: Stream, args: dict, threshold: float):
    """Picks of both phases at ``threshold`` from probabilities already computed with ``args``
    (:meth:`PickSettings.annotate_args`): another threshold costs no second pass of the network."""
    return model.classify_aggregate(annotations, {**args, "P_threshold": threshold, "S_threshold": threshold}).picks


@dataclass
class ChunkResult:
    """Picks of one chunk (rows as in :data:`COLUMNS`), what went wrong, the hours of data picked, and the rows at
    each threshold of :attr:`PickSettings.sweep` (in process only; not saved with the chunk)."""

    chunk_id: str
    station: str
    rows: list[dict] = field(default_factory=list)
    report: InputReport = field(default_factory=InputReport)
    hours: float = 0.0
    sweep: dict[float, list[dict]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        r = self.report
        return dict(chunk=self.chunk_id, station=self.station, hours=self.hours, picks=self.rows,
                    errors=r.errors, warnings=r.warnings, notes=r.notes)

    @classmethod
    def from_dict(cls, d: dict) -> ChunkResult:
        report = InputReport([tuple(e) for e in d["errors"]], [tuple(w) for w in d["warnings"]],
                             [tuple(n) for n in d["notes"]])
        return cls(d["chunk"], d["station"], d["picks"], report, d["hours"])


def context_pad(model: sbm.WaveformModel) -> float:
    """Seconds read beyond each chunk edge: one model window plus a margin, so that every window covering the
    chunk's own span sees the data it would see in an unchunked run."""
    return model.in_samples / model.sampling_rate + 5.0


def record_stream(rec: StationRecord, min_samples: int = 0, lead: int = 0) -> Stream:
    """The cleaned record as a Z/N/E Stream for SeisBench (gaps zero-filled, NaN removed, model rate).

    ``lead`` samples go before the record (see :func:`window_grid_lead`): its start mirrored, so that no step
    from silence to noise looks like an onset; records shorter than ``min_samples`` (one window) are
    zero-padded at the end so that they can be picked.
    """
    net, sta, loc, band = rec.station.split(".")
    n = rec.data.shape[1]
    tail = max(0, min_samples - lead - n)
    st = Stream()
    for c, comp in enumerate("ZNE"):
        front = rec.data[c, lead:0:-1] if lead < n else np.zeros(lead, dtype=rec.data.dtype)
        tr = Trace(np.concatenate([front, rec.data[c], np.zeros(tail, dtype=rec.data.dtype)]))
        tr.stats.update(dict(network=net, station=sta, location=loc, channel=f"{band}{comp}",
                             sampling_rate=rec.sampling_rate, starttime=rec.start - lead / rec.sampling_rate))
        st += tr
    return st


def model_record(model: sbm.WaveformModel, stream: Stream, report: InputReport, station: str | None = None
                 ) -> StationRecord | None:
    """``stream`` cleaned and merged into the one Z/N/E record ``model`` annotates (its rate and window length;
    :func:`~seiscontrast.data.obspy_source.station_record`, which may change ``stream``); ``station`` defaults to
    the first trace's ``NET.STA.LOC.XX``."""
    if station is None:
        s = stream[0].stats
        station = station_key(s.network, s.station, s.location, s.channel)
    window = WindowConfig(length=model.in_samples, sampling_rate=model.sampling_rate)
    return station_record(station, stream, window, report)


def window_stride(model: sbm.WaveformModel, args: dict) -> float:
    """Seconds between the starts of SeisBench's windows (0 for models that do not slide array windows)."""
    if model.output_type != "array":
        return 0.0
    return (model.in_samples - model._get_overlap(model.in_samples, args)) / model.sampling_rate


def window_grid_lead(model: sbm.WaveformModel, rec: StationRecord, args: dict, anchor: UTCDateTime | None) -> int:
    """Samples to put before a record so that SeisBench's windows (which start at the stream start, one stride
    apart) sit on the grid that starts at ``anchor`` (the start of the data): every chunking of an archive then
    sees the windows an unchunked run sees. Chunks are read from a grid point, so this is 0 unless the data
    there is missing."""
    stride = int(round(window_stride(model, args) * rec.sampling_rate))
    if anchor is None or stride <= 0 or rec.start <= anchor:
        return 0
    return -int(round((rec.start - anchor) * rec.sampling_rate)) % stride


def mask_gaps(annotations: Stream, rec: StationRecord, spans: list[tuple[int, int]], margin: float) -> None:
    """Zero every probability curve within ``margin`` seconds of the sample ranges ``spans`` (in place)."""
    for tr in annotations:
        rate, t0 = tr.stats.sampling_rate, tr.stats.starttime
        for a, b in spans:
            i0 = int(np.floor((rec.start + a / rec.sampling_rate - margin - t0) * rate))
            i1 = int(np.ceil((rec.start + b / rec.sampling_rate + margin - t0) * rate))
            tr.data[max(0, i0): max(0, i1)] = 0.0


def _channel_codes(channels: Sequence[str], band: str) -> dict[str, str]:
    """Channel code a P (vertical) and an S (first horizontal) pick is reported on."""
    z = next((c for c in channels if c[-1] == "Z"), channels[0] if channels else f"{band}Z")
    h = next((c for c in channels if c[-1] in "NE12"), z)
    return {"P": z, "S": h}


def _rows(chunk: Chunk, picks) -> list[dict]:
    """Rows (:data:`COLUMNS`) of the picks whose time the chunk owns."""
    net, sta, loc, band = chunk.station.split(".")
    codes = _channel_codes(chunk.channels, band)
    return [dict(network=net, station=sta, location=loc, channel=codes.get(p.phase, codes["P"]), phase=p.phase,
                 time=str(p.peak_time), probability=round(float(p.peak_value), 4), start=str(p.start_time),
                 end=str(p.end_time if p.end_time else p.start_time))
            for p in picks if chunk.t0 <= p.peak_time < chunk.t1]


def pick_chunk(model: sbm.WaveformModel, chunk: Chunk, settings: PickSettings, archive: ArchiveConfig,
               plot_dir: Path | None = None) -> ChunkResult:
    """Read, clean, annotate and pick one chunk; problems go into the result's report, never raise."""
    keep_freed_memory()   # for any model: reuse the pages of the last batch's activations
    result = ChunkResult(chunk.id, chunk.station)
    report = result.report
    where = chunk.sds or ", ".join(chunk.sources)
    try:
        args = settings.annotate_args(model)
        stream = read_chunk(chunk, context_pad(model), archive, report, window_stride(model, args))
        if not len(stream):  # an SDS day file need not cover every chunk of its day; planned files do
            (report.note if chunk.sds else report.error)(
                where, f"{chunk.station}: no data between {chunk.t0} and {chunk.t1}; skipped")
            return result
        rec = model_record(model, stream, report, chunk.station)
        del stream
        if rec is None:
            return result
        if rec.data.shape[1] < model.in_samples:
            report.note(", ".join(rec.sources), f"{chunk.station}: {rec.duration:.1f} s is shorter than one "
                        f"window ({model.in_samples / model.sampling_rate:.2f} s); zero-padded")
        annotations, picks = annotate_record(model, rec, settings, chunk.anchor)
    except Exception as err:  # a chunk SeisBench (or a reader) cannot handle must not stop the others
        report.error(where, f"{chunk.station} {chunk.t0}: picking failed ({type(err).__name__}: {err})")
        return result
    result.rows = _rows(chunk, picks)
    for threshold in settings.sweep:
        result.sweep[threshold] = _rows(chunk, picks_at_threshold(model, annotations, args, threshold))
    data_end = rec.start + rec.data.shape[1] / rec.sampling_rate
    result.hours = max(0.0, min(chunk.t1, data_end) - max(chunk.t0, rec.start)) / 3600
    if plot_dir is not None and chunk.first:
        from .pick_output import plot_station

        plot_station(chunk.station, rec, annotations, [p for p in picks if p.peak_time >= chunk.t0], plot_dir)
    return result


def annotate_record(model: sbm.WaveformModel, rec: StationRecord, settings: PickSettings,
                    anchor: UTCDateTime | None = None):
    """SeisBench ``annotate`` + ``classify_aggregate`` on one record, with gaps and padding masked; windows on the
    grid from ``anchor`` (see :func:`window_grid_lead`)."""
    args = settings.annotate_args(model)
    n = rec.data.shape[1]
    lead = window_grid_lead(model, rec, args, anchor)
    with torch.inference_mode():
        annotations = model.annotate(record_stream(rec, model.in_samples, lead), **args)
    spans = list(rec.gaps) + [(-lead, 0)] * bool(lead)
    if lead + n < model.in_samples:
        spans.append((n, model.in_samples - lead))
    if spans:
        mask_gaps(annotations, rec, spans, settings.gap_margin)
    return annotations, model.classify_aggregate(annotations, args).picks


@dataclass
class PickResult:
    """Picks of a run, the input report, how much was processed (station chunks, hours), and the picks at each
    threshold of :attr:`PickSettings.sweep`."""

    picks: pd.DataFrame
    report: InputReport
    chunks: int = 0
    stations: int = 0
    hours: float = 0.0
    sweep: dict[float, pd.DataFrame] = field(default_factory=dict)


def _table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["time", "station", "phase"]).reset_index(drop=True)


def collect(results: Sequence[ChunkResult], report: InputReport) -> PickResult:
    """One table of picks (sorted by time and station), one per swept threshold, and one report from chunk
    results."""
    for res in results:
        report.extend(res.report)
    used = [r for r in results if r.hours > 0]
    sweep = {t: _table([row for res in results for row in res.sweep.get(t, [])])
             for t in sorted({t for res in results for t in res.sweep})}
    return PickResult(_table([r for res in results for r in res.rows]), report, len(used),
                      len({r.station for r in used}), sum(r.hours for r in results), sweep)


def pick_plan(plan: ArchivePlan, model: sbm.WaveformModel, settings: PickSettings | None = None,
              archive: ArchiveConfig | None = None, plot_dir: Path | None = None, progress: bool = False
              ) -> PickResult:
    """Pick the chunks of an archive plan (files or SDS) in this process, chunk by chunk."""
    settings = settings or PickSettings()
    archive = archive or ArchiveConfig()
    model = model.to(settings.device).eval()
    chunks = progress_bar(plan.chunks, enabled=progress, desc="picking", unit="chunk")
    return collect([pick_chunk(model, c, settings, archive, plot_dir) for c in chunks], plan.report)


def pick_files(inputs: Sequence[str | Path], model: sbm.WaveformModel, settings: PickSettings | None = None,
               archive: ArchiveConfig | None = None, plot_dir: Path | None = None) -> PickResult:
    """Pick files/directories/globs in this process, chunk by chunk (the Python face of ``seiscontrast pick``)."""
    archive = archive or ArchiveConfig()
    return pick_plan(plan_files(inputs, archive, context_pad(model)), model, settings, archive, plot_dir)
