"""One module per CLI subcommand: ``add_arguments(parser)`` and ``run(args) -> exit status``."""

from __future__ import annotations

import argparse
from pathlib import Path

#: command-line flags that stand for config keys (flags a command does not have are skipped)
FLAG_KEYS = (("pretrained", "pretrained"), ("init_from", "init_from"), ("fraction", "data.fraction"),
             ("schedule", "schedule.name"), ("max_steps", "optim.max_steps"), ("seed", "seed"))


def configs_and_overrides(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``--config`` files and ``KEY=VALUE`` overrides; ``--config a.yaml k=v`` lets argparse put ``k=v`` among the
    config files, so anything with ``=`` is moved to the overrides."""
    configs = list(getattr(args, "config", None) or [])
    extra = [c for c in configs if "=" in c]
    return [c for c in configs if "=" not in c], extra + list(getattr(args, "overrides", None) or [])


def training_config(args: argparse.Namespace, schema):
    """The config of a training command (``pretrain``, ``finetune``).

    Sources, later ones winning: ``--config`` files (with ``--resume`` and no ``--config``, the run's own resolved
    ``config.yaml``), ``KEY=VALUE`` overrides, then ``--data`` and the flags of :data:`FLAG_KEYS`.
    """
    from ..config import load_config

    configs, overrides = configs_and_overrides(args)
    run_config = Path(args.out) / "config.yaml"
    if args.resume and not configs and run_config.is_file():
        configs = [run_config]
    if getattr(args, "data", None):
        overrides.append(f"data.sources=[{','.join(repr(str(d)) for d in args.data)}]")
    for flag, key in FLAG_KEYS:
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}")
    cfg = load_config(schema, configs, overrides)
    if not cfg.data.sources:
        raise ValueError("no training data: give --data (or data.sources in the config)")
    return cfg
