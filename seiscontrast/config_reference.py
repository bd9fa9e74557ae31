"""Markdown reference of every config key (name, default, meaning) generated from the dataclasses themselves,
so the documentation cannot drift from the code: ``python -m seiscontrast.config_reference > docs/configuration.md``.
"""

from __future__ import annotations

import dataclasses
import re
import sys

ATTR = re.compile(r"^\s{0,8}([a-z_][a-z0-9_]*(?:\s*/\s*[a-z_][a-z0-9_]*)*):\s*(.*)$")


def attribute_docs(cls) -> dict[str, str]:
    """``{field: description}`` from the ``Attributes:`` section of a dataclass docstring."""
    doc = cls.__doc__ or ""
    if "Attributes:" not in doc:
        return {}
    out: dict[str, str] = {}
    current: list[str] = []
    for line in doc.split("Attributes:", 1)[1].splitlines():
        m = ATTR.match(line)
        if m and not line.strip().startswith(("(", "-")):
            current = [n.strip() for n in m.group(1).split("/")]
            for name in current:
                out[name] = m.group(2).strip()
        elif line.strip() and current:
            for name in current:
                out[name] += " " + line.strip()
    return out


def rows(cls, prefix: str = ""):
    """``(dotted key, default, description)`` for every leaf field of a config dataclass."""
    docs = attribute_docs(cls)
    for f in dataclasses.fields(cls):
        if f.name.startswith("_"):
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        key = f"{prefix}{f.name}"
        optional = _optional_dataclass(cls, f.name) if default is None else None
        if dataclasses.is_dataclass(default):
            yield from rows(type(default), key + ".")
        elif optional is not None:   # off by default; its keys apply once it is set
            yield key, default, docs.get(f.name, "")
            yield from rows(optional, key + ".")
        else:
            yield key, default, docs.get(f.name, "")


def _optional_dataclass(cls, name: str):
    """The dataclass ``X`` of a field annotated ``X | None``, else ``None``."""
    import typing

    hint = typing.get_type_hints(cls).get(name)
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if len(args) == 1 and dataclasses.is_dataclass(args[0]) else None


def reference_markdown() -> str:
    """The whole reference as Markdown."""
    from .finetune import FinetuneConfig
    from .pretrain import PretrainConfig
    from .report import ReportConfig

    parts = ["# Configuration reference\n",
             "Generated from the config dataclasses (`python -m seiscontrast.config_reference`). Every key can be "
             "set in a YAML file passed with `--config` or on the command line as `key=value`.\n"]
    for title, cls, used_by in (("Pretraining", PretrainConfig, "`seiscontrast pretrain`, `configs/pretrain_*.yaml`"),
                                ("Fine-tuning", FinetuneConfig, "`seiscontrast finetune`, `configs/finetune_*.yaml`"),
                                ("Report", ReportConfig, "`seiscontrast report`, `configs/report.yaml`")):
        parts.append(f"\n## {title} ({used_by})\n\n| key | default | meaning |\n| --- | --- | --- |")
        for key, default, doc in rows(cls):
            parts.append(f"| `{key}` | `{default!r}` | {doc} |")
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.stdout.write(reference_markdown())
