"""Keep the memory that freed tensors leave in the process, instead of giving it back to the OS after each batch.

With its default settings, glibc's ``malloc`` maps every block above its mmap threshold (128 kB, adapting up to
32 MB) afresh and unmaps it on free, returns the top of its heap to the OS whenever more than twice that is free,
and gives each thread that allocates its own arena (SeisBench runs the network in a thread pool). A CPU forward
pass allocates and frees tens of megabytes of activations per batch, so every batch touches those pages for the
first time again. Measured on the bundled picker through ``pick_files`` (6 hours of 100 Hz data, 2 threads):
355 000 minor page faults and 1.35 s of system time in 3.2 s, against 2 000-11 000 faults and 0.12-0.23 s in
2.1-2.25 s with the settings below (one arena, blocks up to 32 MB from it, 1 GB of free memory kept at its top),
and a lower peak (850 against 1060 MB). Training's activations exceed 32 MB, so training takes every block from
the heap (``every_block``). End-to-end figures: ``benchmarks/pick_throughput.py``, ``pretrain_throughput.py``.

The cost: memory freed after a peak stays with the process (the next batch reuses it). Set
``SEISCONTRAST_KEEP_FREED_MEMORY=0`` to leave ``malloc`` as it is. Other C libraries (macOS, Windows, musl) are
left alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

from .logs import get_logger

log = get_logger("memory")

ENV = "SEISCONTRAST_KEEP_FREED_MEMORY"
#: ``mallopt`` parameters (``malloc.h``)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -3, -4, -8
#: blocks up to this size come from the heap (32 MB: the largest threshold glibc accepts on 64-bit systems)
MMAP_THRESHOLD = 32 << 20
#: free memory at the heap's top kept before any is returned to the OS
TRIM_THRESHOLD = 1 << 30

_state: dict[str, bool] = {}


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory(every_block: bool = False) -> bool:
    """Tune glibc's ``malloc`` (one arena, 1 GB kept at the heap's top) so that freed blocks of up to 32 MB are
    reused rather than unmapped and page-faulted again; with ``every_block`` (training, whose activations are
    larger) blocks of any size. Best called before the threads that allocate are started.

    Returns whether the settings are in force: False off glibc or when ``SEISCONTRAST_KEEP_FREED_MEMORY`` is 0.
    """
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    wanted = "every_block" if every_block else "kept"
    if wanted not in _state:
        libc = _glibc()
        ok = libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                                       and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                                       and libc.mallopt(M_ARENA_MAX, 1))
        if ok and every_block:   # no block mapped on its own: each comes from the heap and goes back to it
            ok = bool(libc.mallopt(M_MMAP_MAX, 0))
        _state[wanted] = ok
        if every_block:
            _state["kept"] = ok
        log.debug("malloc keeps freed memory (%s): %s", wanted, ok)
    return _state[wanted]
