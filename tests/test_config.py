"""YAML + override configs: merge order, clear errors, shipped configs found by name from any directory."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

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


def test_shipped_configs_are_found_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from seiscontrast.pretrain import PretrainConfig

    cfg = load_config(PretrainConfig, ["pretrain_tiny", "picker_cpu.yaml"])
    assert cfg.model.context.dim == 32 and cfg.model.encoder.strides == [4, 4]
    with pytest.raises(ConfigError, match="pretrain_tiny"):   # the error lists what exists
        load_config(PretrainConfig, "pretrain_tinny")


@pytest.mark.slow
def test_wheel_ships_every_config(tmp_path):
    """A plain ``pip install .`` must carry configs/ (it is the package ``seiscontrast.configs``)."""
    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"   # a copy, so that the build leaves nothing behind in the checkout
    shutil.copytree(root, src, ignore=shutil.ignore_patterns("runs", ".*", "build", "*.egg-info", "__pycache__",
                                                              "tests", "notebooks", "docs", "benchmarks"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(src)], check=True, capture_output=True)
    names = zipfile.ZipFile(next(tmp_path.glob("seiscontrast-*.whl"))).namelist()
    shipped = {Path(n).name for n in names if n.startswith("seiscontrast/configs/")}
    assert shipped == {p.name for p in (root / "configs").glob("*.yaml")}


def test_missing_config_file_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="configs/nope.yaml does not exist"):
        load_config(FinetuneConfig, "configs/nope.yaml")


def test_bad_yaml_value_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim:\n  lr: fast\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(FinetuneConfig, bad)


def test_quiet_logging_keeps_warnings_of_user_code(monkeypatch):
    import warnings

    from seiscontrast.logs import quiet_third_party

    monkeypatch.setattr(warnings, "filters", list(warnings.filters))   # restored after the test
    quiet_third_party()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")   # what a fresh interpreter does for __main__ code
        quiet_third_party()
        warnings.warn("the user's own deprecation", DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["the user's own deprecation"]
