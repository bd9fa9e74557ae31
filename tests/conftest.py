"""Shared fixtures: small data sets the tests make themselves (never the network, never ../shared)."""

from __future__ import annotations

import os

import numpy as np
import obspy
import pytest
from obspy import Stream, Trace, UTCDateTime

from seiscontrast.data.synthetic import SynthConfig, write_synthetic_dataset

#: a 16-wide model on 1024-sample windows: pretraining/fine-tuning steps take a fraction of a second
TINY_PRETRAIN = ["window.length=1024", "model.encoder.channels=[16,16]", "model.context.dim=16",
                 "model.context.num_heads=2", "model.context.depths=[1,1,1]", "model.quantizer.dim=16",
                 "model.final_dim=16", "optim.warmup_steps=1", "trainer.batch_size=4", "trainer.val_every_n_steps=0"]


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Converted archives go to a temporary cache, never the user's (subprocesses inherit it)."""
    os.environ["SEISCONTRAST_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory):
    """A 240-trace synthetic SeisBench dataset (train/dev/test)."""
    out = tmp_path_factory.mktemp("synth") / "ds"
    write_synthetic_dataset(out, SynthConfig(n_traces=240, seed=1), n_jobs=1, progress=False)
    return out


T_START = UTCDateTime(2021, 5, 3, 12)


def make_stream(start=T_START, seconds=120.0, rate=100.0, channels="HHZ,HHN,HHE",
                network="XX", station="STA", location="", seed=0) -> Stream:
    """Random 3-component noise traces (one per channel code)."""
    rng = np.random.default_rng(seed)
    st = Stream()
    for ch in channels.split(","):
        tr = Trace(rng.standard_normal(int(seconds * rate)).astype(np.float32))
        tr.stats.update(dict(network=network, station=station, location=location, channel=ch,
                             sampling_rate=rate, starttime=start))
        st += tr
    return st


@pytest.fixture
def mseed_file(tmp_path):
    path = tmp_path / "XX.STA.mseed"
    make_stream().write(str(path), format="MSEED")
    return path


__all__ = ["TINY_PRETRAIN", "make_stream", "obspy"]
