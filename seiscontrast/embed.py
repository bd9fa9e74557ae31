"""Frame-level and pooled window embeddings from a pretrained or fine-tuned backbone, written to HDF5.

Python API::

    from seiscontrast.embed import load_backbone, embed_windows
    model, window = load_backbone("runs/tiny/model.pt")
    frames, pooled = embed_windows(model, windows)      # windows: float32 [N, 3, samples]

HDF5 layout: ``pooled`` [N, D] float32 (mean over frames), ``frames`` [N, T, D] float16 (optional),
``start_time`` (ISO-8601 UTC, empty when unknown), ``station`` (NET.STA.LOC.band), ``trace_name``,
``start_sample`` (in the trace; windows are consecutive, the last one zero-padded); attributes
``model``, ``frame_rate_hz``, ``sampling_rate_hz``, ``window_samples``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from .checkpoints import load_model
from .data.seisbench_source import open_dataset, sliding_generator
from .data.seisbench_source import split as split_of
from .data.sources import converted_archive, is_seisbench_source
from .data.windows import WindowConfig
from .files import atomic_write
from .logs import get_logger, progress_bar
from .model import SeisContrastModel

log = get_logger(__name__)


def load_backbone(path: str | Path) -> tuple[SeisContrastModel, WindowConfig]:
    """The backbone of a ``model.pt`` (pretrained) or ``picker.pt`` (fine-tuned), or of the bundled picker
    (``"default"``, as for ``pick``), in eval mode."""
    if str(path) == "default":
        from .picker import DEFAULT_MODEL

        path = DEFAULT_MODEL
    loaded = load_model(path)
    return loaded.backbone.eval(), loaded.spec.window


@torch.no_grad()
def embed_windows(model: SeisContrastModel, windows: np.ndarray, batch_size: int = 32, device: str = "cpu",
                  progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``[N, 3, samples]`` → frame features ``[N, T, D]`` and their mean over frames ``[N, D]``."""
    model = model.to(device)
    frames = []
    for i in progress_bar(range(0, len(windows), batch_size), enabled=progress, desc="embedding", unit="batch"):
        x = torch.from_numpy(np.ascontiguousarray(windows[i:i + batch_size], dtype=np.float32)).to(device)
        frames.append(model(x).float().cpu().numpy())
    out = np.concatenate(frames) if frames else np.zeros((0, 0, model.dim), np.float32)
    return out, out.mean(axis=1)


def _source_windows(sources: Sequence[str], window: WindowConfig, split: str | None):
    """Yield ``(windows [n, 3, L], start_times, stations, trace_names, start_samples)`` per trace.

    Every trace is cut into consecutive windows by SeisBench's ``SlidingWindow`` (the last one zero-padded).
    Waveform files go through their cached SeisBench copy (:func:`~seiscontrast.data.sources.converted_archive`),
    read one trace at a time, so memory does not grow with the archive; ``split`` applies to SeisBench sources.
    """
    parts = [(open_dataset(s, window), split) for s in sources if is_seisbench_source(s)]
    files = [s for s in sources if not is_seisbench_source(s)]
    if files:
        parts.append((open_dataset(converted_archive(files, window, keep_tail=True), window), None))
    for data, name in parts:
        if name:
            data = split_of(data, name)
        gen = sliding_generator(data, window)
        meta = data.metadata
        for i in range(len(data)):
            wins = gen[i]["X"]
            starts = np.arange(len(wins)) * window.length
            row = meta.iloc[i]
            t0 = row.get("trace_start_time", "")
            times = [_offset(t0, s / window.sampling_rate) for s in starts]
            station = ".".join(_text(row.get(c)) for c in ("station_network_code", "station_code",
                                                            "station_location_code", "trace_channel"))
            name = str(row.get("trace_name_original", row.get("trace_name", i)))
            yield wins, times, [station] * len(starts), [name] * len(starts), list(starts)


def _offset(t0, seconds: float) -> str:
    from obspy import UTCDateTime

    try:
        return str(UTCDateTime(t0) + seconds)
    except Exception:  # metadata without a parsable start time
        return ""


def _text(value) -> str:
    return "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)


def embed_to_hdf5(model_path: str | Path, sources: Sequence[str], out: str | Path, split: str | None = None,
                  frames: bool = True, batch_size: int = 32, device: str = "cpu", progress: bool = True) -> int:
    """Embed every window of the sources and write them to ``out`` (HDF5). Returns the number of windows."""
    model, window = load_backbone(model_path)

    def write(tmp: str) -> int:
        n = 0
        with h5py.File(tmp, "w") as f:
            str_dt = h5py.string_dtype()
            ds = {}
            for wins, times, stations, names, starts in progress_bar(_source_windows(sources, window, split),
                                                                     enabled=progress, desc="traces", unit="trace"):
                fr, pooled = embed_windows(model, wins, batch_size, device)
                cols = {"pooled": pooled.astype(np.float32), "start_time": np.array(times, dtype=object),
                        "station": np.array(stations, dtype=object), "trace_name": np.array(names, dtype=object),
                        "start_sample": np.array(starts, dtype=np.int64)}
                if frames:
                    cols["frames"] = fr.astype(np.float16)
                for key, value in cols.items():
                    if key not in ds:
                        dtype = str_dt if value.dtype == object else value.dtype
                        ds[key] = f.create_dataset(key, shape=(0, *value.shape[1:]), maxshape=(None, *value.shape[1:]),
                                                   dtype=dtype, chunks=True)
                    ds[key].resize(n + len(value), axis=0)
                    ds[key][n:] = value
                n += len(wins)
            f.attrs.update({"model": str(model_path), "frame_rate_hz": window.sampling_rate / model.hop,
                            "sampling_rate_hz": window.sampling_rate, "window_samples": window.length})
        if n == 0:
            raise ValueError(f"no windows could be made from {list(sources)}")
        return n

    n = atomic_write(out, write)
    log.debug("wrote %d window embeddings to %s", n, out)
    return n
