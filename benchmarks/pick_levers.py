"""Two cheap post-processing levers for real-data picks, measured on the development set (not adopted; see the model
card): per-phase thresholds, and re-picking each P onset with an AIC picker around the network's pick; and where
the false picks lie (displaced picks of their own phase, near the other phase, elsewhere). With ``--synthetic-dev``
it first prints, per phase and threshold, the pick F1 on a labelled synthetic set's dev split: thresholds chosen
there, without the real data. With ``--synthetic-test`` it prints how precise the picks are on a labelled
synthetic set's test split per phase and onset type (impulsive, emergent): what the synthetic data says about
timing, next to what the real records say.

Same traces, references and scores as ``real_data_picks.py`` (the ``seiscontrast pick`` path, 100 events of
``seisbench-dummy`` with TauP arrivals). For the AIC variant it also counts, per P pick nearest its reference,
whether the re-picked onset is closer to the reference than the network's pick.

    python benchmarks/pick_levers.py [--model default] [--synthetic-dev SYNTHETIC_FOLDER] \
        [--synthetic-test SYNTHETIC_FOLDER]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from real_data_picks import ROOT, dataset_streams, record, score, summarise

from seiscontrast.pick import PickSettings, annotate_record
from seiscontrast.picker import load_picker_model


def aic_onset(x: np.ndarray) -> int:
    """Sample where Maeda's AIC (variance before vs after, no AR model) has its minimum."""
    n = len(x)
    k = np.arange(1, n - 1)
    c1, c2 = np.cumsum(x), np.cumsum(x * x)
    v1 = c2[k - 1] / k - (c1[k - 1] / k) ** 2
    v2 = (c2[-1] - c2[k - 1]) / (n - k) - ((c1[-1] - c1[k - 1]) / (n - k)) ** 2
    aic = k * np.log(np.maximum(v1, 1e-30)) + (n - k - 1) * np.log(np.maximum(v2, 1e-30))
    return int(k[2 + np.argmin(aic[2:-2])])


def aic_p(st, t, before: float = 1.0, after: float = 0.3, highpass: float = 1.0):
    """The P onset re-picked on the high-passed vertical in ``[t - before, t + after]``."""
    z = st.select(component="Z").copy().detrend("demean").filter("highpass", freq=highpass, corners=2)[0]
    x = z.slice(t - before, t + after).data.astype(float)
    return t if len(x) < 8 else (t - before) + aic_onset(x) / z.stats.sampling_rate


def false_pick_kinds(picks, ref: dict, tolerance: float = 0.5, near: float = 2.0) -> dict[str, int]:
    """Where the false picks (farther than ``tolerance`` from their phase's reference) lie: within ``near`` s of
    their own phase's reference (a displaced pick), within ``near`` s of the other phase's, or elsewhere."""
    out = {"near own": 0, "near other phase": 0, "elsewhere": 0}
    for phase, t in picks:
        own, other = ref.get(phase), ref.get("S" if phase == "P" else "P")
        if own is not None and abs(t - own) <= tolerance:
            continue
        if own is not None and abs(t - own) <= near:
            out["near own"] += 1
        elif other is not None and abs(t - other) <= near:
            out["near other phase"] += 1
        else:
            out["elsewhere"] += 1
    return out


def synthetic_dev_thresholds(model, folder: str, thresholds=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)) -> None:
    """Pick precision / recall / F1 within 0.5 s per phase and threshold on ``folder``'s dev split."""
    from seiscontrast import pick_metrics

    dev = pick_metrics.reference_traces(folder, "dev")
    table = pick_metrics.threshold_table(model, pick_metrics.annotate(model, dev), dev, 0.5, thresholds)
    print(f"synthetic dev split ({dev.n_traces} traces of {folder}), picks within 0.5 s:")
    print(table.round(3).to_string())
    print("best F1: " + ", ".join(f"{ph} at {t:g}" for ph, t in pick_metrics.best_thresholds(table).items()),
          flush=True)


def synthetic_onset_types(model, folder: str, count: int = 1000, threshold: float = 0.3,
                          group_by: str = "trace_p_onset") -> None:
    """Per phase and onset type (or another metadata column, ``group_by``), on the first ``count`` traces of
    ``folder``'s test split: recall within 0.1 and 0.5 s, and the median absolute residual and median residual
    (bias) of the picks within 0.5 s. A ``path_p_…`` column groups the S picks by its ``path_s_…`` counterpart
    (e.g. ``path_p_phase``: P, Pn, Pg and S, Sn, Sg of a ``synth --crust`` set)."""
    import seisbench.data as sbd

    from seiscontrast import pick_metrics

    test = pick_metrics.reference_traces(folder, "test")
    meta = sbd.WaveformDataset(folder, sampling_rate=None).test().metadata
    if group_by not in meta:
        raise SystemExit(f"error: {folder} has no metadata column {group_by!r}")
    s_column = group_by.replace("path_p_", "path_s_") if group_by.startswith("path_p_") else group_by
    onset = {"P": meta[group_by].to_numpy(), "S": meta[s_column].to_numpy()}
    count = min(count, test.n_traces)
    test.stream.traces = [tr for tr in test.stream if int(tr.stats.station) < count]
    picks = pick_metrics.picks_at(model, pick_metrics.annotate(model, test), threshold)
    rows = []
    for i in range(count):
        for phase in ("P", "S"):
            for ref in test.onsets.get((i, phase), [])[:1]:
                res = pick_metrics.match([float(t - ref) for t in picks.get((i, phase), [])], [0.0], 0.5)
                rows.append({"phase": phase, "onset": onset[phase][i], "residual": res[0] if res else np.nan})
    g = pd.DataFrame(rows).groupby(["phase", "onset"]).residual
    table = pd.DataFrame({"onsets": g.size(), "within 0.1 s": g.apply(lambda r: (r.abs() <= 0.1).mean()),
                          "within 0.5 s": g.apply(lambda r: r.notna().mean()),
                          "median |residual| (s)": g.apply(lambda r: r.abs().median()),
                          "median residual (s)": g.median()})
    print(f"synthetic test split ({count} traces of {folder}), threshold {threshold}:")
    print(table.round(3).to_string(), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "data" / "seisbench-dummy"))
    ap.add_argument("--model", default="default")
    ap.add_argument("--synthetic-dev", metavar="FOLDER", help="also score thresholds on this labelled synthetic "
                    "set's dev split (the recipe's WORK/synthetic)")
    ap.add_argument("--synthetic-test", metavar="FOLDER", help="also print the pick precision per onset type on "
                    "this labelled synthetic set's test split (first 1000 traces)")
    ap.add_argument("--group-by", default="trace_p_onset", metavar="COLUMN", help="the metadata column that "
                    "--synthetic-test groups by (e.g. path_p_phase for a set made with synth --crust)")
    ap.add_argument("--threshold", type=float, default=0.3, help="pick threshold of --synthetic-test")
    ap.add_argument("--synthetic-only", action="store_true", help="stop after the synthetic scores")
    args = ap.parse_args()
    model = load_picker_model(args.model)
    if args.synthetic_dev:
        synthetic_dev_thresholds(model, args.synthetic_dev)
    if args.synthetic_test:
        synthetic_onset_types(model, args.synthetic_test, threshold=args.threshold, group_by=args.group_by)
    if args.synthetic_only:
        return
    # each record prepared once, picked at every setting
    records = [(name, st, record(model, st), ref) for name, st, ref in dataset_streams(Path(args.dataset))]

    def run(p_thr, s_thr, refine=False):
        rows, closer, farther, kinds = [], 0, 0, {}
        for name, st, rec, ref in records:
            picks = [(p.phase, p.peak_time) for p in annotate_record(model, rec, PickSettings(p_thr, s_thr))[1]]
            if refine:
                ps = [t for ph, t in picks if ph == "P"]
                if ps and "P" in ref:
                    best = min(ps, key=lambda t: abs(t - ref["P"]))
                    new = aic_p(st, best)
                    closer += abs(new - ref["P"]) < abs(best - ref["P"]) - 0.02
                    farther += abs(new - ref["P"]) > abs(best - ref["P"]) + 0.02
                picks = [(ph, aic_p(st, t) if ph == "P" else t) for ph, t in picks]
            rows.append({"trace": name, "model": "x", **score(picks, ref, 0.5)})
            for k, n in false_pick_kinds(picks, ref).items():
                kinds[k] = kinds.get(k, 0) + n
        row = summarise(pd.DataFrame(rows)).iloc[0]
        label = f"P {p_thr} / S {s_thr}" + (", P re-picked by AIC" if refine else "")
        extra = f"  AIC closer to the reference: {closer}, farther: {farther}" if refine else ""
        print(f"{label:34} P {row['P@0.1']:.2f} / {row['P@0.2']:.2f} / {row['P@0.5']:.2f}  S {row['S@0.1']:.2f} / "
              f"{row['S@0.2']:.2f} / {row['S@0.5']:.2f}  false P {row.P_false:.0f}  S {row.S_false:.0f}{extra}",
              flush=True)
        return kinds

    print("recall within 0.1 / 0.2 / 0.5 s of the TauP arrivals, false picks (farther than 0.5 s)")
    kinds = run(0.3, 0.3)
    for p_thr, s_thr in [(0.2, 0.3), (0.3, 0.4), (0.3, 0.5)]:
        run(p_thr, s_thr)
    run(0.3, 0.3, refine=True)
    print("false picks at P 0.3 / S 0.3, by where they lie (within 2 s):", kinds)


if __name__ == "__main__":
    main()
