"""Picks scored against a catalogue's reference picks: how well a picker does on *your* network.

The references are analyst (or any other) picks from QuakeML or a CSV; the picks are what ``seiscontrast pick``
(or any picker) made on the same waveforms. Each station instrument (``NET.STA`` + band and instrument code: HH
broadband, EH short-period, DP borehole, HN accelerometer, …) is scored on its own:

* a reference (or a pick) that names a channel belongs to that instrument; one that does not, to every instrument
  with data at its time (a reference with no data at all is counted apart, never as a miss);
* picks and references of the same phase are matched one to one, closest pairs first, within each tolerance:
  **recall** is the share of references matched, **MAE** and **bias** are over the matches within the largest
  tolerance;
* **extra** picks are the picks of an instrument with references that match none within the largest tolerance,
  counted within ``margin`` seconds of that instrument's references (a catalogue rarely lists every event of a
  continuous archive), or anywhere when ``margin`` is ``None``.

Location codes are not compared. Waveforms come from files or from an SDS archive, of which only the spans
around the references are picked (:func:`plan_sds_around`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from obspy import UTCDateTime

from .data.obspy_source import InputReport
from .pick_metrics import match_pairs

PHASES = ("P", "S")


@dataclass
class ScoreConfig:
    """Attributes: ``tolerances`` (s) for recall, the largest also for MAE, bias and extra picks; ``margin`` (s)
    around each instrument's references in which its picks are scored (``None``: all its picks)."""

    tolerances: tuple[float, ...] = (0.1, 0.2, 0.5)
    margin: float | None = 30.0

    def __post_init__(self):
        if not self.tolerances or min(self.tolerances) <= 0:
            raise ValueError(f"tolerances must be positive seconds, got {self.tolerances}")
        if self.margin is not None and self.margin < 0:
            raise ValueError(f"margin must be >= 0 s or None, got {self.margin}")
        self.tolerances = tuple(sorted(self.tolerances))


@dataclass
class CatalogScores:
    """``references``: one row per reference and instrument (``residual`` NaN when unmatched, ``hit_<tol>``);
    ``extra``: the unmatched picks; ``no_data``: references no waveform covers; ``summary``: by phase, instrument
    and network (:func:`summarise`; the rows over everything first)."""

    references: pd.DataFrame
    extra: pd.DataFrame
    no_data: pd.DataFrame
    summary: pd.DataFrame
    config: ScoreConfig = field(default_factory=ScoreConfig)


def instrument(channel: str) -> str:
    """Band and instrument code of a SEED channel (``HHZ`` → ``HH``); empty when unknown."""
    channel = str(channel or "").strip()
    return channel[:2] if len(channel) >= 2 else ""


def coverage_of(plan) -> pd.DataFrame:
    """``network, station, instrument, start, end`` of the chunks of an archive plan: the data that is picked (a
    record's gaps up to the archive's ``max_gap`` included, as picking zero-fills them)."""
    rows = []
    for c in plan.chunks:
        net, sta, _, band = c.station.split(".")
        rows.append(dict(network=net, station=sta, instrument=band, start=c.t0, end=c.t1))
    return pd.DataFrame(rows, columns=["network", "station", "instrument", "start", "end"])


def coverage_from_files(inputs: Sequence[str | Path], report: InputReport) -> pd.DataFrame:
    """:func:`coverage_of` the files (headers only; problems go into ``report``)."""
    from .archive import ArchiveConfig, plan_files

    plan = plan_files(inputs, ArchiveConfig(), 0.0)
    report.extend(plan.report)
    return coverage_of(plan)


def reference_windows(times: Sequence[UTCDateTime], margin: float) -> list[tuple[UTCDateTime, UTCDateTime]]:
    """``[first - margin, last + margin]`` spans around sorted reference times, merged where they overlap."""
    spans: list[list[UTCDateTime]] = []
    for t in sorted(times):
        if spans and t - margin <= spans[-1][1]:
            spans[-1][1] = t + margin
        else:
            spans.append([t - margin, t + margin])
    return [(a, b) for a, b in spans]


def plan_sds_around(root: str | Path, references: pd.DataFrame, margin: float, pad: float, cfg=None):
    """An archive plan of the SDS archive's chunks around each station's references (:func:`reference_windows`):
    only those spans are read and picked, however long the archive."""
    from .archive import ArchiveConfig, ArchivePlan, plan_sds, sds_channels

    cfg = cfg or ArchiveConfig()
    by_station: dict[tuple[str, str], dict[str, list[str]]] = {}
    for key, codes in sds_channels(root, []).items():
        net, sta = key.split(".")[:2]
        by_station.setdefault((net, sta), {})[key] = codes
    plan = ArchivePlan([])
    for (net, sta), refs in references.groupby(["network", "station"]):
        channels = by_station.get((net, sta))
        if channels is None:
            continue   # scored as "no data"
        for t0, t1 in reference_windows([UTCDateTime(t) for t in refs.time], margin):
            part = plan_sds(root, t0, t1, [], cfg, pad, channels=channels)
            plan.chunks += part.chunks
            plan.report.extend(part.report)
    return plan


def _assign(table: pd.DataFrame, coverage: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows (references or picks: ``network, station, channel, time``) with an ``instrument`` each: the channel's
    when it names one, else every instrument with data at that time (one row each); and the rows without data."""
    rows, missing = [], []
    spans = {k: g for k, g in coverage.groupby(["network", "station"])}
    for row in table.to_dict("records"):
        cov = spans.get((row["network"], row["station"]))
        kinds = []
        if cov is not None:
            at = cov[[s <= row["time"] < e for s, e in zip(cov.start, cov.end)]]
            kinds = sorted(set(at.instrument))
            wanted = instrument(row.get("channel", ""))
            if wanted:
                kinds = [k for k in kinds if k == wanted]
        if kinds:
            rows += [{**row, "instrument": k} for k in kinds]
        else:
            missing.append(row)
    return pd.DataFrame(rows, columns=[*table.columns, "instrument"]), pd.DataFrame(missing, columns=table.columns)


def _in_spans(times: np.ndarray, refs: np.ndarray, margin: float | None) -> np.ndarray:
    if margin is None:
        return np.ones(len(times), bool)
    return np.array([bool(np.any(np.abs(refs - t) <= margin)) for t in times], bool)


def score_picks(picks: pd.DataFrame, references: pd.DataFrame, coverage: pd.DataFrame,
                cfg: ScoreConfig | None = None) -> CatalogScores:
    """Score ``picks`` (``network, station, channel, phase, time``, as ``seiscontrast pick`` writes them) against
    ``references`` (``network, station, phase, time`` and optionally ``channel``, as
    :func:`~seiscontrast.data.convert.read_picks` reads them) on the instruments of ``coverage``
    (:func:`coverage_of`)."""
    cfg = cfg or ScoreConfig()
    top = cfg.tolerances[-1]
    refs = references.copy()
    refs["channel"] = refs["channel"].fillna("").astype(str) if "channel" in refs else ""
    refs["time"] = [UTCDateTime(t) for t in refs["time"]]
    assigned, no_data = _assign(refs[["network", "station", "channel", "phase", "time"]], coverage)
    picks = picks.copy()
    picks["channel"] = picks["channel"].fillna("").astype(str) if "channel" in picks else ""
    picks["time"] = [UTCDateTime(t) for t in picks["time"]]
    picks, _ = _assign(picks, coverage)   # a pick without a channel code belongs to the instruments with data
    picks["t"] = [t.timestamp for t in picks["time"]]
    assigned["t"] = [t.timestamp for t in assigned["time"]]
    assigned["residual"] = np.nan
    extra = []
    by_unit = {k: g for k, g in picks.groupby(["network", "station", "instrument", "phase"])}
    for (net, sta, kind), unit in assigned.groupby(["network", "station", "instrument"]):
        unit_refs = unit.t.to_numpy()
        for phase in PHASES:
            mine = by_unit.get((net, sta, kind, phase))
            mine = mine[_in_spans(mine.t.to_numpy(), unit_refs, cfg.margin)] if mine is not None else None
            theirs = unit[unit.phase == phase]
            matched = set()
            if mine is not None and len(theirs):
                for i, j, res in match_pairs(list(mine.t), list(theirs.t), top):
                    assigned.loc[theirs.index[j], "residual"] = res
                    matched.add(i)
            if mine is not None:
                extra += [row for i, row in enumerate(mine.to_dict("records")) if i not in matched]
    for tol in cfg.tolerances:
        assigned[f"hit_{tol:g}"] = assigned.residual.abs() <= tol
    extra_df = pd.DataFrame(extra, columns=[*picks.columns]).drop(columns=["t"])
    extra_df["time"] = extra_df["time"].astype(str)
    table = assigned.drop(columns=["t"])
    return CatalogScores(table, extra_df, no_data, summarise(table, extra_df, cfg), cfg)


def summarise(refs: pd.DataFrame, extra: pd.DataFrame, cfg: ScoreConfig) -> pd.DataFrame:
    """Per phase, over everything (``network`` and ``instrument`` "all"), per instrument and, with several
    networks, per network: references, recall within each tolerance, MAE and bias of the matches within the
    largest tolerance, extra picks."""
    top = cfg.tolerances[-1]
    rows = []
    groups = [("all", "all", refs, extra)]
    groups += [("all", k, refs[refs.instrument == k], extra[extra.instrument == k]) for k in sorted(set(refs.instrument))]
    networks = sorted(set(refs.network))
    if len(networks) > 1:
        groups += [(n, "all", refs[refs.network == n], extra[extra.network == n]) for n in networks]
    for net, kind, r, e in groups:
        for phase in PHASES:
            rp = r[r.phase == phase]
            res = rp.residual[rp.residual.abs() <= top]
            row = {"network": net, "instrument": kind, "phase": phase, "references": len(rp)}
            for tol in cfg.tolerances:
                row[f"recall@{tol:g}s"] = float(rp[f"hit_{tol:g}"].mean()) if len(rp) else np.nan
            row.update({"MAE_s": float(res.abs().mean()) if len(res) else np.nan,
                        "bias_s": float(res.mean()) if len(res) else np.nan,
                        "extra_picks": int((e.phase == phase).sum())})
            rows.append(row)
    return pd.DataFrame(rows)


def threshold_table(swept: dict[float, pd.DataFrame], references: pd.DataFrame, coverage: pd.DataFrame,
                    cfg: ScoreConfig) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per threshold and phase (over everything): recall and extra picks within the largest tolerance, precision
    (matched / all scored picks) and F1; and the threshold with the best F1 per phase."""
    top = f"recall@{cfg.tolerances[-1]:g}s"
    rows = []
    for t, picks in sorted(swept.items()):
        summary = score_picks(picks, references, coverage, cfg).summary
        for row in summary[(summary.network == "all") & (summary.instrument == "all")].to_dict("records"):
            matched = row[top] * row["references"] if row["references"] else 0.0
            precision = matched / (matched + row["extra_picks"]) if matched + row["extra_picks"] else float("nan")
            recall = row[top]
            f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
            rows.append({"threshold": t, "phase": row["phase"], "recall": recall, "extra_picks": row["extra_picks"],
                         "precision": precision, "F1": f1})
    table = pd.DataFrame(rows)
    best = {ph: float(g.loc[g.F1.idxmax(), "threshold"]) for ph, g in table.groupby("phase") if g.F1.notna().any()}
    return table, best


def plot_scores(scores: CatalogScores, path: str | Path) -> Path:
    """Residual histograms per phase and recall within the largest tolerance by instrument → ``path`` (PNG)."""
    from .plots import plt

    top = scores.config.tolerances[-1]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, phase in zip(axes, PHASES):
        res = scores.references.residual[(scores.references.phase == phase)].dropna()
        ax.hist(res, bins=np.linspace(-top, top, 41), color="C0" if phase == "P" else "C1")
        ax.axvline(0, color="k", lw=0.8)
        ax.set(title=f"{phase}: pick − reference ({len(res)} matched)", xlabel="s", ylabel="picks")
    s = scores.summary[(scores.summary.instrument != "all") & (scores.summary.network == "all")]
    kinds = sorted(set(s.instrument))
    x = np.arange(len(kinds))
    for k, phase in enumerate(PHASES):
        vals = [s[(s.instrument == i) & (s.phase == phase)][f"recall@{top:g}s"].mean() for i in kinds]
        axes[2].bar(x + (k - 0.5) * 0.4, vals, 0.4, label=phase)
    axes[2].set(xticks=x, xticklabels=kinds, ylim=(0, 1), title=f"recall within {top:g} s by instrument")
    axes[2].legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def format_summary(scores: CatalogScores) -> str:
    """The summary as a text table, with the count of references that had no data."""
    text = scores.summary.to_string(index=False, float_format=lambda v: f"{v:.3f}")
    if len(scores.no_data):
        text += f"\n{len(scores.no_data)} reference pick(s) had no waveform data and were not scored"
    return text
