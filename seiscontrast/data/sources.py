"""Turn the ``--data`` sources of a command into torch datasets.

A source is a SeisBench dataset class name (``ETHZ``), a SeisBench-format folder (has ``metadata.csv``), or
ObsPy-readable waveform files / directories / glob patterns (continuous archives). Every window comes through a
SeisBench generator: archives are converted once (:func:`converted_archive`) and then read lazily from disk like
any SeisBench dataset, so memory does not grow with the archive.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch

from ..logs import get_logger
from .obspy_source import InputReport, expand_paths
from .seisbench_source import DatasetConfig, open_datasets, pretraining_generator, split
from .windows import WindowConfig

log = get_logger(__name__)


def is_seisbench_source(source: str) -> bool:
    """True for a SeisBench-format folder or a name that is not an existing path or glob."""
    p = Path(source)
    if p.is_dir():
        return (p / "metadata.csv").is_file()
    return not p.exists() and not glob.has_magic(source)


def cache_root() -> Path:
    """Where converted archives are kept: ``$SEISCONTRAST_CACHE`` or ``~/.cache/seiscontrast``."""
    return Path(os.environ.get("SEISCONTRAST_CACHE") or Path.home() / ".cache" / "seiscontrast")


def converted_archive(sources: Sequence[str], window: WindowConfig, overlap: int = 0, keep_tail: bool = False
                      ) -> Path:
    """A SeisBench-format copy of ObsPy-readable files, traces one window long (consecutive ones sharing
    ``overlap`` samples; with ``keep_tail`` also each record's shorter last one), 90 % train and 10 % dev; made
    once per state of the files and cached.

    The key is the files' paths, sizes and modification times plus the window settings, so a changed or added
    file makes a new copy. The conversion reads one station-day at a time.
    """
    from ..archive import fingerprint
    from .convert import ConvertConfig, convert_archive

    found = InputReport()
    files = sorted(str(p.resolve()) for p in expand_paths(sources, found))
    if not files:
        raise ValueError(f"no waveform files found in {list(sources)}")
    key = hashlib.sha1(json.dumps([fingerprint(files), window.length, window.sampling_rate, window.components,
                                   overlap] + ([True] if keep_tail else [])).encode()).hexdigest()[:16]
    folder = cache_root() / "archives" / key
    if (folder / "metadata.csv").is_file():
        for where, message in found.errors:   # the conversion reported everything else the first time
            log.warning("%s: %s", where, message)
        log.info("%d archive file(s): using their converted copy %s", len(files), folder)
        return folder
    tmp = folder.with_name(f".{key}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("converting %d archive file(s) for pretraining into %s (once)", len(files), folder)
    cfg = ConvertConfig(trace_length=window.duration, trace_overlap=overlap / window.sampling_rate,
                        split_fractions=(0.9, 0.1, 0.0), keep_tail=keep_tail)
    try:
        _, report, n = convert_archive(files, tmp, None, window, cfg, progress=True)
        for where, message in report.errors + report.warnings:
            log.warning("%s: %s", where, message)
        try:
            tmp.replace(folder)
        except OSError:     # another process (DDP rank) finished the same copy first
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)   # a failed or superseded conversion leaves nothing behind
    log.info("%d traces converted", n)
    return folder


def pretraining_datasets(cfg: DatasetConfig, window: WindowConfig, overlap: int = 0
                         ) -> tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]:
    """Training and validation windows for pretraining: the ``train`` split (reduced to ``cfg.fraction``) and
    the ``dev`` split of every source, archives (converted, :func:`converted_archive`) included."""
    if not cfg.sources:
        raise ValueError("no data source given (--data)")
    sb = [s for s in cfg.sources if is_seisbench_source(s)]
    files = [s for s in cfg.sources if not is_seisbench_source(s)]
    if files:
        sb.append(str(converted_archive(files, window, overlap)))
    data = open_datasets(sb, window, cfg.missing_components, cfg.cache)
    train = pretraining_generator(split(data, "train", cfg), window)
    try:
        val = pretraining_generator(split(data, "dev"), window)
    except ValueError:
        log.warning("no dev split in %s: training without validation", sb)
        val = None
    return train, val
