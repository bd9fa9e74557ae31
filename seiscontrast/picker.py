"""The fine-tuned picker as a SeisBench ``WaveformModel``: ``annotate``/``classify`` work exactly as for PhaseNet.

SeisBench does the sliding windows (``overlap``), stacking of overlapping predictions, resampling, component
mapping (Z/N/E, Z/1/2) and pick extraction (``PickList`` of ``Pick`` with peak time, probability and the
start/end where the probability exceeds the threshold); this class supplies the network, its pre/post
processing and its default arguments. Weights load from our ``picker.pt`` files or SeisBench's json + pt format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import seisbench.models as sbm
import seisbench.util as sbu
import torch

from .config import config_from_dict, config_to_dict
from .data.windows import WindowConfig, highpass
from .heads import PickerConfig, build_picker
from .memory import keep_freed_memory

RESOURCES = Path(__file__).parent / "resources"
DEFAULT_MODEL = RESOURCES / "default_picker.pt"


class SeisContrastPicker(sbm.WaveformModel):
    """Phase picker: per-sample probabilities of the network's phases (P, S), noise (``N``) and event detection
    (``D``) on Z/N/E windows.

    Args:
        config: the model spec as a dict (:class:`~.checkpoints.ModelSpec`: window and picker network); the whole
            fine-tuning config of older files works too, as it has the same two parts.
        net: the network, if already built and loaded (:func:`~.checkpoints.load_model`).
        kwargs: SeisBench's, e.g. ``default_args``: the ``P_threshold``/``S_threshold`` a file carries
            (``seiscontrast calibrate``); without them 0.3.
    """

    _annotate_args = sbm.WaveformModel._annotate_args.copy()
    _annotate_args["*_threshold"] = ("Detection threshold for the provided phase", 0.3)
    _annotate_args["blinding"] = ("Samples at each window edge whose predictions are discarded", (250, 250))
    # 1024 of 4096 samples: every sample outside the 250-sample blinded edges is still seen, at 2/3 of the cost
    # of 50 % overlap; batches of 64 windows keep the peak memory of a station-day low
    _annotate_args["overlap"] = (_annotate_args["overlap"][0], 0.25)
    _annotate_args["batch_size"] = (_annotate_args["batch_size"][0], 64)
    _annotate_args["stacking"] = (_annotate_args["stacking"][0], "max")
    _annotate_args["highpass"] = ("Corner (Hz) of the causal high-pass each trace goes through before picking "
                                  "(the model's window.highpass; 0 or None: off)", None)

    def __init__(self, config: dict, net: torch.nn.Module | None = None, **kwargs):
        window = config_from_dict(WindowConfig, config.get("window", {}))
        citation = ("seiscontrast: self-supervised waveform representation learning for seismology "
                    "(xLSTM U-Net picker). See CITATION.cff.")
        keep_freed_memory()   # batch after batch of activations: reuse freed pages instead of faulting them in again
        if net is None:
            net = build_picker(config_from_dict(PickerConfig, config.get("picker", {})), window.sampling_rate)
        labels = "".join(net.phases) + "ND"   # the network's phases, noise, detection
        super().__init__(citation=citation, in_samples=window.length, output_type="array",
                         pred_sample=(0, window.length), labels=labels, sampling_rate=window.sampling_rate,
                         component_order=window.components, allow_padding=True, **kwargs)
        self.config = config
        self.net = net
        if window.highpass and "highpass" not in self.default_args:
            self.default_args["highpass"] = window.highpass  # as in training (window.highpass)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, N]`` → ``[B, len(labels), N]`` probabilities of each phase, noise and event detection."""
        out = self.net(x)
        probs = torch.cat([out.probs, out.detection], dim=1)
        # a window without signal (all zero, constant, NaN-filled gap) is noise, whatever the network says
        empty = (x - x.mean(-1, keepdim=True)).abs().amax(dim=(1, 2)) == 0
        if empty.any():
            noise = torch.zeros(probs.shape[1], dtype=probs.dtype, device=probs.device)
            noise[len(self.net.phases)] = 1.0
            probs[empty] = noise[:, None]
        return probs

    def annotate_stream_pre(self, stream, argdict: dict[str, Any]):
        """The high-pass (``highpass``, :func:`~.data.windows.highpass`), then SeisBench's resampling."""
        corner = self._argdict_get_with_default(argdict, "highpass")
        if corner:
            for tr in stream:
                try:
                    tr.data = highpass(tr.data, tr.stats.sampling_rate, corner)
                except ValueError as err:
                    raise ValueError(f"{tr.id}: {err}") from None
        return super().annotate_stream_pre(stream, argdict)

    def annotate_batch_pre(self, batch: torch.Tensor, argdict: dict[str, Any]) -> torch.Tensor:
        return torch.nan_to_num(batch)  # the network normalises each window itself

    def annotate_batch_post(self, batch: torch.Tensor, piggyback: Any, argdict: dict[str, Any]) -> torch.Tensor:
        batch = batch.transpose(-1, -2)
        pre, post = argdict.get("blinding", self._annotate_args["blinding"][1])
        if pre > 0:
            batch[:, :pre] = np.nan
        if post > 0:
            batch[:, -post:] = np.nan
        return batch

    def classify_aggregate(self, annotations, argdict) -> sbu.ClassifyOutput:
        """P and S picks from the probability curves (``P_threshold``, ``S_threshold``)."""
        picks = sbu.PickList()
        for phase in self.net.phases:
            picks += self.picks_from_annotations(
                annotations.select(channel=f"{self.__class__.__name__}_{phase}"),
                argdict.get(f"{phase}_threshold", self._annotate_args["*_threshold"][1]), phase)
        return sbu.ClassifyOutput(self.name, picks=sbu.PickList(sorted(picks)))

    def get_model_args(self) -> dict[str, Any]:
        args = super().get_model_args()
        for key in ("citation", "in_samples", "output_type", "default_args", "pred_sample", "labels",
                    "sampling_rate", "component_order", "allow_padding"):
            args.pop(key, None)
        args["config"] = self.config
        return args

    @classmethod
    def from_file(cls, path: str | Path) -> SeisContrastPicker:
        """Load a ``picker.pt`` (ours) or the ``.pt`` of a SeisBench-format pair (``name.json`` + ``name.pt``)."""
        from .checkpoints import load_model

        path = Path(path)
        if path.suffix == ".json" or (path.with_suffix(".json").is_file() and not _is_ours(path)):
            return cls.load(path.with_suffix(""), weights_only=True)
        loaded = load_model(path, kind="picker")
        thresholds = {f"{phase}_threshold": float(t) for phase, t in loaded.meta.get("thresholds", {}).items()}
        return cls(config_to_dict(loaded.spec), net=loaded.net, default_args=thresholds).eval()

    @classmethod
    def default(cls) -> SeisContrastPicker:
        """The bundled CPU-friendly default picker (see docs/model_card.md)."""
        if not DEFAULT_MODEL.is_file():
            raise FileNotFoundError(f"the bundled default model is missing ({DEFAULT_MODEL}); reinstall seiscontrast")
        return cls.from_file(DEFAULT_MODEL)


def _is_ours(path: Path) -> bool:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(obj, dict) and obj.get("format") == "seiscontrast"


def load_picker_model(name_or_path: str | None) -> sbm.WaveformModel:
    """A picker by name: ``None``/``"default"`` (bundled model), a model file (our ``picker.pt`` or a SeisBench
    ``.json``/``.pt`` pair), or ``seisbench:CLASS:WEIGHTS[:VERSION]`` for SeisBench's pretrained pickers
    (e.g. ``seisbench:PhaseNet:instance``; downloaded by SeisBench on first use)."""
    if name_or_path in (None, "default"):
        return SeisContrastPicker.default()
    if str(name_or_path).startswith("seisbench:"):
        return load_seisbench_model(str(name_or_path))
    path = Path(name_or_path)
    if not path.exists() and not path.with_suffix(".json").exists():
        raise FileNotFoundError(f"model {name_or_path!r} not found (give a picker.pt, a SeisBench .json/.pt pair, "
                                "'default', or seisbench:CLASS:WEIGHTS such as seisbench:PhaseNet:instance)")
    return SeisContrastPicker.from_file(path)


#: SeisBench models that do not pick phases (denoisers, event detectors)
NOT_PICKERS = {"DeepDenoiser", "SeisDAE", "CRED", "DPPDetector"}


def seisbench_pickers() -> list[str]:
    """Names of SeisBench's phase-picking model classes (``WaveformModel`` subclasses with P/S outputs)."""
    names = []
    for name in dir(sbm):
        cls = getattr(sbm, name)
        if isinstance(cls, type) and issubclass(cls, sbm.WaveformModel) and cls is not sbm.WaveformModel \
                and hasattr(cls, "classify_aggregate") and not name.startswith("_") and name not in NOT_PICKERS:
            names.append(name)
    return sorted(names)


def parse_seisbench_name(spec: str) -> tuple[str, str, str]:
    """``seisbench:CLASS:WEIGHTS[:VERSION]`` → ``(CLASS, WEIGHTS, VERSION or "latest")``."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[0] != "seisbench" or not all(parts[1:]):
        raise ValueError(f"model {spec!r}: expected seisbench:CLASS:WEIGHTS[:VERSION], e.g. seisbench:PhaseNet:instance")
    return parts[1], parts[2], parts[3] if len(parts) == 4 else "latest"


def load_seisbench_model(spec: str) -> sbm.WaveformModel:
    """One of SeisBench's pretrained pickers (SeisBench downloads the weights on first use into its cache)."""
    import seisbench

    name, weights, version = parse_seisbench_name(spec)
    cls = getattr(sbm, name, None)
    if name not in seisbench_pickers():
        raise ValueError(f"model {spec!r}: {name!r} is not a SeisBench picker; available: "
                         f"{', '.join(seisbench_pickers())}")
    try:
        model = cls.from_pretrained(weights, version_str=version)
    except Exception as err:
        raise ValueError(f"model {spec!r}: SeisBench could not load {name} weights {weights!r} version {version} "
                         f"({type(err).__name__}: {err}). SeisBench downloads pretrained weights on first use, which "
                         f"needs internet access, into {seisbench.cache_model_root}; {name}.list_pretrained() lists "
                         "the weight names.") from None
    return model.eval()


def describe_model(spec: str | None, model: sbm.WaveformModel) -> tuple[str, str]:
    """``(name, version)`` of a picker for outputs and run records: the weights' digest pins our files."""
    import hashlib

    from . import __version__

    if str(spec).startswith("seisbench:"):
        name, weights, version = parse_seisbench_name(str(spec))
        if version == "latest":
            versions = type(model).list_versions(weights, remote=False)
            version = max(versions, key=lambda v: [int(x) if x.isdigit() else x for x in v.split(".")], default="?")
        return f"seisbench:{name}:{weights}", f"v{version}"
    path = DEFAULT_MODEL if spec in (None, "default") else Path(spec)
    files = [path] if path.is_file() else [path.with_suffix(".json"), path.with_suffix(".pt")]
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files if f.is_file())).hexdigest()[:12]
    return ("default" if spec in (None, "default") else path.stem), f"{__version__}-{digest}"
