"""Model files: the network's spec and its weights, in one ``torch.save`` dict (loadable with ``weights_only=True``).

``{"format": "seiscontrast", "kind", "spec": ModelSpec as a dict, "state_dict", "meta", "config"}``: the spec is
all that rebuilding the network needs; ``config`` is the training run's whole config, kept for provenance only.
:func:`load_model` is the one loader: every command that reads a model file goes through it. Files written
before the spec existed, and Lightning checkpoints (``*.ckpt``) of our training runs, load too: their spec is
read from the run config they carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import config_from_dict, config_to_dict
from .data.windows import WindowConfig
from .files import atomic_write
from .heads import PickerConfig, build_picker, picker_labels
from .model import ModelConfig, SeisContrastModel, build_model

FORMAT = "seiscontrast"
KINDS = ("pretrained", "picker")


@dataclass
class ModelSpec:
    """What a model file's network is.

    Attributes:
        kind: ``pretrained`` (a backbone, :class:`~.model.SeisContrastModel`) or ``picker`` (a picker network).
        window: the windows the network takes (length, sampling rate, component order).
        model: the backbone config (``pretrained`` only).
        picker: the picker network config (``picker`` only).
        labels: the network's output curves in order (``"PSND"``: P, S, noise, detection); empty for backbones.
    """

    kind: str
    window: WindowConfig = field(default_factory=WindowConfig)
    model: ModelConfig | None = None
    picker: PickerConfig | None = None
    labels: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if (self.model if self.kind == "pretrained" else self.picker) is None:
            raise ValueError(f"a {self.kind} spec needs its network config")

    def build(self) -> torch.nn.Module:
        """The network, with random weights."""
        if self.kind == "pretrained":
            return build_model(self.model)
        return build_picker(self.picker, self.window.sampling_rate)

    @classmethod
    def from_run_config(cls, kind: str, config: dict[str, Any]) -> ModelSpec:
        """The spec of a network trained with a pretraining or fine-tuning run config (as a plain dict)."""
        window = config_from_dict(WindowConfig, config.get("window", {}))
        if kind == "pretrained":
            return cls(kind, window, model=config_from_dict(ModelConfig, config.get("model", {})))
        picker = config_from_dict(PickerConfig, with_file_head_defaults(config.get("picker", {})))
        return cls(kind, window, picker=picker, labels=picker_labels(picker))


def with_file_head_defaults(picker: dict[str, Any]) -> dict[str, Any]:
    """A picker config read from a file, with each head setting whose default has changed set as it was when
    the file was written: a file without ``head.detection`` predates that option and has a detection output."""
    head = picker.get("head", {})
    if "detection" in head:
        return picker
    return {**picker, "head": {**head, "detection": True}}


@dataclass
class LoadedModel:
    """A model file, loaded: its spec, the network in eval mode with the weights, and the file's metadata."""

    spec: ModelSpec
    net: torch.nn.Module
    meta: dict[str, Any]
    path: Path

    @property
    def backbone(self) -> SeisContrastModel:
        """The :class:`~.model.SeisContrastModel` (of a backbone file, or inside a seiscontrast picker)."""
        if isinstance(self.net, SeisContrastModel):
            return self.net
        if hasattr(self.net, "backbone"):
            return self.net.backbone
        raise ValueError(f"{self.path}: a {self.spec.picker.arch} picker has no seiscontrast backbone")


def save_model_file(path: str | Path, spec: ModelSpec, state_dict: dict[str, torch.Tensor],
                    meta: dict[str, Any] | None = None, run_config: dict[str, Any] | None = None) -> Path:
    """Write a model file atomically (temporary file + rename)."""
    payload = {"format": FORMAT, "kind": spec.kind, "spec": config_to_dict(spec),
               "state_dict": {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, "meta": meta or {},
               "config": run_config or {}}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return Path(path)


def read_model_file(path: str | Path) -> tuple[ModelSpec, dict[str, torch.Tensor], dict[str, Any]]:
    """``(spec, state_dict, meta)`` of a model file or Lightning checkpoint, without building the network."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable model file ({type(err).__name__}: {err})") from None
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        kind, state, meta = obj.get("kind"), obj["state_dict"], dict(obj.get("meta", {}))
        spec = obj.get("spec") or ModelSpec.from_run_config(kind, obj.get("config", {}))
    elif isinstance(obj, dict) and "state_dict" in obj and "config" in obj.get("hyper_parameters", {}):
        hp = obj["hyper_parameters"]
        kind, prefix = hp.get("kind", "pretrained"), hp.get("model_prefix", "model.")
        state = {k[len(prefix):]: v for k, v in obj["state_dict"].items() if k.startswith(prefix)}
        spec, meta = ModelSpec.from_run_config(kind, hp["config"]), {"global_step": obj.get("global_step")}
    else:
        raise ValueError(f"{path}: not a seiscontrast model file or Lightning checkpoint")
    if isinstance(spec, dict):
        if spec.get("picker") is not None:
            spec = {**spec, "picker": with_file_head_defaults(spec["picker"])}
        spec = config_from_dict(ModelSpec, spec)
    return spec, state, meta


def write_thresholds(path: str | Path, thresholds: dict[str, float], source: str,
                     out: str | Path | None = None) -> Path:
    """Store the P/S probability thresholds a picker file picks at by default (``meta["thresholds"]``, with
    ``meta["thresholds_source"]`` saying how they were chosen) in ``out`` (default: in place)."""
    path = Path(path)
    spec, _, _ = read_model_file(path)
    if spec.kind != "picker":
        raise ValueError(f"{path} is a {spec.kind} model; thresholds belong to a fine-tuned picker")
    bad = {p: t for p, t in thresholds.items() if p not in ("P", "S") or not 0 < t <= 1}
    if bad:
        raise ValueError(f"thresholds must be P/S probabilities in (0, 1], got {bad}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if obj.get("format") != FORMAT:
        raise ValueError(f"{path}: thresholds are stored in seiscontrast picker files (picker.pt), not checkpoints")
    obj["meta"] = {**obj.get("meta", {}), "thresholds": {p: float(t) for p, t in thresholds.items()},
                   "thresholds_source": source}
    target = Path(out) if out else path
    atomic_write(target, lambda tmp: torch.save(obj, tmp))
    return target


def load_model(path: str | Path, kind: str | None = None, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a model file into its network (eval mode); ``kind`` (``pretrained``/``picker``) refuses other files."""
    path = Path(path)
    spec, state, meta = read_model_file(path)
    if kind is not None and spec.kind != kind:
        need = "a fine-tuned picker (`seiscontrast finetune`)" if kind == "picker" else \
            "a pretrained backbone (`seiscontrast pretrain`)"
        raise ValueError(f"{path} is a {spec.kind} model; this needs {need}")
    net = spec.build()
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path}: the weights do not fit the network its spec describes ({err})") from None
    return LoadedModel(spec, net.to(device).eval(), meta, path)
