"""Pseudo-labels for self-training: a picker's own confident, augmentation-consistent picks on real records.

A picker trained on synthetic labels is run, through the ``seiscontrast pick`` path, on each unlabelled real
record of a SeisBench dataset as it is and under :data:`AUGMENTATIONS` that should not move an onset (flipped
polarity, swapped horizontals, windows on another time grid, more noise). A phase becomes a label only when the
plain run picks it once, with a peak probability of at least ``min_probability``, and every augmented run picks
it within ``agreement`` seconds; the label is the median of those times. A record on which any run disagrees
(a phase only some runs pick, or several picks of one phase) is left out rather than labelled, so that a doubt
never becomes a "no pick here" label; so is one without every phase of ``require``.

The result is a SeisBench-format folder (the records at their own rate, ``trace_p_arrival_sample``,
``trace_s_arrival_sample``, all in the ``train`` split) to fine-tune on next to the synthetic data
(``finetune --init-from picker.pt`` with ``data.repeats``), plus ``pseudo_labels.csv``, which says for every
record what was decided and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import seisbench.data as sbd
import seisbench.models as sbm
from obspy import UTCDateTime

from .data.obspy_source import InputReport
from .data.seisbench_source import open_dataset
from .data.windows import WindowConfig, highpass
from .logs import get_logger, progress_bar
from .pick import PickSettings, annotate_record, model_record

log = get_logger(__name__)

#: the augmented runs besides the plain one, by name (see :func:`augment`)
AUGMENTATIONS = ("polarity", "swap_horizontals", "shifted_windows", "noise")
#: the pick threshold of every run, whatever the model's own (a calibrated model may carry a higher one)
RUN_THRESHOLD = 0.3


@dataclass
class PseudoLabelConfig:
    """Attributes:
    min_probability: peak probability a pick needs in the plain run to become a label (every run picks at
        :data:`RUN_THRESHOLD`, lower, so that a weak second pick is seen and makes the record doubtful).
    agreement: seconds within which every augmented run must pick the phase.
    require: phases every kept record must have a label for (``"PS"``: both; ``""``: any label).
    window_shift: seconds by which the windows of ``shifted_windows`` are moved against the plain run's grid.
    noise: std of the white noise ``noise`` adds, relative to each channel's noise level above 1 Hz
        (:func:`noise_level`): 0.5 raises that level by about 1 dB.
    seed: seed of that noise (with each record's start time, so that every record gets its own).
    """

    min_probability: float = 0.5
    agreement: float = 0.2
    require: str = "PS"
    window_shift: float = 1.37
    noise: float = 0.5
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.min_probability <= 1:
            raise ValueError(f"min_probability must be in (0, 1], got {self.min_probability}")
        if self.agreement <= 0:
            raise ValueError(f"agreement must be > 0 s, got {self.agreement}")
        if set(self.require) - set("PS"):
            raise ValueError(f"require must name phases among P and S, got {self.require!r}")


def noise_level(data: np.ndarray, rate: float) -> np.ndarray:
    """Per channel, the 10th percentile of the 1-s RMS above 1 Hz: the quiet background of an event record in
    the band where onsets are picked (microseisms, which dominate the raw RMS, left out)."""
    n = max(1, int(rate))
    x = highpass(data, rate, 1.0) if rate > 2.0 else data
    usable = x[:, : x.shape[1] // n * n].reshape(len(x), -1, n) if x.shape[1] >= n else x[:, None]
    return np.percentile(np.sqrt((usable.astype(np.float64) ** 2).mean(-1)), 10, axis=1)


def augment(st: obspy.Stream, name: str, cfg: PseudoLabelConfig) -> obspy.Stream:
    """A copy of the Z/N/E stream (at its recorded rate) under one of :data:`AUGMENTATIONS`; ``shifted_windows``
    changes the window grid, not the data. Noise is white up to the recorded rate's Nyquist frequency."""
    st = st.copy()
    if name == "polarity":
        for tr in st:
            tr.data = -tr.data
    elif name == "swap_horizontals":
        n, e = st.select(component="N")[0], st.select(component="E")[0]
        n.data, e.data = e.data.copy(), n.data.copy()
    elif name == "noise":
        rng = np.random.default_rng([cfg.seed, abs(st[0].stats.starttime.ns)])   # its own noise per record
        data = np.stack([tr.data for tr in st])
        level = noise_level(data, st[0].stats.sampling_rate)
        for tr, lv in zip(st, level):
            tr.data = (tr.data + cfg.noise * lv * rng.standard_normal(tr.stats.npts)).astype(tr.data.dtype)
    elif name != "shifted_windows":
        raise ValueError(f"unknown augmentation {name!r}; known: {', '.join(AUGMENTATIONS)}")
    return st


def run_picks(model: sbm.WaveformModel, st: obspy.Stream, cfg: PseudoLabelConfig) -> dict[str, list]:
    """``{run name: [(phase, time, peak probability), ...]}`` for the plain run and every augmentation, each
    through the ``seiscontrast pick`` path (resampling, cleaning, windows on a time grid)."""
    settings = PickSettings(RUN_THRESHOLD, RUN_THRESHOLD)
    plain = model_record(model, st.copy(), InputReport(log_notes=False))
    runs = {}
    for name in ("plain", *AUGMENTATIONS):
        rec = plain if name in ("plain", "shifted_windows") else model_record(
            model, augment(st, name, cfg), InputReport(log_notes=False))
        if rec is None:   # nothing usable in the record: no picks
            runs[name] = []
            continue
        anchor = rec.start - cfg.window_shift if name == "shifted_windows" else None
        runs[name] = [(p.phase, p.peak_time, float(p.peak_value))
                      for p in annotate_record(model, rec, settings, anchor)[1]]
    return runs


def consensus(runs: dict[str, list], cfg: PseudoLabelConfig) -> tuple[dict[str, UTCDateTime], str]:
    """``({phase: label time}, reason)``: the labels the runs agree on, or no labels and why not."""
    labels = {}
    for phase in "PS":
        plain = [(t, p) for ph, t, p in runs["plain"] if ph == phase]
        others = {name: [t for ph, t, _ in picks if ph == phase] for name, picks in runs.items() if name != "plain"}
        if not plain:
            if any(others.values()):
                return {}, f"{phase} picked by some augmented runs only"
            continue
        if len(plain) > 1:
            return {}, f"{len(plain)} {phase} picks"
        t0, prob = plain[0]
        if prob < cfg.min_probability:
            return {}, f"{phase} probability {prob:.2f} < {cfg.min_probability:g}"
        times = [t0]
        for name, ts in others.items():
            near = [t for t in ts if abs(t - t0) <= cfg.agreement]
            if len(ts) != 1 or not near:
                return {}, f"{phase} not picked once within {cfg.agreement:g} s under {name}"
            times.append(near[0])
        offsets = np.array([t - t0 for t in times])
        labels[phase] = t0 + float(np.median(offsets))
    missing = [ph for ph in cfg.require if ph not in labels]
    if missing:
        return {}, f"no consistent {' or '.join(missing)}"
    if not labels:
        return {}, "no picks"
    return labels, "kept"


def band_code(rate: float) -> str:
    """SEED band code of a broadband channel recorded at ``rate`` Hz (H from 80 Hz, B from 10 Hz, M from 1 Hz)."""
    return "H" if rate >= 80 else "B" if rate >= 10 else "M" if rate >= 1 else "L"


def dataset_streams(dataset: sbd.WaveformDataset):
    """Yield ``(row, Z/N/E Stream at the recorded rate)`` per trace of a SeisBench dataset. Channel codes are
    the metadata's ``trace_channel`` where it has one, else a broadband code for the rate (``BHZ`` at 20 Hz)."""
    fs = float(dataset.data_format.get("sampling_rate", np.nan) or np.nan)
    for i, row in dataset.metadata.iterrows():
        rate = float(row.get("trace_sampling_rate_hz", fs))
        if not np.isfinite(rate):
            raise ValueError(f"trace {row.get('trace_name', i)}: no sampling rate (trace_sampling_rate_hz)")
        channel = row.get("trace_channel")
        band = channel[:2] if isinstance(channel, str) and len(channel) >= 2 else band_code(rate) + "H"
        wf = dataset.get_waveforms(i)
        st = obspy.Stream()
        for c, comp in enumerate(dataset.component_order):
            tr = obspy.Trace(wf[c].astype(np.float32))
            tr.stats.update(dict(network=str(row.get("station_network_code", "XX")),
                                 station=str(row.get("station_code", f"R{i:05d}")),
                                 location=str(row.get("station_location_code", "") or ""),
                                 channel=band + comp, sampling_rate=rate, starttime=UTCDateTime(row.trace_start_time)))
            st += tr
        yield row, st


def write_pseudo_labels(model: sbm.WaveformModel, source: str | Path, out_dir: str | Path,
                        cfg: PseudoLabelConfig | None = None, splits: tuple[str, ...] = ("train",),
                        progress: bool = True) -> pd.DataFrame:
    """Pseudo-label the records of ``splits`` of ``source`` (a SeisBench folder or dataset name) into the folder
    ``out_dir``; returns (and writes as ``pseudo_labels.csv``) one row per record with its labels and the decision."""
    cfg = cfg or PseudoLabelConfig()
    out = Path(out_dir)
    if (out / "metadata.csv").exists():
        raise FileExistsError(f"{out} already holds a data set (metadata.csv); choose another folder")
    data = open_dataset(source, WindowConfig(components="ZNE"), resample=False)   # at the recorded rates
    data = data.filter(data.metadata["split"].isin(splits), inplace=False) if "split" in data.metadata else data
    if len(data) == 0:
        raise ValueError(f"{source}: no traces in the split(s) {', '.join(splits)}")
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with sbd.WaveformDataWriter(out / "metadata.csv", out / "waveforms.hdf5") as writer:
        writer.data_format = {"dimension_order": "CW", "component_order": "ZNE", "measurement": "velocity",
                              "unit": "counts", "instrument_response": "not restituted"}
        writer._pbar = progress_bar(enabled=False)   # the writer's own bar would count kept records only
        for row, st in progress_bar(dataset_streams(data), total=len(data), enabled=progress,
                                    desc="pseudo-labelling", unit="record"):
            name = str(row.get("trace_name_original", row.get("trace_name", row.name)))   # as written, not the bucket
            labels, reason = consensus(run_picks(model, st, cfg), cfg)
            rows.append({"trace_name": name, "decision": reason,
                         **{f"{ph}_time": str(t) for ph, t in labels.items()}})
            if not labels:
                continue
            rate, start = st[0].stats.sampling_rate, st[0].stats.starttime
            meta = {"trace_name": name, "trace_start_time": str(start), "trace_sampling_rate_hz": rate,
                    "station_network_code": st[0].stats.network, "station_code": st[0].stats.station,
                    "station_location_code": st[0].stats.location, "split": "train",
                    "trace_label_source": "pseudo", "trace_category": "earthquake"}
            for ph in "PS":
                meta[f"trace_{ph.lower()}_arrival_sample"] = (labels[ph] - start) * rate if ph in labels else np.nan
            writer.add_trace(meta, np.stack([tr.data for tr in st]))
    table = pd.DataFrame(rows)
    table.to_csv(out / "pseudo_labels.csv", index=False)
    log.info("pseudo-labels: %d of %d records kept (%s)", int((table.decision == "kept").sum()), len(table), out)
    return table
