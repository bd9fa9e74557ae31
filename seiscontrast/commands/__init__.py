"""One module per CLI subcommand: ``add_arguments(parser)`` and ``run(args) -> exit status``."""

from __future__ import annotations

import argparse


def configs_and_overrides(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """``--config`` files and ``KEY=VALUE`` overrides; ``--config a.yaml k=v`` lets argparse put ``k=v`` among the
    config files, so anything with ``=`` is moved to the overrides."""
    configs = list(getattr(args, "config", None) or [])
    extra = [c for c in configs if "=" in c]
    return [c for c in configs if "=" not in c], extra + list(getattr(args, "overrides", None) or [])
