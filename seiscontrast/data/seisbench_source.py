"""SeisBench datasets as window sources: by class name (``ETHZ``, ``STEAD``, …) or local SeisBench-format folder.

Windows are cut by ``seisbench.generate`` (``RandomWindow`` for pretraining, ``WindowAroundSample`` +
``RandomWindow`` for picking windows, ``ProbabilisticLabeller`` for labels, ``SteeredWindow`` for evaluation,
``SlidingWindow`` for embeddings) — this module only composes them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import seisbench.data as sbd
import seisbench.generate as sbg

from ..logs import get_logger
from .augmentations import AugmentConfig, training_augmentations
from .windows import WindowConfig, highpass

log = get_logger(__name__)

#: Metadata columns holding P and S arrival samples (SeisBench convention); the synthetic data set adds a
#: second event per trace in ``trace_p2_arrival_sample``/``trace_s2_arrival_sample``.
P_COLUMNS = ("trace_p_arrival_sample", "trace_P_arrival_sample", "trace_Pg_arrival_sample",
             "trace_Pn_arrival_sample", "trace_P1_arrival_sample", "trace_p2_arrival_sample")
S_COLUMNS = ("trace_s_arrival_sample", "trace_S_arrival_sample", "trace_Sg_arrival_sample",
             "trace_Sn_arrival_sample", "trace_S1_arrival_sample", "trace_s2_arrival_sample")


@dataclass
class DatasetConfig:
    """Which SeisBench data to read.

    Attributes:
        sources: SeisBench dataset class names (``"ETHZ"``, ``"InstanceCounts"``) and/or paths to
            SeisBench-format folders (``metadata.csv`` + ``waveforms.hdf5``); several are combined.
        fraction: share of the training split to use (0 < f <= 1), chosen block-wise and nested.
        fraction_seed: seed of the block permutation (the same seed gives nested subsets across fractions).
        fraction_block: traces per block; neighbouring traces (often the same event) stay together.
        max_traces: at most this many training traces (after ``fraction``), taken in the same ranked block
            order, so that for one seed a smaller count is always a subset of a larger count or fraction.
        missing_components: how SeisBench fills absent channels (``pad`` zeros, ``copy`` another channel).
        cache: SeisBench waveform cache (``None``, ``"trace"`` or ``"full"``).
        repeats: for picking, how often each source's training split is drawn per epoch (one number per source,
            e.g. ``[1, 20]``): a small real set (such as pseudo-labelled records) then makes a chosen share of the
            training windows next to a large synthetic one; each draw cuts a new random window. Empty: once each.
    """

    sources: list[str] = field(default_factory=list)
    fraction: float = 1.0
    fraction_seed: int = 0
    fraction_block: int = 16
    max_traces: int | None = None
    missing_components: str = "pad"
    cache: str | None = None
    repeats: list[int] = field(default_factory=list)

    def __post_init__(self):
        if any(int(r) != r or r < 1 for r in self.repeats):
            raise ValueError(f"repeats must be whole numbers >= 1 (one per source), got {self.repeats}")
        if not 0.0 < self.fraction <= 1.0:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.max_traces is not None and self.max_traces < 1:
            raise ValueError(f"max_traces must be a positive number of traces, got {self.max_traces}")


def open_dataset(source: str | Path, window: WindowConfig, missing_components: str = "pad",
                 cache: str | None = None, resample: bool = True) -> sbd.WaveformDataset:
    """Open one SeisBench dataset by class name or folder, resampled to ``window.sampling_rate`` (or, without
    ``resample``, at each trace's recorded rate).

    Raises ``ValueError`` naming the source when it is neither an existing folder nor a SeisBench dataset class.
    """
    kwargs = dict(sampling_rate=window.sampling_rate if resample else None, component_order=window.components,
                  dimension_order="NCW", missing_components=missing_components, cache=cache)
    path = Path(source)
    if path.is_dir():
        if not (path / "metadata.csv").is_file():
            raise ValueError(f"{path}: not a SeisBench-format folder (no metadata.csv)")
        return sbd.WaveformDataset(path, **kwargs)
    cls = getattr(sbd, str(source), None)
    if isinstance(cls, type) and issubclass(cls, sbd.WaveformDataset) and cls is not sbd.WaveformDataset:
        return cls(**kwargs)  # SeisBench downloads it on first use, exactly as sbd.ETHZ() does
    raise ValueError(f"data source {source!r} is neither a folder nor a SeisBench dataset class "
                     f"(e.g. ETHZ, GEOFON, STEAD, InstanceCounts)")


def open_datasets(sources: Sequence[str | Path], window: WindowConfig, missing_components: str = "pad",
                  cache: str | None = None) -> sbd.WaveformDataset | sbd.MultiWaveformDataset:
    """Open and combine several sources (``MultiWaveformDataset`` when more than one)."""
    if not sources:
        raise ValueError("no data source given")
    datasets = [open_dataset(s, window, missing_components, cache) for s in sources]
    return datasets[0] if len(datasets) == 1 else sbd.MultiWaveformDataset(datasets)


def ranked_items(n: int, seed: int = 0, block: int = 16) -> np.ndarray:
    """Indices of ``n`` items, blocks of ``block`` consecutive items in one seeded random order."""
    order = np.random.default_rng(seed).permutation(math.ceil(n / block)) if n else np.zeros(0, dtype=int)
    items = (order[:, None] * block + np.arange(block)).ravel()
    return items[items < n]


def block_fraction_mask(n: int, fraction: float, seed: int = 0, block: int = 16,
                        max_items: int | None = None) -> np.ndarray:
    """Boolean mask selecting ``fraction`` of ``n`` items in whole blocks of ``block`` consecutive items, then at
    most ``max_items`` of them.

    Items are ranked by one seeded block permutation and taken from the top, so for a fixed seed the selection at
    a smaller fraction or count is always contained in the selection at a larger one.
    """
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    n_blocks = math.ceil(n / block)
    blocks = np.random.default_rng(seed).permutation(n_blocks)[: max(1, math.ceil(fraction * n_blocks))]
    take = int(np.minimum(block, n - blocks * block).sum())   # the last block may be short
    if max_items is not None:
        take = min(take, max_items)
    keep[ranked_items(n, seed, block)[:take]] = True
    return keep


def split(dataset, name: str, cfg: DatasetConfig | None = None):
    """The ``train``/``dev``/``test`` split; the training split is reduced to ``cfg.fraction`` and ``cfg.max_traces``."""
    if name not in ("train", "dev", "test"):
        raise ValueError(f"split must be train, dev or test, got {name!r}")
    part = getattr(dataset, name)()
    if name == "train" and cfg is not None and (cfg.fraction < 1.0 or cfg.max_traces is not None):
        mask = block_fraction_mask(len(part), cfg.fraction, cfg.fraction_seed, cfg.fraction_block, cfg.max_traces)
        part = part.filter(mask, inplace=False)
        log.info("training fraction %.3g, at most %s traces: %d traces", cfg.fraction, cfg.max_traces, len(part))
    if len(part) == 0:
        raise ValueError(f"the {name} split of the data is empty (check the 'split' column)")
    return part


class MarkRecordedSpan:
    """Stores where the recorded samples lie as ``*_sample`` metadata, which every window shift keeps current.

    Together with :class:`DropPicksOutsideRecord` this stops a pick from being labelled inside the zero padding
    that ``RandomWindow(strategy="pad")`` adds when a trace is shorter than the window around its pick.
    """

    START, END = "recorded_start_sample", "recorded_end_sample"

    def __init__(self, key: str = "X"):
        self.key = key

    def __call__(self, state_dict):
        x, metadata = state_dict[self.key]
        metadata[self.START], metadata[self.END] = 0, x.shape[-1]

    def __str__(self):
        return "MarkRecordedSpan"


class DropPicksOutsideRecord:
    """Sets pick columns to NaN where the (shifted) pick falls outside the recorded span of the window."""

    def __init__(self, columns: Sequence[str], key: str = "X"):
        self.columns, self.key = list(columns), key

    def __call__(self, state_dict):
        _, metadata = state_dict[self.key]
        start, end = metadata.pop(MarkRecordedSpan.START), metadata.pop(MarkRecordedSpan.END)
        for col in self.columns:
            if col in metadata:
                pick = np.asarray(metadata[col], dtype=float)
                metadata[col] = np.where((pick >= start) & (pick < end), pick, np.nan)[()]

    def __str__(self):
        return f"DropPicksOutsideRecord ({len(self.columns)} columns)"


class HighPass:
    """:func:`~.windows.highpass` on the whole trace, before any window is cut from it (``window.highpass``)."""

    def __init__(self, corner: float, sampling_rate: float, key: str = "X"):
        self.corner, self.sampling_rate, self.key = corner, sampling_rate, key

    def __call__(self, state_dict):
        x, metadata = state_dict[self.key]
        rate = float(np.nan_to_num(metadata.get("trace_sampling_rate_hz", np.nan), nan=self.sampling_rate))
        state_dict[self.key] = (highpass(x, rate, self.corner), metadata)

    def __str__(self):
        return f"HighPass ({self.corner:g} Hz)"


def trace_filters(window: WindowConfig) -> list:
    """What every generator does to a whole trace first: the high-pass of ``window.highpass``, if set."""
    return [HighPass(window.highpass, window.sampling_rate)] if window.highpass else []


def pretraining_generator(dataset, window: WindowConfig) -> sbg.GenericGenerator:
    """Random windows of ``window.length`` samples (zero-padded when a trace is shorter); the network
    normalises them."""
    gen = sbg.GenericGenerator(dataset)
    gen.add_augmentations([
        *trace_filters(window),
        sbg.RandomWindow(windowlen=window.length, strategy="pad"),
        sbg.ChangeDtype(np.float32),
    ])
    return gen


def phase_columns(dataset) -> dict[str, str]:
    """``{metadata column: "P" | "S"}`` for the pick columns this dataset actually has."""
    cols = set(dataset.metadata.columns)
    mapping = {c: "P" for c in P_COLUMNS if c in cols}
    mapping.update({c: "S" for c in S_COLUMNS if c in cols})
    return mapping


def picking_generator(dataset, window: WindowConfig, sigma: float = 20.0, noise_share: float = 1 / 3,
                      detection: bool = True, labels: str = "PSN", augment: AugmentConfig | None = None
                      ) -> sbg.GenericGenerator:
    """Windows around picks (plus random windows, which are mostly noise) with P/S/noise probability labels.

    As in SeisBench's training recipes: ``OneOf(WindowAroundSample, NullAugmentation)`` then ``RandomWindow``
    (picks that land in its zero padding are dropped, see :class:`MarkRecordedSpan`);
    labels come from ``ProbabilisticLabeller`` (Gaussian of ``sigma`` samples, channels in the model's ``labels``
    order, noise last) and,
    when ``detection`` is set, ``DetectionLabeller`` (1 between P and 1.4·(S−P) after S). ``augment`` adds
    SeisBench augmentations before the labellers (training windows only, :mod:`.augmentations`).
    """
    phases = phase_columns(dataset)
    if not phases:
        raise ValueError("the data set has no P/S arrival columns (trace_p_arrival_sample, ...): cannot train a picker")
    gen = sbg.GenericGenerator(dataset)
    half = window.length // 2
    augmentations = [
        *trace_filters(window),
        sbg.OneOf([sbg.WindowAroundSample(list(phases), samples_before=half, windowlen=2 * window.length,
                                          selection="random", strategy="variable"),
                   sbg.NullAugmentation()],
                  probabilities=[1 - noise_share, noise_share]),
        MarkRecordedSpan(),  # after the variable-length cut, so [0, length) is recorded data
        sbg.RandomWindow(windowlen=window.length, strategy="pad"),
        DropPicksOutsideRecord(list(phases)),
        sbg.ChangeDtype(np.float32),
        *training_augmentations(augment),
        sbg.ProbabilisticLabeller(label_columns=phases, model_labels=labels, sigma=sigma, dim=0),
    ]
    p_cols = [c for c, p in phases.items() if p == "P"]
    s_cols = [c for c, p in phases.items() if p == "S"]
    if detection and p_cols:
        augmentations.append(sbg.DetectionLabeller(p_phases=p_cols, s_phases=s_cols or None, key=("X", "detections")))
    gen.add_augmentations(augmentations)
    return gen


def trace_ids(metadata, rows=None) -> dict[str, list]:
    """The columns that identify traces for ``SteeredGenerator`` (name, plus chunk and dataset where present)."""
    rows = metadata if rows is None else metadata.iloc[rows]
    return {c: list(rows[c]) for c in ("trace_name", "trace_chunk", "trace_dataset") if c in metadata.columns}


def steered_generator(dataset, control, window: WindowConfig) -> sbg.SteeredGenerator:
    """One window of ``window.length`` samples per row of ``control`` (``trace_name`` [+ chunk, dataset],
    ``start_sample``, ``end_sample``) holding that span; ``window_borders`` says where the span lies in it.

    ``SteeredWindow`` moves a window that would start before the trace into the trace (and zero-pads a trace
    that is too short), as in the SeisBench pick benchmark.
    """
    gen = sbg.SteeredGenerator(dataset, control)
    gen.add_augmentations([*trace_filters(window), sbg.SteeredWindow(windowlen=window.length, strategy="pad"),
                           sbg.ChangeDtype(np.float32)])
    return gen


def sliding_generator(dataset, window: WindowConfig) -> sbg.GenericGenerator:
    """Every trace as consecutive, non-overlapping windows ``[n, 3, length]``; a trace is first zero-padded to a
    whole number of windows, so its end is kept."""
    gen = sbg.GenericGenerator(dataset)
    gen.add_augmentations([*trace_filters(window), PadToWindows(window.length),
                           sbg.SlidingWindow(timestep=window.length, windowlen=window.length),
                           sbg.ChangeDtype(np.float32)])
    return gen


class PadToWindows:
    """Zero-pads the trace at its end to a whole (non-zero) number of ``length``-sample windows."""

    def __init__(self, length: int, key: str = "X"):
        self.length, self.key = length, key

    def __call__(self, state_dict):
        x, metadata = state_dict[self.key]
        n = max(1, math.ceil(x.shape[-1] / self.length)) * self.length
        state_dict[self.key] = (np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, n - x.shape[-1])]), metadata)

    def __str__(self):
        return f"PadToWindows ({self.length})"
