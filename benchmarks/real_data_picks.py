"""Picks on real recordings: seiscontrast's picker vs SeisBench PhaseNetLight (trained on real ETHZ data).

Data (development only, never used by tests):
* a SeisBench-format folder of real local events without picks (e.g. ``../shared/data/seisbench-dummy``:
  CX.PB01, northern Chile, 20 Hz) — reference P and S times are TauP (iasp91) first arrivals from the catalogue
  source and station coordinates (they agree with pickers to ~0.2 s there);
* optionally, any real recordings with analyst picks: ``--catalog`` (QuakeML or CSV: network, station, phase,
  time) and ``--waveforms`` (files, directories, globs), scored per phase and instrument as ``seiscontrast
  score-picks`` scores them (:mod:`seiscontrast.catalog_scores`).

Side by side in one run: our picker and SeisBench PhaseNetLight trained on real ETHZ data, each through SeisBench
``classify`` and through the ``seiscontrast pick`` path (polyphase resampling, glitch removal, windows on a time
grid: what ``seiscontrast pick --model seisbench:...`` gives), and ObsPy's AR-AIC picker (``ar_pick``). For
each, with its default thresholds (the ones its weights carry; ``--sweep`` adds others): recall within
0.1/0.2/0.5 s of the reference arrival of the same phase, residual MAE and bias of the picks within
``--tolerance``, false picks (a phase picked farther than the tolerance from its reference). Also whether each
keeps its P on ObsPy's example event resampled to 20 Hz, and how much later our P picks lie than
PhaseNetLight's on the same records (a comparison the reference's own error, shared by both, does not blur), and
on how many records each picker's S nearest the reference lies 0.5-2 s before or after it (a displaced S counts
as a miss and a false pick). ``--p-curves`` / ``--s-curves`` plot the probabilities on
the records where this goes most wrong. ``--views`` scores both networks again on the same records as other
instruments would record them (:data:`VIEWS`: an accelerometer, 1 Hz and 4.5 Hz geophones, a vertical-only
station), the kinds of channel the synthetic training data adds and the dataset lacks. ``--s-without-p`` picks
every record again with its P wave replaced by its own pre-event noise, to tell whether early S picks follow
the P (an S-P time learnt from the training data) or what precedes the S.

    python benchmarks/real_data_picks.py --dataset ../shared/data/seisbench-dummy \\
        --phasenetlight ../shared/data/phasenetlight-ethz
    python benchmarks/real_data_picks.py --catalog picks.xml --waveforms /data/events/   # + your labelled set
    python benchmarks/real_data_picks.py --catalog-check   # the dataset once more, through the catalogue path
    python benchmarks/real_data_picks.py --p-curves docs/real_p_curves.png --s-curves docs/real_s_curves.png
    python benchmarks/real_data_picks.py --views        # + as accelerometers, geophones and vertical-only stations
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import seisbench
import seisbench.data as sbd
import seisbench.models as sbm
from obspy import UTCDateTime
from obspy.taup import TauPyModel

from seiscontrast.data.obspy_source import InputReport
from seiscontrast.data.windows import highpass
from seiscontrast.pick import (
    PickSettings,
    annotate_record,
    model_record,
    model_thresholds,
    picks_at_threshold,
)
from seiscontrast.pick_metrics import taup_onsets
from seiscontrast.picker import load_picker_model
from seiscontrast.pseudo_labels import dataset_streams as package_streams

ROOT = Path(__file__).resolve().parents[1]


def dataset_streams(path: Path):
    """Yield ``(trace_name, Stream, reference {phase: UTCDateTime})`` for each trace of a SeisBench folder."""
    ds = sbd.WaveformDataset(path, component_order="ZNE", sampling_rate=None)
    taup = TauPyModel("iasp91")
    for i, (row, st) in enumerate(package_streams(ds)):
        # the traces start at the origin time (see the dataset description)
        ref = {phase: times[0] for phase, times in taup_onsets(row, st[0].stats.starttime, taup).items() if times}
        yield row.get("trace_name_original", str(i)), st, ref


TOLERANCES = (0.1, 0.2, 0.5)


def record_splits(path: Path) -> dict[str, str]:
    """``{record name as dataset_streams gives it: split}`` (empty when the folder has no ``split`` column)."""
    meta = pd.read_csv(path / "metadata.csv")
    if "split" not in meta:
        return {}
    names = meta["trace_name_original"] if "trace_name_original" in meta else pd.Series(map(str, meta.index))
    return dict(zip(names.astype(str), meta["split"].astype(str)))


def score(picks: list[tuple[str, UTCDateTime]], ref: dict, tolerance: float) -> dict:
    """Per phase: hit within each of ``TOLERANCES`` (best pick of that phase), its residual, and false picks
    (picks of the phase farther than ``tolerance`` from its reference, or with none)."""
    out = {"false": 0}
    for phase in "PS":
        mine = [t for ph, t in picks if ph == phase]
        out[f"{phase}_ref"] = int(phase in ref)
        res = min((t - ref[phase] for t in mine), key=abs) if phase in ref and mine else np.nan
        for tol in TOLERANCES:
            out[f"{phase}_hit_{tol}"] = int(bool(abs(res) <= tol)) if np.isfinite(res) else 0
        out[f"{phase}_residual"] = res if np.isfinite(res) and abs(res) <= tolerance else np.nan
        out[f"{phase}_nearest"] = res   # the pick nearest the reference, at any distance
        out[f"{phase}_false"] = sum(1 for t in mine if phase not in ref or abs(t - ref[phase]) > tolerance)
        out["false"] += out[f"{phase}_false"]
    return out


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    rows = {}
    for model, t in table.groupby("model", sort=False):
        row = {"traces": len(t)}
        for phase in "PS":
            refs = max(t[f"{phase}_ref"].sum(), 1)
            for tol in TOLERANCES:
                row[f"{phase}@{tol}"] = t[f"{phase}_hit_{tol}"].sum() / refs
            row[f"{phase}_MAE_s"] = t[f"{phase}_residual"].abs().mean()
            row[f"{phase}_bias_s"] = t[f"{phase}_residual"].mean()
            row[f"{phase}_false"] = int(t[f"{phase}_false"].sum())
        row["false_picks"] = int(t["false"].sum())
        rows[model] = row
    return pd.DataFrame(rows).T


def nearest(table: pd.DataFrame, model: str, phase: str) -> pd.Series:
    """Per record (the index), ``model``'s pick of ``phase`` nearest the reference minus the reference."""
    return table[table.model == model].set_index("trace")[f"{phase}_nearest"]


def paired_difference(table: pd.DataFrame, model: str, other: str, phase: str = "P", within: float = 1.0) -> pd.Series:
    """Per record, ``model``'s pick of ``phase`` nearest the reference minus ``other``'s, where both are within
    ``within`` s of it: which of two pickers is early or late, whatever the reference's own error (shared by both)."""
    a, b = nearest(table, model, phase), nearest(table, other, phase)
    return (a - b)[(a.abs() <= within) & (b.abs() <= within)]


def paired_lag(table: pd.DataFrame, model: str, other: str) -> dict:
    """Median and quartiles of :func:`paired_difference` of the P picks."""
    d = paired_difference(table, model, other)
    q = np.percentile(d, [25, 50, 75]) if len(d) else [np.nan] * 3
    return {"records": int(len(d)), "q25_s": float(q[0]), "median_s": float(q[1]), "q75_s": float(q[2])}


def reference_check(table: pd.DataFrame, model: str, other: str, phase: str, tolerance: float,
                    agree: float = 0.3) -> dict:
    """How much of ``model``'s miss-and-false-pick count on ``phase`` the reference itself may cause: the records
    where its pick nearest the reference is displaced (beyond ``tolerance``, within 2 s), how many of those have
    ``other``'s nearest pick within ``agree`` s of it (two networks trained on different data, off together) and
    how many have no pick of ``other`` at all, and how the two networks' residuals correlate where both lie within
    2 s (near 1: the reference's error dominates the scatter)."""
    a, b = nearest(table, model, phase), nearest(table, other, phase)
    displaced = a[(a.abs() > tolerance) & (a.abs() <= 2)]
    theirs = b.reindex(displaced.index)
    shared = (displaced - theirs).abs() <= agree
    both = (a.abs() <= 2) & (b.abs() <= 2)
    corr = float(np.corrcoef(a[both], b[both])[0, 1]) if both.sum() > 2 else float("nan")
    return {"displaced": int(len(displaced)), "displaced_with_other": int(shared.sum()),
            "displaced_other_none": int(theirs.isna().sum()),
            "residual_correlation": corr, "records_both_within_2s": int(both.sum())}


def geophone(corner: float):
    """The record as a geophone of natural frequency ``corner`` would give it: velocity through a causal 2-pole
    high-pass at ``corner`` (damping 0.707, a typical geophone's)."""
    def view(st):
        st = st.copy().detrend("linear")
        return st.filter("highpass", freq=corner, corners=2, zerophase=False)
    return view


#: the same records as other instruments would record them (a broadband record is ground velocity)
VIEWS = {"accelerometer": lambda st: st.copy().differentiate(), "geophone 1 Hz": geophone(1.0),
         "geophone 4.5 Hz": geophone(4.5), "vertical only": lambda st: st.select(component="Z").copy()}


def without_p(st, ref: dict):
    """The record with its P wave replaced: from 0.5 s before the reference P to 2.5 s before the reference S,
    the record's own pre-event noise (tiled). ``None`` where there is too little of either."""
    t0, fs = st[0].stats.starttime, st[0].stats.sampling_rate
    if "P" not in ref or "S" not in ref:
        return None
    a, b = int((ref["P"] - 0.5 - t0) * fs), int((ref["S"] - 2.5 - t0) * fs)
    if a < 2 * fs or b - a < fs:
        return None
    out = st.copy()
    for tr in out:
        tr.data[a:b] = np.resize(tr.data[:a].copy(), b - a)
    return out


def s_without_p(records: list, model, table: pd.DataFrame, tolerance: float) -> dict:
    """Does ``model`` place its S from the P (an S-P time learnt from its training data) or from what precedes
    the S? Its pick-path S on each record without its P wave (:func:`without_p`) against the same record whole:
    where S picks 0.5-2 s early stay, and hits and false S over all records."""
    whole = table[table.model == "seiscontrast, pick path"].set_index("trace")
    hit = f"S_hit_{tolerance}"
    rows = []
    for name, st, ref in records:
        cut = without_p(st, ref)
        if cut is not None:
            r = score([(p.phase, p.peak_time) for p in pick_path(model, cut)], ref, tolerance)
            rows.append({"before": whole.loc[name, "S_nearest"], "after": r["S_nearest"],
                         "hit_before": whole.loc[name, hit], "hit_after": r[hit],
                         "false_before": whole.loc[name, "S_false"], "false_after": r["S_false"]})
    d = pd.DataFrame(rows)
    early = d[d.before.between(-2, -tolerance)]
    return {"records": len(d), "early_S": len(early),
            "early_S_within_0.15s": int(((early.after - early.before).abs() <= 0.15).sum()),
            "early_S_now_hits": int(early.hit_after.sum()), "early_S_gone": int(early.after.isna().sum()),
            "S_hits": [int(d.hit_before.sum()), int(d.hit_after.sum())],
            "S_false": [int(d.false_before.sum()), int(d.false_after.sum())]}


def instrument_views(records: list, models: dict, tolerance: float) -> pd.DataFrame:
    """Each of :data:`VIEWS` of every record through each model's pick path, scored as the recordings are:
    one row per view and model, as :func:`summarise` gives them."""
    rows = []
    for view, transform in VIEWS.items():
        for name, st, ref in records:
            seen = transform(st)
            for label, model in models.items():
                picks = [(p.phase, p.peak_time) for p in pick_path(model, seen)]
                rows.append({"trace": name, "model": f"{view} | {label}", **score(picks, ref, tolerance)})
    return summarise(pd.DataFrame(rows))


def curve_records(table: pd.DataFrame, phase: str, count: int) -> set[str]:
    """The records worth looking at for ``phase``: for P those where our pick and PhaseNetLight's differ most
    (:func:`paired_difference`), for S those where our pick nearest the reference lies farthest from it (within
    2 s: a displaced pick, which counts as a miss and a false pick)."""
    if phase == "P":
        d = paired_difference(table, "seiscontrast, pick path", "PhaseNetLight-ETHZ, pick path")
    else:
        d = nearest(table, "seiscontrast, pick path", phase)
        d = d[d.abs() <= 2]
    return set(d.abs().sort_values(ascending=False).index[:count])


def plot_curves(records: list, table: pd.DataFrame, models: dict, path: Path, phase: str = "P",
                count: int = 6) -> None:
    """Each model's ``phase`` probability and the components that phase is picked on (P: the vertical, raw and
    high-passed at 0.5 Hz as a model with ``window.highpass=0.5`` sees it; S: the high-passed horizontals) around
    the TauP arrival, on the ``count`` records of :func:`curve_records`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    worst = curve_records(table, phase, count)
    chosen = [r for r in records if r[0] in worst]
    fig, axes = plt.subplots(len(chosen), 1, figsize=(9, 2.2 * len(chosen)), sharex=True, squeeze=False)
    for ax, (name, st, ref) in zip(axes[:, 0], chosen):
        for comp, style in zip("Z" if phase == "P" else "NE", ("k", "0.55")):
            raw = st.select(component=comp)[0].copy().detrend("demean")
            t = raw.times() + (raw.stats.starttime - ref[phase])
            near = np.abs(t) <= 3
            filtered = highpass(raw.data, raw.stats.sampling_rate, 0.5)
            if phase == "P":   # the raw vertical too: is a weak first motion only visible after the high-pass?
                ax.plot(t[near], raw.data[near] / np.abs(raw.data[near]).max(), color="0.6", lw=0.7, label="Z")
            ax.plot(t[near], filtered[near] / np.abs(filtered[near]).max(), color=style, lw=0.7,
                    label=f"{comp}, 0.5 Hz high-pass")
        for (label, model), colour in zip(models.items(), "rb"):
            prob = annotate_record(model, record(model, st), PickSettings())[0].select(channel=f"*_{phase}")[0]
            tp = prob.times() + (prob.stats.starttime - ref[phase])
            near = np.abs(tp) <= 3
            ax.plot(tp[near], prob.data[near], colour, label=f"{label} {phase} probability")
        ax.axvline(0, color="g", ls="--", label=f"TauP {phase}")
        ax.set_title(name, fontsize=8)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[-1, 0].set_xlabel(f"time after the TauP {phase} arrival (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def seisbench_picks(model, st) -> list[tuple[str, UTCDateTime]]:
    return [(p.phase, p.peak_time) for p in model.classify(st).picks]


def ar_picks(st) -> list[tuple[str, UTCDateTime]]:
    """ObsPy's AR-AIC picker; it always returns one P and one S. ObsPy's tutorial parameters (STA 0.1 s, LTA 1 s
    for P) pick the trace start on these 20 Hz records (0 of 30 P); the longer windows here (STA/LTA 0.5/4 s for
    P, 2/8 s for S) were the second of two settings tried (15 of 30 P within 0.5 s). For S, an AR order of 8 over
    0.4 s (8 samples at 20 Hz) returns the trace start every time (0 of 30); order 4 over 1 s was the best of five
    settings tried on the first 30 records (15 of 30 S within 0.5 s)."""
    from obspy.signal.trigger import ar_pick

    st = st.copy().detrend("linear").taper(0.05)
    z, n, e = (st.select(component=c)[0].data.astype(np.float64) for c in "ZNE")
    fs = st[0].stats.sampling_rate
    p, s = ar_pick(z, n, e, fs, 1.0, min(20.0, 0.45 * fs), 4.0, 0.5, 8.0, 2.0, 2, 4, 0.2, 1.0, s_pick=True)
    t0 = st[0].stats.starttime
    return [("P", t0 + p), ("S", t0 + s)]


def example_at_20_hz(pickers: dict) -> dict:
    """P picks on ObsPy's example event (BW.RJOB, 100 Hz) and on the same record resampled to 20 Hz."""
    st100 = obspy.read()
    st20 = st100.copy().filter("lowpass", freq=8.0, corners=4, zerophase=True).resample(20.0)
    out = {}
    for name, fn in pickers.items():
        p100 = [str(t) for ph, t in fn(st100) if ph == "P"]
        p20 = [str(t) for ph, t in fn(st20) if ph == "P"]
        kept = bool(p100) and any(abs(UTCDateTime(a) - UTCDateTime(b)) <= 0.5 for a in p100 for b in p20)
        out[name] = {"P_100Hz": p100, "P_20Hz": p20, "P_kept_at_20Hz": kept}
    return out


def record(model, st):
    """The stream as ``seiscontrast pick`` prepares it for ``model``: one cleaned, resampled Z/N/E record."""
    return model_record(model, st.copy(), InputReport())


def pick_path(model, st):
    """Picks as ``seiscontrast pick`` makes them: cleaned record (glitches removed), windows on the absolute-time
    grid, gaps masked (:func:`seiscontrast.pick.annotate_record`)."""
    return annotate_record(model, record(model, st), PickSettings())[1]


def threshold_sweep(records: list, models: dict, thresholds: list[float], tolerance: float) -> pd.DataFrame:
    """Through the pick path, each model at each threshold (both phases; one annotation per record and model):
    recall within ``tolerance`` and false picks per phase."""
    rows = []
    for _, st, ref in records:
        for label, model in models.items():
            annotations, _ = annotate_record(model, record(model, st), PickSettings())
            args = PickSettings().annotate_args(model)
            for t in thresholds:
                picks = picks_at_threshold(model, annotations, args, t)
                rows.append({"model": label, "threshold": t,
                             **score([(p.phase, p.peak_time) for p in picks], ref, tolerance)})
    g = pd.DataFrame(rows).groupby(["model", "threshold"], sort=False)
    return g.agg(**{f"{ph}@{tolerance:g}": (f"{ph}_hit_{tolerance:g}", "mean") for ph in "PS"},
                 **{f"{ph}_false": (f"{ph}_false", "sum") for ph in "PS"}).reset_index()


def catalog_scores(catalog: str, waveforms: list[str], pickers: dict, tolerance: float) -> pd.DataFrame:
    """Summary rows (per picker, phase and instrument) on a catalogue's reference picks: SeisBench models pick
    the files as ``seiscontrast pick`` does; ``ar_pick`` gets each station's whole record (one P and one S)."""
    from seiscontrast.catalog_scores import ScoreConfig, coverage_from_files, score_picks
    from seiscontrast.data.convert import read_picks
    from seiscontrast.data.obspy_source import InputReport, expand_paths, group_by_station, read_file
    from seiscontrast.pick import pick_files

    refs = read_picks(catalog)
    report = InputReport()
    coverage = coverage_from_files(waveforms, report)
    cfg = ScoreConfig(TOLERANCES, margin=30.0)
    rows = []
    for name, model in pickers.items():
        if model == "ar_pick":
            streams = [st for p in expand_paths(waveforms, report) if (st := read_file(p, report)) is not None]
            picks = []
            for key, st in group_by_station(streams).items():
                net, sta, loc, band = key.split(".")
                try:
                    picks += [dict(network=net, station=sta, location=loc, channel=band + "Z", phase=ph, time=str(t))
                              for ph, t in ar_picks(st.merge(fill_value=0))]
                except Exception as err:   # e.g. a vertical-only station
                    print(f"ar_pick: {key}: {type(err).__name__}: {err}")
            picks = pd.DataFrame(picks, columns=["network", "station", "location", "channel", "phase", "time"])
        else:
            picks = pick_files(waveforms, model).picks
        rows += [{"model": name, **r} for r in score_picks(picks, refs, coverage, cfg).summary.to_dict("records")]
    return pd.DataFrame(rows)


def dataset_as_catalog(dataset: Path, folder: Path) -> tuple[str, list[str]]:
    """Write the dataset's records as miniSEED (one station code per record) and their reference arrivals as a
    CSV catalogue: the catalogue path must then score as the dataset path does (``--catalog-check``)."""
    (folder / "waveforms").mkdir(parents=True, exist_ok=True)
    rows = []
    for k, (_, st, ref) in enumerate(dataset_streams(dataset)):
        st = st.copy()
        for tr in st:
            tr.stats.station = f"E{k:03d}"
        st.write(str(folder / "waveforms" / f"{k:03d}.mseed"), format="MSEED")
        rows += [dict(network=st[0].stats.network, station=f"E{k:03d}", phase=ph, time=str(t)) for ph, t in ref.items()]
    pd.DataFrame(rows).to_csv(folder / "catalog.csv", index=False)
    return str(folder / "catalog.csv"), [str(folder / "waveforms")]


def load_phasenetlight(folder: Path):
    target = Path(seisbench.cache_model_root) / "phasenetlight"
    target.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        if not (target / f.name).exists():
            shutil.copy(f, target / f.name)
    return sbm.PhaseNetLight.from_pretrained("ethz", version_str="2", update=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "data" / "seisbench-dummy"))
    ap.add_argument("--phasenetlight", default=str(ROOT.parent / "shared" / "data" / "phasenetlight-ethz"))
    ap.add_argument("--model", default="default", help="our picker (default: the bundled one)")
    ap.add_argument("--highpass", type=float, help="our picker's high-pass corner in Hz (default: the model's own; "
                    "0: off), as `seiscontrast pick --highpass`")
    ap.add_argument("--tolerance", type=float, default=0.5, help="beyond this a pick is false (s)")
    ap.add_argument("--catalog", help="also score on real recordings with reference picks (QuakeML or CSV) ...")
    ap.add_argument("--waveforms", nargs="+", default=[], help="... in these files, directories or globs")
    ap.add_argument("--catalog-check", nargs="?", const="", metavar="DIR", help="score --dataset through the "
                    "catalogue path too (its records as miniSEED, its reference arrivals as a CSV catalogue; kept in "
                    "DIR when given, e.g. for `seiscontrast score-picks DIR/waveforms --catalog DIR/catalog.csv`)")
    ap.add_argument("--p-curves", metavar="PNG", help="also plot the P probabilities of both networks on the records "
                    "where their P picks differ most")
    ap.add_argument("--s-curves", metavar="PNG", help="also plot the S probabilities of both networks on the records "
                    "where our S pick lies farthest (within 2 s) from TauP's")
    ap.add_argument("--sweep", type=float, nargs="+", metavar="T", help="also score our picker and PhaseNetLight "
                    "through the pick path at these thresholds (both phases), e.g. --sweep 0.2 0.3 0.4 0.5 0.6")
    ap.add_argument("--views", action="store_true", help="also score our picker and PhaseNetLight through the pick "
                    "path on the records as an accelerometer, 1 and 4.5 Hz geophones and a vertical-only station "
                    "would record them")
    ap.add_argument("--s-without-p", action="store_true", help="also pick S on every record with its P wave "
                    "replaced by its pre-event noise: do early S picks come from the P or from what precedes the S?")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_data_picks.json"))
    args = ap.parse_args()
    if (args.sweep or args.s_without_p) and args.tolerance not in TOLERANCES:
        raise SystemExit(f"--sweep and --s-without-p score recall within --tolerance: one of {TOLERANCES}")
    ours = load_picker_model(args.model)
    if args.highpass is not None:
        ours.default_args["highpass"] = args.highpass
    pnl = load_phasenetlight(Path(args.phasenetlight))
    pickers = {"seiscontrast": lambda st: seisbench_picks(ours, st),
               "seiscontrast, pick path": lambda st: [(p.phase, p.peak_time) for p in pick_path(ours, st)],
               "PhaseNetLight-ETHZ": lambda st: seisbench_picks(pnl, st),
               "PhaseNetLight-ETHZ, pick path": lambda st: [(p.phase, p.peak_time) for p in pick_path(pnl, st)],
               "ObsPy ar_pick": ar_picks}
    rows = []
    records = list(dataset_streams(Path(args.dataset)))
    for name, st, ref in records:
        for label, fn in pickers.items():
            rows.append({"trace": name, "model": label, **score(fn(st), ref, args.tolerance)})
    table = pd.DataFrame(rows)
    summary = summarise(table)
    example = example_at_20_hz(pickers)
    print(f"real events from {args.dataset}; recall = share of TauP arrivals with a pick of that phase within "
          f"{', '.join(map(str, TOLERANCES))} s; MAE over picks within {args.tolerance} s; false = farther")
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    by_split = {}
    splits = record_splits(Path(args.dataset))
    if splits:   # self-training (seiscontrast pseudo-label) uses the train split's records; the rest stay held out
        table["split"] = table.trace.map(splits).where(lambda x: x == "train", "dev+test")
        print("the same by split (pick path only; self-training sees the train split's records, unlabelled):")
        for part, t in table[table.model.str.endswith("pick path")].groupby("split"):
            by_split[part] = summarise(t)
            with pd.option_context("display.width", 200, "display.max_columns", 30):
                print(f"{part}:\n" + by_split[part].to_string(float_format=lambda v: f"{v:.3f}"))
    lag = paired_lag(table, "seiscontrast, pick path", "PhaseNetLight-ETHZ, pick path")
    print(f"our P picks minus PhaseNetLight's on the same records (pick path, {lag['records']} records with both "
          f"within 1 s of TauP): median {lag['median_s']:+.3f} s, quartiles {lag['q25_s']:+.3f} / {lag['q75_s']:+.3f} s")
    for phase, png in (("P", args.p_curves), ("S", args.s_curves)):
        if png:
            plot_curves(records, table, {"seiscontrast": ours, "PhaseNetLight-ETHZ": pnl}, Path(png), phase)
            print(f"wrote {png}")
    for label in ("seiscontrast, pick path", "PhaseNetLight-ETHZ, pick path"):
        s = nearest(table, label, "S")
        print(f"{label}: S picks nearest TauP's S 0.5-2 s before it on {int(s.between(-2, -0.5).sum())} "
              f"records, 0.5-2 s after it on {int(s.between(0.5, 2).sum())}, none on {int(s.isna().sum())}")
    checks = {phase: reference_check(table, "seiscontrast, pick path", "PhaseNetLight-ETHZ, pick path", phase,
                                     args.tolerance) for phase in "PS"}
    for phase, c in checks.items():
        print(f"{phase}: our pick nearest TauP's displaced by {args.tolerance}-2 s on {c['displaced']} records, on "
              f"{c['displaced_with_other']} of them with PhaseNetLight's within 0.3 s of ours, on "
              f"{c['displaced_other_none']} with none of PhaseNetLight's; the two networks' "
              f"residuals correlate at {c['residual_correlation']:.2f} ({c['records_both_within_2s']} records)")
    print("ObsPy example (BW.RJOB) at 100 Hz and resampled to 20 Hz: P kept?",
          {k: v["P_kept_at_20Hz"] for k, v in example.items()})
    thresholds = {"seiscontrast": model_thresholds(ours), "PhaseNetLight-ETHZ": model_thresholds(pnl)}
    print("default thresholds:", thresholds)
    result = {"dataset": args.dataset, "model": args.model, "highpass_hz": ours.default_args.get("highpass"),
              "tolerance_s": args.tolerance, "thresholds": thresholds,
              "summary": json.loads(summary.to_json(orient="index")), "obspy_example_20hz": example,
              "P_lag_behind_phasenetlight": lag, "reference_check": checks,
              "summary_by_split": {k: json.loads(v.to_json(orient="index")) for k, v in by_split.items()}}
    if args.sweep:
        sweep = threshold_sweep(records, {"seiscontrast": ours, "PhaseNetLight-ETHZ": pnl}, args.sweep,
                                args.tolerance)
        print(f"pick path at other thresholds (both phases), recall within {args.tolerance} s and false picks:")
        print(sweep.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
        result["threshold_sweep"] = json.loads(sweep.to_json(orient="records"))
    if args.views:
        views = instrument_views(records, {"seiscontrast": ours, "PhaseNetLight-ETHZ": pnl}, args.tolerance)
        print("pick path on the same records as other instruments would record them:")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(views.to_string(float_format=lambda v: f"{v:.3f}"))
        result["instrument_views"] = json.loads(views.to_json(orient="index"))
    if args.s_without_p:
        r = s_without_p(records, ours, table, args.tolerance)
        print(f"our S with the P wave replaced by pre-event noise ({r['records']} records): of {r['early_S']} S picks "
              f"0.5-2 s early, {r['early_S_within_0.15s']} stay within 0.15 s, {r['early_S_now_hits']} become hits, "
              f"{r['early_S_gone']} vanish; S hits {r['S_hits'][0]} -> {r['S_hits'][1]}, false S "
              f"{r['S_false'][0]} -> {r['S_false'][1]}")
        result["s_without_p"] = r
    check = args.catalog_check is not None
    if check:
        if args.catalog:
            raise SystemExit("give --catalog or --catalog-check, not both")
        tmp = tempfile.TemporaryDirectory()
        args.catalog, args.waveforms = dataset_as_catalog(Path(args.dataset), Path(args.catalog_check or tmp.name))
    if args.catalog:
        if not args.waveforms:
            raise SystemExit("--catalog needs --waveforms")
        cat = catalog_scores(args.catalog, args.waveforms, {"seiscontrast, pick path": ours,
                                                            "PhaseNetLight-ETHZ": pnl, "ObsPy ar_pick": "ar_pick"},
                             args.tolerance)
        print(f"\n{args.catalog}: recall within {', '.join(map(str, TOLERANCES))} s of the reference picks, "
              "MAE/bias of the matches within 0.5 s, extra picks within 30 s of an instrument's references")
        with pd.option_context("display.width", 200, "display.max_columns", 30):
            print(cat.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        result["catalog"] = {"catalog": "--catalog-check" if check else args.catalog,
                             "waveforms": [] if check else args.waveforms,
                             "summary": json.loads(cat.to_json(orient="records"))}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    table.to_csv(out.with_suffix(".csv"), index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
