"""Logging set-up shared by the CLI: one ``seiscontrast`` logger, ``--verbose``/``--quiet`` levels."""

from __future__ import annotations

import logging
import warnings

LOGGER_NAME = "seiscontrast"


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
    quiet_level = logging.DEBUG if verbosity >= 1 else logging.WARNING
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "seisbench"):
        logging.getLogger(name).setLevel(quiet_level)
    if verbosity < 1:
        warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
