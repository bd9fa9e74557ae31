import h5py
import numpy as np
import pytest
from conftest import T_START, TINY_PRETRAIN
from obspy import UTCDateTime

from seiscontrast.config import load_config
from seiscontrast.embed import embed_to_hdf5, embed_windows, load_backbone
from seiscontrast.pretrain import PretrainConfig, run_pretraining


@pytest.fixture(scope="module")
def backbone(synth_dir, tmp_path_factory):
    cfg = load_config(PretrainConfig, None, [*TINY_PRETRAIN, "optim.max_steps=2", f"data.sources=['{synth_dir}']"])
    return run_pretraining(cfg, tmp_path_factory.mktemp("emb") / "run", progress=False)


def test_embed_api_shapes(backbone):
    model, window = load_backbone(backbone)
    frames, pooled = embed_windows(model, np.random.default_rng(0).standard_normal((5, 3, 1024)).astype(np.float32))
    assert frames.shape == (5, 256, 16) and pooled.shape == (5, 16)
    np.testing.assert_allclose(pooled, frames.mean(1), rtol=1e-5)


def test_embed_seisbench_split_to_hdf5(backbone, synth_dir, tmp_path):
    n = embed_to_hdf5(backbone, [str(synth_dir)], tmp_path / "e.h5", split="dev", progress=False)
    with h5py.File(tmp_path / "e.h5") as f:
        assert f["pooled"].shape == (n, 16) and f["frames"].shape == (n, 256, 16)
        assert f.attrs["frame_rate_hz"] == 25.0
        assert f["start_time"][0].decode().startswith("2020-") and f["station"][0].decode().startswith("SY.")


def test_embed_obspy_files(backbone, mseed_file, tmp_path):
    n = embed_to_hdf5(backbone, [str(mseed_file)], tmp_path / "o.h5", frames=False, progress=False)
    with h5py.File(tmp_path / "o.h5") as f:
        assert "frames" not in f and f["pooled"].shape == (n, 16)
        assert f["station"][0].decode() == "XX.STA..HH"
        # 120 s at 100 Hz in 1024-sample windows: 11 whole ones and the zero-padded end
        assert n == 12 and list(f["start_sample"][:]) == [0] * n
        times = [UTCDateTime(t.decode()) for t in f["start_time"][:]]
        assert times[0] == T_START and all(abs(b - a - 10.24) < 1e-6 for a, b in zip(times, times[1:]))


def test_embed_with_the_default_model_like_pick(mseed_file, tmp_path):
    """``--model default`` means the bundled picker's backbone, as it does for ``pick``."""
    model, window = load_backbone("default")
    n = embed_to_hdf5("default", [str(mseed_file)], tmp_path / "d.h5", frames=False, progress=False)
    with h5py.File(tmp_path / "d.h5") as f:
        assert f["pooled"].shape == (n, model.dim) and n > 0
