"""Data layer: every source ends up as float32 ``[3, length]`` Z/N/E windows (see :mod:`.windows`).

* :mod:`.seisbench_source` — SeisBench datasets by name or folder, windows via ``seisbench.generate``.
* :mod:`.obspy_source` — ObsPy-readable files/directories/globs, grouped by station into continuous records.
* :mod:`.convert` — miniSEED (+ picks) → SeisBench-format dataset (archives reach every window path this way).
* :mod:`.synthetic` — realistic labelled synthetic earthquakes in SeisBench format.
* :mod:`.noise_bank` — quiet parts of real recordings, the real noise of synthetic traces.
"""

from .obspy_source import InputReport, StationRecord, read_records
from .seisbench_source import (
    DatasetConfig,
    block_fraction_mask,
    open_dataset,
    open_datasets,
    picking_generator,
    pretraining_generator,
    split,
)
from .windows import WindowConfig, normalize_window

__all__ = [
    "DatasetConfig", "InputReport", "StationRecord", "WindowConfig", "block_fraction_mask",
    "normalize_window", "open_dataset", "open_datasets", "picking_generator",
    "pretraining_generator", "read_records", "split",
]
