"""Picks on real recordings: seiscontrast's picker vs SeisBench PhaseNetLight (trained on real ETHZ data).

Data (development only, never used by tests):
* a SeisBench-format folder of real local events without picks (e.g. ``../shared/data/seisbench-dummy``:
  CX.PB01, northern Chile, 20 Hz) — reference P and S times are TauP (iasp91) first arrivals from the catalogue
  source and station coordinates (they agree with pickers to ~0.2 s there);
* optionally more files with reference picks in a CSV (network, station, phase, time).

For each model, with its default thresholds: hits = picks within ``--tolerance`` s of the reference arrival of
the same phase, false picks = picks of a phase with no reference of that phase within the tolerance.

    python benchmarks/real_data_picks.py --dataset ../shared/data/seisbench-dummy \\
        --phasenetlight ../shared/data/phasenetlight-ethz
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import seisbench
import seisbench.data as sbd
import seisbench.models as sbm
from obspy import UTCDateTime
from obspy.taup import TauPyModel

from seiscontrast.data.obspy_source import InputReport, station_key, station_record
from seiscontrast.data.windows import WindowConfig
from seiscontrast.pick import PickSettings, annotate_record
from seiscontrast.pick_metrics import taup_onsets
from seiscontrast.picker import load_picker_model

ROOT = Path(__file__).resolve().parents[1]


def dataset_streams(path: Path):
    """Yield ``(trace_name, Stream, reference {phase: UTCDateTime})`` for each trace of a SeisBench folder."""
    ds = sbd.WaveformDataset(path, component_order="ZNE", sampling_rate=None)
    fs = float(ds.data_format.get("sampling_rate", 20)) if hasattr(ds, "data_format") else 20.0
    taup = TauPyModel("iasp91")
    for i, row in ds.metadata.iterrows():
        wf = ds.get_waveforms(i)
        start = UTCDateTime(row.trace_start_time)
        rate = float(row.get("trace_sampling_rate_hz", fs)) if np.isfinite(row.get("trace_sampling_rate_hz", np.nan)) else fs
        st = obspy.Stream()
        for c, comp in enumerate("ZNE"):
            tr = obspy.Trace(wf[c].astype(np.float32))
            tr.stats.update(dict(network=row.station_network_code, station=row.station_code, channel=f"BH{comp}",
                                 sampling_rate=rate, starttime=start))
            st += tr
        # the traces start at the origin time (see the dataset description)
        ref = {phase: times[0] for phase, times in taup_onsets(row, start, taup).items() if times}
        yield row.get("trace_name_original", str(i)), st, ref


def score(picks, ref: dict, tolerance: float) -> dict:
    out = {"P_hit": 0, "S_hit": 0, "P_ref": int("P" in ref), "S_ref": int("S" in ref), "false": 0,
           "P_residual": np.nan, "S_residual": np.nan}
    for phase in "PS":
        mine = [p for p in picks if p.phase == phase]
        if phase in ref and mine:
            best = min(mine, key=lambda p: abs(p.peak_time - ref[phase]))
            res = best.peak_time - ref[phase]
            if abs(res) <= tolerance:
                out[f"{phase}_hit"] = 1
                out[f"{phase}_residual"] = res
        out["false"] += sum(1 for p in mine if phase not in ref or abs(p.peak_time - ref[phase]) > tolerance)
    return out


def pick_path(model, st):
    """Picks as ``seiscontrast pick`` makes them: cleaned record (glitches removed), windows on the absolute-time
    grid, gaps masked (:func:`seiscontrast.pick.annotate_record`)."""
    s = st[0].stats
    rec = station_record(station_key(s.network, s.station, s.location, s.channel), st.copy(), WindowConfig(length=model.in_samples, sampling_rate=model.sampling_rate),
                         InputReport())
    return annotate_record(model, rec, PickSettings())[1]


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
    ap.add_argument("--tolerance", type=float, default=0.5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "real_data_picks.json"))
    args = ap.parse_args()
    ours = load_picker_model(args.model)
    models = {"seiscontrast": ours, "PhaseNetLight-ETHZ": load_phasenetlight(Path(args.phasenetlight))}
    rows = []
    for name, st, ref in dataset_streams(Path(args.dataset)):
        for label, model in models.items():
            picks = model.classify(st).picks
            rows.append({"trace": name, "model": label, **score(picks, ref, args.tolerance)})
        rows.append({"trace": name, "model": "seiscontrast, pick path",
                     **score(pick_path(ours, st), ref, args.tolerance)})
    table = pd.DataFrame(rows)
    summary = table.groupby("model").agg(
        traces=("trace", "count"), P_hits=("P_hit", "sum"), P_refs=("P_ref", "sum"), S_hits=("S_hit", "sum"),
        S_refs=("S_ref", "sum"), false_picks=("false", "sum"),
        P_mean_residual_s=("P_residual", "mean"), S_mean_residual_s=("S_residual", "mean"),
        P_residual_sd_s=("P_residual", "std"), S_residual_sd_s=("S_residual", "std"))
    summary["P_recall"] = summary.P_hits / summary.P_refs
    summary["S_recall"] = summary.S_hits / summary.S_refs
    print(f"real events from {args.dataset}; hit = within {args.tolerance} s of the TauP arrival")
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"dataset": args.dataset, "tolerance_s": args.tolerance,
                               "summary": json.loads(summary.to_json(orient="index"))}, indent=2))
    table.to_csv(out.with_suffix(".csv"), index=False)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
