"""Logging set-up shared by the CLI: one ``seiscontrast`` logger, ``--verbose``/``--quiet`` levels."""

from __future__ import annotations

import logging
import warnings

LOGGER_NAME = "seiscontrast"
THIRD_PARTY = ("lightning", "lightning_fabric", "pytorch_lightning", "seisbench", "torch", "torchmetrics", "obspy",
               "xlstm", "mlstm_kernels", "tensorboard", "google.protobuf", "pkg_resources")


def get_logger(name: str) -> logging.Logger:
    """Module logger below the package logger (``seiscontrast.data.obspy_source`` …)."""
    return logging.getLogger(name if name.startswith(LOGGER_NAME) else f"{LOGGER_NAME}.{name}")


def setup_logging(verbosity: int = 0) -> None:
    """Configure console logging: -1 quiet (warnings), 0 info, 1+ debug.

    Third-party chatter (Lightning banners, SeisBench info lines, Python warnings) is kept out unless verbose.
    """
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s" if verbosity < 1 else
                                           "%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger(LOGGER_NAME)
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    global _VERBOSITY
    _VERBOSITY = verbosity
    quiet_third_party()


_VERBOSITY = 0


def quiet_third_party() -> None:
    """Keep Lightning/SeisBench banners and warnings out unless ``-v``; call again after importing Lightning,
    which resets its own loggers when imported."""
    level = logging.DEBUG if _VERBOSITY >= 1 else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "seisbench",
                 "lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(level)
    if _VERBOSITY < 1:
        # only warnings raised inside these libraries; the user's own code keeps its warnings
        for module in THIRD_PARTY:
            warnings.filterwarnings("ignore", category=UserWarning, module=module)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=module)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")  # torch 2.13 vs Lightning


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs):
    """A tqdm bar on stderr, shown only on a terminal (never in logs of batch jobs) and never with ``-q``."""
    from tqdm import tqdm

    return tqdm(iterable, disable=None if enabled else True, **kwargs)
