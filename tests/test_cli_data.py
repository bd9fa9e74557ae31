import subprocess
import sys

import pandas as pd
from conftest import make_stream


def _run(*args):
    return subprocess.run([sys.executable, "-m", "seiscontrast.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_synth_command(tmp_path):
    res = _run("synth", str(tmp_path / "ds"), "--n-traces", "20", "--seed", "2", "--jobs", "1", "-q")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "ds" / "metadata.csv").is_file() and "wrote 20 traces" in res.stdout
    assert (res.stdout + res.stderr).count("wrote") == 1 and "it/s" not in res.stderr   # no bar outside a terminal
    again = _run("synth", str(tmp_path / "ds"), "--n-traces", "20")
    assert again.returncode == 2 and "already holds" in again.stderr and "Traceback" not in again.stderr
    ringing = _run("synth", str(tmp_path / "ring"), "--n-traces", "4", "--jobs", "1", "-q", "--site-resonance", "1",
                   "--nucleation", "1", "--linear-phase", "1", "--crust", "1", "--distance-range", "250", "400")
    assert ringing.returncode == 0, ringing.stderr
    meta = pd.read_csv(tmp_path / "ring" / "metadata.csv")
    assert (meta.station_site_f0_hz >= 1).all() and "source_nucleation_delay_s" in meta
    assert (meta.trace_digitiser_filter == "linear-phase").all()
    assert meta.path_ep_distance_km.dropna().between(250, 400).all() and "path_p_phase" in meta   # NaN: noise
    assert "station_site_f0_hz" not in pd.read_csv(tmp_path / "ds" / "metadata.csv")


def test_convert_command_reports_bad_files_and_keeps_going(tmp_path):
    arch = tmp_path / "arch"
    arch.mkdir()
    make_stream(seconds=130).write(str(arch / "good.mseed"), format="MSEED")
    (arch / "bad.mseed").write_bytes(b"\x00garbage" * 50)
    res = _run("convert", str(arch), "--out", str(tmp_path / "ds"))
    assert res.returncode == 1
    assert "bad.mseed" in res.stdout + res.stderr and "Traceback" not in res.stderr
    assert "wrote 2 traces" in res.stdout
    output = res.stdout + res.stderr
    assert output.count("wrote") == 1 and "zero-padded" not in output and "Traces converted" not in output


def test_help_keeps_examples_and_shows_defaults():
    pick = _run("pick", "--help").stdout
    assert "\n  seiscontrast pick --example" in pick and "0.25 for" in pick and "model's own" in pick
    assert "(default: 1000)" in _run("synth", "--help").stdout


def test_bad_config_value_is_a_clear_error(tmp_path):
    res = _run("synth", str(tmp_path / "x"), "--n-traces", "0")
    assert res.returncode == 2 and "n_traces" in res.stderr and "Traceback" not in res.stderr
