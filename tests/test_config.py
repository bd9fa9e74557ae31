"""YAML + override configs: merge order, clear errors, project configs found from any working directory."""

import pytest

from seiscontrast.config import ConfigError, load_config
from seiscontrast.finetune import FinetuneConfig


def test_later_sources_win(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("optim:\n  lr: 0.01\n  max_steps: 7\n")
    b.write_text("optim:\n  lr: 0.02\n")
    cfg = load_config(FinetuneConfig, [a, b], ["optim.max_steps=9"])
    assert (cfg.optim.lr, cfg.optim.max_steps) == (0.02, 9)


def test_project_configs_are_found_outside_the_checkout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # e.g. a notebook running in notebooks/
    cfg = load_config(FinetuneConfig, "configs/finetune_frozen.yaml")
    assert cfg.schedule.name == "frozen"


def test_missing_config_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="configs/nope.yaml does not exist"):
        load_config(FinetuneConfig, "configs/nope.yaml")


def test_bad_yaml_value_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: fast\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(FinetuneConfig, bad)
