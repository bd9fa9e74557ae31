"""YAML configs mapped onto dataclasses, with ``key.sub=value`` overrides from the command line.

Every experiment is a dataclass tree (see ``pretrain.PretrainConfig``, ``finetune.FinetuneConfig``); a YAML file
in ``configs/`` only lists what differs from the dataclass defaults. OmegaConf does the merging and type checking
so that a typo (``modle.width``) or a wrong type fails loudly with the offending key.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

T = TypeVar("T")

class ConfigError(ValueError):
    """A config file or an override does not fit the config schema."""


def load_config(schema: type[T], paths: str | Path | Sequence[str | Path] | None = None,
                overrides: Sequence[str] = ()) -> T:
    """Build a ``schema`` dataclass from its defaults, YAML file(s) and ``key=value`` overrides.

    Later sources win: defaults < first YAML file < next YAML file < overrides (so a schedule file and a
    model-size file compose instead of being copied into one another). Unknown keys and wrong types raise
    ``ConfigError`` naming the file or override that caused them.
    """
    merged = OmegaConf.structured(schema)
    if paths is None:
        paths = []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    for path in map(find_config, paths):
        try:
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        except OmegaConfBaseException as err:
            raise ConfigError(f"config file {path}: {_short(err)}") from None
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"override(s) {bad} must look like key.subkey=value")
    try:
        merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(f"override {list(overrides)}: {_short(err)}") from None
    except ValueError as err:  # raised by a dataclass __post_init__ check
        raise ConfigError(str(err)) from None


def find_config(path: str | Path) -> Path:
    """A config file: ``path`` itself, else a config shipped with the package, by name (``pretrain_tiny``,
    ``pretrain_tiny.yaml`` or ``configs/pretrain_tiny.yaml`` work from any directory); ``ConfigError`` if none."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_absolute():
        name = path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml"
        if path.parent in (Path("."), Path("configs")):
            shipped = packaged_configs() / name
            if shipped.is_file():
                return shipped
    raise ConfigError(f"config file {path} does not exist" + ("" if path.is_absolute() else
                      f" (looked in {Path.cwd()} and among the shipped configs: {', '.join(shipped_config_names())})"))


def packaged_configs() -> Path:
    """The folder of the configs shipped with the package (``configs/`` of the source tree)."""
    from importlib.resources import files

    try:
        return Path(str(files("seiscontrast.configs")))
    except ModuleNotFoundError:   # running from a source tree that was never installed
        return Path(__file__).resolve().parents[1] / "configs"


def shipped_config_names() -> list[str]:
    """Names accepted by ``--config`` without a path."""
    return sorted(p.stem for p in packaged_configs().glob("*.yaml"))


def config_from_dict(schema: type[T], values: dict[str, Any]) -> T:
    """Rebuild a config dataclass from a plain dict (e.g. the one stored in a checkpoint).

    Keys that a config class lists in ``removed_keys`` (settings of earlier releases) are dropped, so model
    files and checkpoints written before a setting moved still load.
    """
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema),
                                                   OmegaConf.create(_without_removed(schema, values))))
    except OmegaConfBaseException as err:
        raise ConfigError(_short(err)) from None


def _without_removed(schema: Any, values: Any) -> Any:
    if not (dataclasses.is_dataclass(schema) and isinstance(values, dict)):
        return values
    hints = typing.get_type_hints(schema)
    kept = {}
    for key, value in values.items():
        if key in getattr(schema, "removed_keys", ()):
            continue
        nested = [t for t in (hints.get(key), *typing.get_args(hints.get(key))) if dataclasses.is_dataclass(t)]
        kept[key] = _without_removed(nested[0], value) if nested else value
    return kept


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict of a config dataclass (YAML/JSON/checkpoint friendly)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write the fully resolved config as YAML (every key, defaults included)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def _short(err: Exception) -> str:
    # OmegaConf messages carry a multi-line "full_key/object_type" trailer; the first line says it all.
    return str(err).strip().splitlines()[0]
