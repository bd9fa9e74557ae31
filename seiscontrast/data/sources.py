"""Turn the ``--data`` sources of a command into torch datasets.

A source is a SeisBench dataset class name (``ETHZ``), a SeisBench-format folder (has ``metadata.csv``), or
ObsPy-readable waveform files / directories / glob patterns (continuous archives).
"""

from __future__ import annotations

import glob
from pathlib import Path

import torch

from ..logs import get_logger
from .obspy_source import ObsPyWindowDataset
from .seisbench_source import DatasetConfig, open_datasets, pretraining_generator, split
from .windows import WindowConfig

log = get_logger(__name__)


def is_seisbench_source(source: str) -> bool:
    """True for a SeisBench-format folder or a name that is not an existing path or glob."""
    p = Path(source)
    if p.is_dir():
        return (p / "metadata.csv").is_file()
    return not p.exists() and not glob.has_magic(source)


def pretraining_datasets(cfg: DatasetConfig, window: WindowConfig, overlap: int = 0
                         ) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
    """Training and validation windows for pretraining.

    SeisBench sources give their ``train`` split (reduced to ``cfg.fraction``) and ``dev`` split; ObsPy sources
    give continuous windows (training only).
    """
    sb = [s for s in cfg.sources if is_seisbench_source(s)]
    files = [s for s in cfg.sources if not is_seisbench_source(s)]
    train_parts, val_parts = [], []
    if sb:
        data = open_datasets(sb, window, cfg.missing_components, cfg.cache)
        train_parts.append(pretraining_generator(split(data, "train", cfg), window))
        try:
            val_parts.append(pretraining_generator(split(data, "dev"), window))
        except ValueError:
            log.warning("no dev split in %s: training without validation", sb)
    if files:
        train_parts.append(ObsPyWindowDataset(files, window, overlap))
    if not train_parts:
        raise ValueError("no data source given (--data)")
    train = train_parts[0] if len(train_parts) == 1 else torch.utils.data.ConcatDataset(train_parts)
    return train, (val_parts[0] if val_parts else None)
