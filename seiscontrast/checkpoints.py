"""Model files: a plain ``torch.save`` dict of tensors and primitives (loadable with ``weights_only=True``).

``{"format": "seiscontrast", "kind": "pretrained"|"picker", "config": {...}, "state_dict": {...}, "meta": {...}}``.
Lightning checkpoints (``*.ckpt``) written by our training loops load too: their hyper-parameters carry the
same config dict and their state-dict keys are prefixed by the LightningModule attribute name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .files import atomic_write

FORMAT = "seiscontrast"


def save_model_file(path: str | Path, kind: str, config: dict[str, Any], state_dict: dict[str, torch.Tensor],
                    meta: dict[str, Any] | None = None) -> Path:
    """Write a model file atomically (temporary file + rename)."""
    payload = {"format": FORMAT, "kind": kind, "config": config,
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, "meta": meta or {}}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return Path(path)


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Read a model file or a Lightning checkpoint into ``{"kind", "config", "state_dict", "meta"}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable model file ({type(err).__name__}: {err})") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if isinstance(obj, dict) and "state_dict" in obj and "config" in obj.get("hyper_parameters", {}):
        hp = obj["hyper_parameters"]
        prefix = hp.get("model_prefix", "model.")
        state = {k[len(prefix):]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
        return {"format": FORMAT, "kind": hp.get("kind", "pretrained"), "config": hp["config"],
                "state_dict": state, "meta": {"global_step": obj.get("global_step")}}
    raise ValueError(f"{path}: not a seiscontrast model file or Lightning checkpoint")

