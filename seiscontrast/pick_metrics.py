"""Pick-level scores on whole traces: what a user of ``seiscontrast pick`` gets, not only window scores.

Every trace of a SeisBench-format dataset is picked as a whole (``annotate`` + ``picks_from_annotations``, the
path of ``pick``), and picks are matched one-to-one to reference onsets of the same phase within a tolerance
(0.1 s and 0.5 s by default): precision, recall and F1 per phase, and the residuals of the matches.
Reference onsets come from the dataset's pick columns, or, for real events without picks (e.g. SeisBench's
dummy dataset), from TauP (iasp91) first arrivals computed from the source and station coordinates.

The probability threshold is a property of the model: :func:`best_threshold` chooses it on a dev set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
from obspy import UTCDateTime

from .data.seisbench_source import P_COLUMNS, S_COLUMNS, open_dataset
from .data.windows import WindowConfig
from .logs import get_logger

log = get_logger(__name__)
TOLERANCES = (0.1, 0.5)
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
PHASES = ("P", "S")


@dataclass
class ReferenceTraces:
    """A stream with one 3-component recording per trace (station code = trace index) and its onsets."""

    stream: obspy.Stream
    onsets: dict[tuple[int, str], list[UTCDateTime]]   # (trace index, phase) -> reference times
    n_traces: int
    name: str


def _onsets_from_columns(row, start: UTCDateTime, fs: float) -> dict[str, list[UTCDateTime]]:
    out = {}
    for phase, columns in (("P", P_COLUMNS), ("S", S_COLUMNS)):
        samples = [float(row[c]) for c in columns if c in row and np.isfinite(row[c])]
        out[phase] = [start + s / fs for s in samples]
    return out


def taup_onsets(row, origin: UTCDateTime, taup) -> dict[str, list[UTCDateTime]]:
    """First P and S arrivals (iasp91 ``taup`` model) from a metadata row's source and station coordinates."""
    from obspy.geodetics import locations2degrees

    dist = locations2degrees(row.source_latitude_deg, row.source_longitude_deg,
                             row.station_latitude_deg, row.station_longitude_deg)
    depth = max(0.0, float(row.source_depth_km))
    out = {}
    for phase, names in (("P", ["p", "P", "Pn", "Pg"]), ("S", ["s", "S", "Sn", "Sg"])):
        arrivals = taup.get_travel_times(depth, dist, phase_list=names)
        out[phase] = [origin + min(a.time for a in arrivals)] if arrivals else []
    return out


def _has_pick_columns(metadata: pd.DataFrame) -> bool:
    return any(c in metadata and metadata[c].notna().any() for c in (*P_COLUMNS, *S_COLUMNS))


def reference_traces(source: str | Path, split: str | None = None, components: str = "ZNE") -> ReferenceTraces:
    """Whole traces and reference onsets of a SeisBench-format folder or dataset (one split, or all traces), each
    at its recorded rate.

    Raises ``ValueError`` naming the source when it is no dataset (:func:`~.data.seisbench_source.open_dataset`)
    or has neither pick columns nor source/station coordinates.
    """
    path = Path(source)
    ds = open_dataset(source, WindowConfig(components=components), resample=False)
    if split is not None:
        ds = getattr(ds, split)()
    md = ds.metadata
    use_columns = _has_pick_columns(md)
    coords = {"source_latitude_deg", "source_longitude_deg", "source_depth_km", "station_latitude_deg",
              "station_longitude_deg"}
    if not use_columns and not coords <= set(md.columns):
        raise ValueError(f"{path}: no pick columns and no source/station coordinates, so no reference onsets")
    taup = None
    if not use_columns:
        from obspy.taup import TauPyModel

        taup = TauPyModel("iasp91")
    default_fs = float(ds.data_format.get("sampling_rate", 100.0) or 100.0)
    stream, onsets = obspy.Stream(), {}
    for i in range(len(md)):
        row = md.iloc[i]
        fs = float(row.get("trace_sampling_rate_hz", default_fs))
        start = UTCDateTime(row.trace_start_time) if "trace_start_time" in row else UTCDateTime(0)
        wf = ds.get_waveforms(i)
        for c, comp in enumerate(components):
            tr = obspy.Trace(np.asarray(wf[c], dtype=np.float32))
            tr.stats.update(dict(network="XX", station=str(i), channel=f"HH{comp}", sampling_rate=fs,
                                 starttime=start))
            stream += tr
        # without pick columns the traces start at the origin time (true of SeisBench's dummy dataset)
        ref = _onsets_from_columns(row, start, fs) if use_columns else taup_onsets(row, start, taup)
        for phase in PHASES:
            onsets[(i, phase)] = ref[phase]
    return ReferenceTraces(stream, onsets, len(md), f"{path.name}{'' if split is None else ':' + split}")


def merge(parts: Sequence[ReferenceTraces], name: str) -> ReferenceTraces:
    """Several reference sets as one (trace indices renumbered)."""
    if len(parts) == 1:
        return ReferenceTraces(parts[0].stream, parts[0].onsets, parts[0].n_traces, name)
    stream, onsets, offset = obspy.Stream(), {}, 0
    for part in parts:
        for tr in part.stream:
            tr = tr.copy()
            tr.stats.station = str(int(tr.stats.station) + offset)
            stream += tr
        onsets.update({(i + offset, phase): t for (i, phase), t in part.onsets.items()})
        offset += part.n_traces
    return ReferenceTraces(stream, onsets, offset, name)


def annotate(model, refs: ReferenceTraces, batch_size: int = 64) -> obspy.Stream:
    """Probability traces of a SeisBench ``WaveformModel`` for every reference trace (one call, all traces)."""
    return model.annotate(refs.stream, batch_size=batch_size)


def picks_at(model, annotations: obspy.Stream, threshold: float) -> dict[tuple[int, str], list[UTCDateTime]]:
    """Peak times of the picks above ``threshold``, keyed like :attr:`ReferenceTraces.onsets`."""
    out: dict[tuple[int, str], list[UTCDateTime]] = {}
    for phase in PHASES:
        channel = f"*_{phase}"
        for pick in model.picks_from_annotations(annotations.select(channel=channel), threshold, phase):
            station = pick.trace_id.split(".")[1]
            out.setdefault((int(station), phase), []).append(pick.peak_time)
    return out


def match_pairs(picks: Sequence[float], refs: Sequence[float], tolerance: float) -> list[tuple[int, int, float]]:
    """A one-to-one matching of picks to references within ``tolerance``, closest pairs first:
    ``(pick index, reference index, pick − reference)``."""
    pairs = sorted((abs(p - r), i, j) for i, p in enumerate(picks) for j, r in enumerate(refs)
                   if abs(p - r) <= tolerance)
    used_p, used_r, out = set(), set(), []
    for _, i, j in pairs:
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            out.append((i, j, picks[i] - refs[j]))
    return out


def match(picks: Sequence[float], refs: Sequence[float], tolerance: float) -> list[float]:
    """Residuals (pick − reference) of :func:`match_pairs`."""
    return [res for _, _, res in match_pairs(picks, refs, tolerance)]


def curve_peaks(curve: np.ndarray, threshold: float) -> list[int]:
    """Samples where ``curve`` (1-D) peaks above ``threshold``: the maximum of each run of samples at or above it."""
    above = np.flatnonzero(curve >= threshold)
    if not above.size:
        return []
    runs = np.split(above, np.flatnonzero(np.diff(above) > 1) + 1)
    return [int(r[np.argmax(curve[r])]) for r in runs]


def window_pick_counts(probs: np.ndarray, labels: np.ndarray, threshold: float, tolerance: int) -> np.ndarray:
    """``[true positives, false picks, missed onsets]`` over windows ``probs``/``labels`` ``[B, phases, N]``
    (probability and soft-label curves of the phases): picks are :func:`curve_peaks` of the probabilities above
    ``threshold``, onsets those of the labels above 0.5, matched one to one within ``tolerance`` samples."""
    counts = np.zeros(3, dtype=np.int64)
    for prob, label in zip(probs, labels):
        for curve, target in zip(prob, label):
            picks, onsets = curve_peaks(curve, threshold), curve_peaks(target, 0.5)
            hits = len(match_pairs(picks, onsets, tolerance))
            counts += (hits, len(picks) - hits, len(onsets) - hits)
    return counts


def score(picks: dict, refs: ReferenceTraces, tolerances: Sequence[float] = TOLERANCES) -> dict[str, float]:
    """Precision, recall, F1 per phase and tolerance, and the inlier MAE at the largest tolerance."""
    out: dict[str, float] = {}
    for phase in PHASES:
        for tol in tolerances:
            tp = n_picks = n_refs = 0
            residuals: list[float] = []
            for i in range(refs.n_traces):
                mine = [t - UTCDateTime(0) for t in picks.get((i, phase), [])]
                theirs = [t - UTCDateTime(0) for t in refs.onsets.get((i, phase), [])]
                r = match(mine, theirs, tol)
                tp, n_picks, n_refs = tp + len(r), n_picks + len(mine), n_refs + len(theirs)
                residuals += r
            precision = tp / n_picks if n_picks else 0.0
            recall = tp / n_refs if n_refs else float("nan")
            f1 = 2 * tp / (n_picks + n_refs) if n_picks + n_refs else float("nan")
            key = f"{phase}_{tol:g}s"
            out.update({f"{key}_precision": precision, f"{key}_recall": recall, f"{key}_f1": f1})
            out[f"{phase}_{tol:g}s_mae"] = float(np.mean(np.abs(residuals))) if residuals else float("nan")
        out[f"{phase}_n_reference"] = sum(len(refs.onsets.get((i, phase), [])) for i in range(refs.n_traces))
    return out


def threshold_table(model, annotations: obspy.Stream, refs: ReferenceTraces, tolerance: float = 0.5,
                    thresholds: Sequence[float] = THRESHOLDS) -> pd.DataFrame:
    """Pick precision, recall and F1 within ``tolerance`` per phase (columns ``"P f1"`` …) at each threshold
    (the index), all from the same probabilities."""
    rows = []
    for thr in thresholds:
        s = score(picks_at(model, annotations, thr), refs, (tolerance,))
        rows.append({"threshold": thr, **{f"{p} {m}": s[f"{p}_{tolerance:g}s_{m}"] for p in PHASES
                                          for m in ("precision", "recall", "f1")}})
    return pd.DataFrame(rows).set_index("threshold")


def best_thresholds(table: pd.DataFrame) -> dict[str, float]:
    """Per phase, the threshold of :func:`threshold_table` with the highest F1 (the lowest of equals)."""
    return {p: float(table[f"{p} f1"].fillna(-1).idxmax()) for p in PHASES}


def best_threshold(model, annotations: obspy.Stream, refs: ReferenceTraces, tolerance: float = 0.5,
                   thresholds: Sequence[float] = THRESHOLDS) -> float:
    """The threshold maximising the mean of P and S F1 within ``tolerance`` (choose it on dev, report on test)."""
    table = threshold_table(model, annotations, refs, tolerance, thresholds)
    return float(table[[f"{p} f1" for p in PHASES]].mean(axis=1).fillna(-1).idxmax())


def evaluate_picks(model, dev: ReferenceTraces, tests: dict[str, ReferenceTraces],
                   tolerances: Sequence[float] = TOLERANCES) -> dict[str, dict[str, float]]:
    """Threshold from ``dev``, then pick scores on each test set: ``{set name: scores}`` (+ ``threshold``).
    ``dev`` may also be one of the test sets (scored at its own threshold); it is annotated once."""
    dev_annotations = annotate(model, dev)
    threshold = best_threshold(model, dev_annotations, dev, max(tolerances))
    out = {}
    for name, refs in tests.items():
        annotations = dev_annotations if refs is dev else annotate(model, refs)
        out[name] = {"threshold": threshold, **score(picks_at(model, annotations, threshold), refs, tolerances)}
    return out

