"""Atomic file writes: output goes to a temporary file in the target folder and is renamed over the target only
when complete, so an interrupted run never leaves a half-written picks, model or embeddings file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def atomic_write(path: str | Path, write: Callable[[str], T]) -> T:
    """Call ``write(tmp_path)``, then move the result to ``path``; returns what ``write`` returned.

    If ``write`` raises, ``path`` is left as it was and the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        result = write(tmp)
        _normal_permissions(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return result


def _normal_permissions(path: str) -> None:
    """mkstemp creates 0600 files; give the result the permissions a plain ``open`` would (0666 minus umask)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)
