"""Realistic labelled synthetic 3-component local/regional earthquake records in SeisBench format.

What is modelled (per trace, all random but deterministic for ``(seed, trace index)``):

* **Source**: magnitude ``M`` (uniform by default), seismic moment ``M0 = 10^(1.5 M + 9.1)`` N·m, Brune ω⁻²
  spectrum with stress drop 0.3–30 MPa and corner frequency ``fc = 0.49 β (Δσ/M0)^(1/3)``; P corner frequency
  1.2–1.8 × the S one.
* **Path**: epicentral distance (log-uniform), depth (80 % crustal, 20 % intermediate-depth to 200 km), straight-ray travel times with Vp 5.6–6.8 km/s and
  Vp/Vs 1.65–1.90 (so S−P grows with distance), anelastic attenuation ``exp(-π f t / Q(f))`` with
  ``Q = Q0 f^η`` (Qs < Qp) and site κ 0.01–0.06 s. Amplitudes follow a local-magnitude distance correction.
* **Waveforms**: each phase is a direct pulse plus scattered coda (white noise under a rise/decay envelope),
  both filtered by one *minimum-phase* (causal) response built from source × path × instrument, so no energy
  precedes the labelled onset. Onsets are impulsive (sharp direct pulse, fast rise) or emergent (weak pulse,
  slow rise); P and S codas decay with magnitude- and distance-dependent times. Optionally
  (``nucleation_fraction``) a weak sub-event precedes the main release, and (``site_resonance_fraction``) a
  soft surface layer makes the station ring: every phase is followed by its reverberations in the layer.
  Optionally (``crust_fraction``) the path runs through a crust over the mantle: beyond the crossover distance
  the mantle head waves Pn and Sn arrive first, weaker than the direct Pg and Sg that follow them.
* **Three components**: P along the ray (mostly Z, steep incidence), S as SV/SH with a random polarisation
  (mostly horizontal), codas scattered onto all components; rotated to N/E with a random back-azimuth;
  random radiation pattern (S/P ratio 1.5–10, occasionally P-dominant); random first-motion polarity.
* **Instrument**: broadband (flat velocity), short-period (1–4.5 Hz geophone) or accelerometer (flat
  acceleration, ``HN``), plus the anti-alias filter of an original recording rate of 20, 40, 50, 100 or 200 Hz
  (all traces are stored at 100 Hz, as the models see them): minimum-phase, or optionally
  (``linear_phase_fraction``) linear-phase, ringing before a sharp onset as well as after it.
* **Noise**: coloured background (power law), secondary microseism peak (0.12–0.3 Hz, stronger on the
  horizontals), cultural noise band, instrument self-noise, slow amplitude modulation, and now and then
  noise bursts, spikes, telemetry gaps (zeros), DC offsets/trends and clipping. The SNR spans ~0.3 to >1000.
  Or, with a noise bank (``SynthConfig.noise_bank``), **real noise** recorded by real stations, with the event
  seen through the sensor kind and original rate of that recording (or, ``colocated_accelerometer_fraction``, of
  an accelerometer beside it: the noise differentiated).
* **Traces**: noise-only traces (no picks) and, occasionally, a second event in the same trace
  (``trace_p2_arrival_sample``/``trace_s2_arrival_sample``). Picks are left out where the phase is buried in
  noise (as an analyst would) or falls outside the trace.

What is **not** modelled: layered-earth travel times other than one crust over the mantle (the option above),
depth phases, surface waves and Lg, site
resonances other than one layer's, anisotropy/shear-wave splitting, instrument responses other than the three
above, teleseisms, and timing errors of real picks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import seisbench.data as sbd
from obspy import UTCDateTime
from obspy.signal.rotate import rotate_rt_ne
from scipy.signal import fftconvolve, resample_poly

from ..logs import get_logger, progress_bar

log = get_logger(__name__)


#: range of the microseism / high-frequency noise rms ratio drawn for every sensor (broadband: configurable)
MICROSEISMS = (0.3, 8.0)


@dataclass
class SynthConfig:
    """Synthetic data set parameters (times in s, distances in km, rates in Hz).

    The next three are off by default, so that data sets (and the figures measured on them) stay as they were;
    ``seiscontrast synth --realistic`` and the default model's recipe turn them on (:data:`REALISTIC`).
    ``accelerometer_fraction`` of the traces are recorded by accelerometers (``HN``).
    ``resample_low_rates``: a trace recorded below ``sampling_rate`` is decimated to its original rate and
    resampled back (polyphase, as ``pick`` and SeisBench do with real low-rate data), so its onsets carry the same
    filter ringing. ``vertical_only_fraction`` of the traces come from vertical-only stations (N and E zero, as ``pick`` fills
    absent components). ``noise_bank``: a file of real noise (:mod:`~seiscontrast.data.noise_bank`); ``real_noise_fraction`` of the
    traces then carry real noise instead of synthetic noise, with the sensor kind and original rate of the
    recording it came from (``trace_noise_source`` says which). ``broadband_microseisms``: range of the ratio
    of microseism (0.1–0.3 Hz) to high-frequency (> 1 Hz) noise rms on broadband stations (log-uniform; other
    sensors keep 0.3–8). Real broadband records have tens: 19 / 38 / 100 (10th / 50th / 90th percentile) on the
    vertical of CX.PB01 before its 100 events in ``seisbench-dummy``. Drawing 3–100 made the recipe's picker
    worse on those events, with or without ``window.highpass`` (model card), so :data:`REALISTIC` leaves it.
    ``nucleation_fraction`` of the events start with a weak sub-event (a nucleation phase, as Ellsworth & Beroza
    1995 observed on many onsets): the source is a copy of itself scaled by 0.05–0.4, followed 0.05–0.5 s later
    (longer for larger events) by the main release; both phases carry it, and the picks stay at the weak onset.
    ``site_resonance_fraction`` of the stations sit on a soft surface layer (:func:`site_reverberations`): each
    phase arrives, then rings at the layer's resonance (S fundamental 1–25 Hz, P higher), so that on a resonant
    site the first swing is often not the largest, as on many real records; the picks stay at the first arrival.
    ``linear_phase_fraction`` of the recordings pass a linear-phase (zero-phase) anti-alias filter, as most
    modern digitisers' FIR decimation filters are, instead of a minimum-phase one: a sharp onset then rings
    *before* the arrival, near the original rate's Nyquist frequency, as on real records; the picks stay at the arrival.
    ``colocated_accelerometer_fraction`` of the real-noise traces whose recording came from a velocity sensor are
    seen by an accelerometer beside it instead: the real noise differentiated to ground acceleration (then scaled
    like any noise), the event through the accelerometer's response. A noise bank cut from broadband and
    short-period records has no accelerometer noise of its own, so without this every accelerometer trace carries
    synthetic noise.
    ``crust_fraction`` of the events lie in a crust 25–45 km thick over a mantle with P speed 7.8–8.3 km/s (one
    layer, as ``obspy.taup`` would trace it): where the mantle head wave is faster than the direct wave (beyond
    about 100–200 km), the record starts with a weak Pn (0.1–0.8 of Pg's amplitude) and a weaker Sn (0.05–0.5 of
    Sg's), each followed by the direct wave, whose times stay as without the crust (``p_onset_range`` places the
    direct P). The labels are the first arrival an analyst would see: the head wave where it stands out of the noise
    and starts inside the trace, the direct wave otherwise (``path_p_phase``/``path_s_phase`` say which).
    Take ``distance_range`` out to regional distances (e.g. 3–400 km) for head waves to be common.
    """

    n_traces: int = 1000
    seed: int = 0
    sampling_rate: float = 100.0
    trace_duration: float = 60.0
    noise_fraction: float = 0.12
    second_event_fraction: float = 0.08
    magnitude_range: list[float] = field(default_factory=lambda: [0.5, 4.5])
    distance_range: list[float] = field(default_factory=lambda: [3.0, 200.0])
    depth_range: list[float] = field(default_factory=lambda: [1.0, 35.0])
    p_onset_range: list[float] = field(default_factory=lambda: [3.0, 40.0])
    split_fractions: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])
    accelerometer_fraction: float = 0.0
    vertical_only_fraction: float = 0.0
    resample_low_rates: bool = False
    noise_bank: str | None = None
    real_noise_fraction: float = 0.7
    broadband_microseisms: list[float] = field(default_factory=lambda: list(MICROSEISMS))
    nucleation_fraction: float = 0.0
    site_resonance_fraction: float = 0.0
    linear_phase_fraction: float = 0.0
    colocated_accelerometer_fraction: float = 0.0
    crust_fraction: float = 0.0

    def __post_init__(self):
        if self.n_traces < 1:
            raise ValueError(f"n_traces must be >= 1, got {self.n_traces}")
        if abs(sum(self.split_fractions) - 1) > 1e-6 or len(self.split_fractions) != 3:
            raise ValueError(f"split_fractions must be three numbers summing to 1, got {self.split_fractions}")
        for name in ("accelerometer_fraction", "vertical_only_fraction", "real_noise_fraction", "noise_fraction",
                     "nucleation_fraction", "site_resonance_fraction", "linear_phase_fraction",
                     "colocated_accelerometer_fraction", "crust_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        lo, hi = self.broadband_microseisms
        if not 0 < lo <= hi:
            raise ValueError(f"broadband_microseisms must be a range 0 < low <= high, got {self.broadband_microseisms}")


#: the settings ``seiscontrast synth --realistic`` (and the default model's recipe) apply to a :class:`SynthConfig`
REALISTIC = {"accelerometer_fraction": 0.1, "vertical_only_fraction": 0.05, "resample_low_rates": True}

# ----------------------------------------------------------------------------------------------- spectra
def _loguniform(rng, lo, hi):
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def minimum_phase(amplitude: np.ndarray, n_fft: int) -> np.ndarray:
    """Complex rfft spectrum of the minimum-phase filter with the given amplitude spectrum.

    Homomorphic (real-cepstrum) construction: fold the cepstrum of ``log|H|`` onto positive quefrencies.
    """
    log_amp = np.log(amplitude + amplitude.max() * 1e-6)
    cep = np.fft.irfft(log_amp, n_fft)
    fold = np.zeros(n_fft)
    fold[0] = 1.0
    fold[1: n_fft // 2] = 2.0
    fold[n_fft // 2] = 1.0
    return np.exp(np.fft.rfft(cep * fold, n_fft))


def causal_filter(amplitude_fn, fs: float, length: int, n_fft: int = 1 << 14) -> np.ndarray:
    """Impulse response (``length`` samples, exactly causal) with amplitude spectrum ``amplitude_fn(freqs)``.

    The minimum-phase response is built on a fine frequency grid, then only its first ``length`` samples are
    kept (tapered), so any cepstral wrap-around is cut off and nothing can precede the onset.
    """
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    h = np.fft.irfft(minimum_phase(amplitude_fn(freqs), n_fft), n_fft)[:length]
    taper = max(2, length // 10)
    h[-taper:] *= np.hanning(2 * taper)[taper:]
    return h


def instrument_amplitude(freqs: np.ndarray, inst: dict, fs: float, anti_alias: bool = True) -> np.ndarray:
    """Amplitude response to ground velocity: flat (broadband), a damped geophone (short-period), or rising with
    frequency (accelerometer: flat to acceleration); times the digitiser's anti-alias filter unless
    ``anti_alias`` is false (a linear-phase digitiser: :func:`anti_alias_amplitude` is applied separately)."""
    resp = np.ones_like(freqs)
    if inst["type"] == "accelerometer":
        resp = freqs.copy()
    elif inst["type"] == "short-period":
        x = freqs / inst["f0"]
        resp = x**2 / np.sqrt((1 - x**2) ** 2 + (2 * 0.7 * x) ** 2)
    else:  # broadband: roll-off below ~1/120 Hz
        x = freqs * 120.0
        resp = x**2 / np.sqrt((1 - x**2) ** 2 + (2 * 0.707 * x) ** 2)
    return resp * anti_alias_amplitude(freqs, inst, fs) if anti_alias else resp


def anti_alias_amplitude(freqs: np.ndarray, inst: dict, fs: float) -> np.ndarray:
    """The digitiser's anti-alias filter at the original recording rate (data recorded at 20 Hz and resampled to
    100 Hz have nothing above ~8 Hz)."""
    return 1 / (1 + (freqs / (0.42 * min(fs, inst.get("rate", fs)))) ** 12)


def zero_phase(x: np.ndarray, amplitude_fn, fs: float, pad: int) -> np.ndarray:
    """``x`` (last axis) through the zero-phase filter with amplitude spectrum ``amplitude_fn(freqs)``: a
    symmetric response, so a sharp filter rings before an onset as after it. The FFT length leaves room for ``pad``
    samples of ringing past either end of ``x``, so nothing wraps around into it."""
    n = x.shape[-1]
    n_fft = 1 << int(math.ceil(math.log2(n + 2 * pad)))
    spec = np.fft.rfft(x, n_fft, axis=-1) * amplitude_fn(np.fft.rfftfreq(n_fft, 1 / fs))
    return np.fft.irfft(spec, n_fft, axis=-1)[..., :n]


def phase_amplitude(freqs, fc, travel_time, q0, eta, kappa):
    """Velocity source spectrum (Brune ω⁻² times f) with anelastic and site attenuation."""
    f = np.maximum(freqs, 1e-3)
    source = f / (1 + (f / fc) ** 2)
    return source * np.exp(-np.pi * f ** (1 - eta) * travel_time / q0) * np.exp(-np.pi * kappa * f)


# ---------------------------------------------------------------------------------------------- events
def draw_event(rng: np.random.Generator, cfg: SynthConfig) -> dict:
    """Random source, path and radiation parameters of one earthquake."""
    mag = rng.uniform(*cfg.magnitude_range)
    dist = _loguniform(rng, *cfg.distance_range)
    # most events are crustal; a share are intermediate-depth (subduction zones)
    depth = rng.uniform(*cfg.depth_range) if rng.random() < 0.8 else rng.uniform(cfg.depth_range[1], 200.0)
    hyp = math.hypot(dist, depth)
    vp = rng.uniform(5.6, 6.8)
    vs = vp / rng.uniform(1.65, 1.90)
    m0 = 10 ** (1.5 * mag + 9.1)
    stress = _loguniform(rng, 0.3e6, 30e6)
    fc_s = 0.4906 * vs * 1000 * (stress / m0) ** (1 / 3)
    impulsive = rng.random() < 0.55
    s_over_p = _loguniform(rng, 0.6, 1.5) if rng.random() < 0.07 else _loguniform(rng, 1.5, 10.0)
    # Wood-Anderson-like amplitude (mm) from the local-magnitude distance correction (Hutton & Boore 1987)
    log_amp = mag - 1.11 * math.log10(hyp / 100) - 0.00189 * (hyp - 100) - 3.0
    coda_s = rng.uniform(0.5, 1.5) * (0.5 + 0.2 * (10 ** ((mag + 0.87) / 2)) ** 0.8 + 0.02 * hyp)
    return dict(
        magnitude=mag, distance=dist, depth=depth, hyp=hyp, vp=vp, vs=vs, fc_s=fc_s,
        fc_p=fc_s * rng.uniform(1.2, 1.8), q0_p=_loguniform(rng, 150, 900), eta=rng.uniform(0.2, 0.7),
        back_azimuth=rng.uniform(0, 360), inc_p=math.radians(rng.uniform(5, 35)),
        inc_s=math.radians(rng.uniform(5, 30)), psi=rng.uniform(0, 2 * math.pi),
        polarity=rng.choice([-1.0, 1.0]), impulsive=impulsive, s_over_p=s_over_p,
        amplitude=10**log_amp, coda_s=coda_s, coda_p=coda_s * rng.uniform(0.3, 0.9),
        rise_p=rng.uniform(0.01, 0.08) if impulsive else rng.uniform(0.3, 2.0),
        rise_s=rng.uniform(0.05, 0.3) if impulsive else rng.uniform(0.4, 2.5),
        direct_p=rng.uniform(2.0, 6.0) if impulsive else rng.uniform(0.0, 0.6),
        direct_s=rng.uniform(1.0, 4.0) if impulsive else rng.uniform(0.0, 0.8),
    )


def draw_crust(rng: np.random.Generator) -> dict:
    """A crust over the mantle and the head waves' amplitudes relative to the direct waves (:func:`head_waves`)."""
    vpn = rng.uniform(7.8, 8.3)
    return {"thickness": rng.uniform(25.0, 45.0), "vp_mantle": vpn, "vs_mantle": vpn / rng.uniform(1.70, 1.80),
            "ratio_P": _loguniform(rng, 0.1, 0.8), "ratio_S": _loguniform(rng, 0.05, 0.5)}


def head_waves(ev: dict, crust: dict) -> dict | None:
    """Pn and Sn of the event ``ev`` in ``crust`` (:func:`draw_crust`): for each phase whose head wave arrives
    before the direct wave, ``(amplitude ratio to the direct wave, lead in s)`` (else ``None``), and the travel
    times ``t_P``, ``t_S`` of the first arrivals. ``None`` for a source below the crust or where both direct waves
    arrive first."""
    h, z = crust["thickness"], ev["depth"]
    if z >= h:
        return None
    out = {}
    for phase, v, v_mantle in (("P", ev["vp"], crust["vp_mantle"]), ("S", ev["vs"], crust["vs_mantle"])):
        direct = ev["hyp"] / v
        # down to the Moho and back up at the critical angle, along the Moho in between
        head = ev["distance"] / v_mantle + (2 * h - z) * math.sqrt(1 / v**2 - 1 / v_mantle**2)
        critical = (2 * h - z) * v / math.sqrt(v_mantle**2 - v**2)   # the nearest distance a head wave reaches
        first = ev["distance"] > critical and head < direct
        out[phase] = (crust[f"ratio_{phase}"], direct - head) if first else None
        out[f"t_{phase}"] = head if first else direct
    return out if out["P"] or out["S"] else None


def _phase_excitation(rng, n, onset, fs, direct, weights, rise, decay, nucleation=None):
    """[3, n] excitation: a direct spike with per-component ``direct`` weights plus enveloped coda noise.

    ``nucleation = (ratio, delay_s)``: the excitation ``ratio`` times from the onset, then in full from
    ``delay_s`` later (a weak sub-event before the main release)."""
    exc = np.zeros((3, n))
    if onset >= n:
        return exc
    t = np.arange(n - onset) / fs
    env = (1 - np.exp(-t / rise)) * np.exp(-t / decay)
    exc[:, onset:] = rng.standard_normal((3, n - onset)) * env * np.asarray(weights)[:, None]
    exc[:, onset] += np.asarray(direct)
    if nucleation is not None:
        ratio, delay = nucleation
        exc = delayed_copies(exc, [(0, ratio), (max(1, int(round(delay * fs))), 1.0)])
    return exc


def delayed_copies(x: np.ndarray, copies) -> np.ndarray:
    """``Σ gain · x(t − delay)`` over ``(delay in samples, gain)`` pairs, along the last axis; what is shifted
    beyond either end is dropped (a negative delay is a copy that arrives earlier). Nothing precedes the first
    arrival of ``x`` when every delay is >= 0."""
    out = np.zeros_like(x)
    n = x.shape[-1]
    for delay, gain in copies:
        if 0 <= delay < n:
            out[..., delay:] += gain * x[..., :n - delay]
        elif -n < delay < 0:
            out[..., :n + delay] += gain * x[..., -delay:]
    return out


def site_reverberations(x: np.ndarray, delay: int, reflection: float) -> np.ndarray:
    """``x`` seen through a soft layer over stiffer rock: ``Σ (−reflection)^k x(t − k·delay)``.

    Each wave that enters the layer is reflected back and forth (free surface above, the stiffer rock below, which
    reflects with ``reflection`` < 1 including the losses), so every arrival is followed by copies ``delay`` samples
    (the layer's two-way time) apart with alternating sign: the layer rings at ``fs / (2 delay)``, and where the
    incoming wave has energy there the motion grows over the first cycles. Nothing precedes an arrival."""
    bounces = int(np.ceil(np.log(0.01) / np.log(reflection)))   # until a copy is weaker than 1 %
    return delayed_copies(x, [(k * delay, (-reflection) ** k) for k in range(bounces)])


def draw_site(rng: np.random.Generator, fs: float) -> dict:
    """A soft surface layer: its two-way times for S and P (samples) and its base's reflection coefficient."""
    s_two_way = _loguniform(rng, 0.02, 0.5)           # S fundamental 1/(2·two-way time): 1-25 Hz
    p_two_way = s_two_way / rng.uniform(1.7, 3.0)     # Vp/Vs of soft sediments
    return {"s_delay": max(1, round(s_two_way * fs)), "p_delay": max(1, round(p_two_way * fs)),
            "reflection": rng.uniform(0.4, 0.85), "f0_s": 1 / (2 * s_two_way)}


def event_signal(rng, ev: dict, n: int, fs: float, p_onset: int, inst: dict, kappa: float, site: dict | None = None
                 ) -> tuple[np.ndarray, int, float, float]:
    """Clean Z/N/E velocity signal of one event: ``(signal, s_onset, p_peak, s_peak)``."""
    tp, ts = ev["hyp"] / ev["vp"], ev["hyp"] / ev["vs"]
    heads = ev.get("head_waves") or {}
    s_onset = p_onset + int(round((ts - tp) * fs))   # the direct waves; a head wave arrives before its own
    h_len = int(20 * fs)

    linear = inst.get("linear_phase", False)

    def filtered(exc, fc, t_travel, q0):
        def amp(freqs):
            return (phase_amplitude(freqs, fc, t_travel, q0, ev["eta"], kappa)
                    * instrument_amplitude(freqs, inst, fs, anti_alias=not linear))
        out = fftconvolve(exc, causal_filter(amp, fs, h_len)[None, :], axes=-1)[:, :n]
        # a linear-phase digitiser filter (most modern ones) is symmetric: its ringing precedes the onset
        return zero_phase(out, lambda f: anti_alias_amplitude(f, inst, fs), fs, int(2 * fs)) if linear else out

    ci, si = math.cos(ev["inc_p"]), math.sin(ev["inc_p"])
    d = ev["direct_p"] * ev["polarity"]
    p_exc = _phase_excitation(rng, n, p_onset, fs, [d * ci, d * si, d * rng.uniform(-0.1, 0.1)],
                              [1.0, rng.uniform(0.4, 0.9), rng.uniform(0.2, 0.6)], ev["rise_p"], ev["coda_p"],
                              ev.get("nucleation"))
    if heads.get("P"):     # the head wave, ahead of the direct wave (the same source seen twice)
        p_exc = delayed_copies(p_exc, [(-int(round(heads["P"][1] * fs)), heads["P"][0]), (0, 1.0)])
    if site is not None:   # a linear filter: on the excitation it is the same as on the filtered signal
        p_exc = site_reverberations(p_exc, site["p_delay"], site["reflection"])
    p_zrt = filtered(p_exc, ev["fc_p"], tp, ev["q0_p"])
    cs, ss = math.cos(ev["inc_s"]), math.sin(ev["inc_s"])
    sv, sh = math.cos(ev["psi"]), math.sin(ev["psi"])
    d = ev["direct_s"]
    s_exc = _phase_excitation(rng, n, s_onset, fs, [-d * sv * ss, d * sv * cs, d * sh],
                              [rng.uniform(0.3, 0.7), rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)],
                              ev["rise_s"], ev["coda_s"], ev.get("nucleation"))
    if heads.get("S"):
        s_exc = delayed_copies(s_exc, [(-int(round(heads["S"][1] * fs)), heads["S"][0]), (0, 1.0)])
    if site is not None:
        s_exc = site_reverberations(s_exc, site["s_delay"], site["reflection"])
    s_zrt = filtered(s_exc, ev["fc_s"], ts, ev["q0_p"] * rng.uniform(0.5, 0.8))
    p_peak = np.abs(p_zrt).max() or 1.0
    s_peak = np.abs(s_zrt).max() or 1.0
    # amplitude: S peak = magnitude amplitude, P peak = S peak / radiation ratio
    zrt = p_zrt * (ev["amplitude"] / ev["s_over_p"] / p_peak) + s_zrt * (ev["amplitude"] / s_peak)
    n_, e_ = rotate_rt_ne(zrt[1], zrt[2], ev["back_azimuth"])
    sig = np.stack([zrt[0], n_, e_])
    return sig, s_onset, ev["amplitude"] / ev["s_over_p"], ev["amplitude"]


# ------------------------------------------------------------------------------------------------ noise
def _band(freqs, centre, width_decades):
    with np.errstate(divide="ignore"):
        return np.exp(-0.5 * ((np.log10(np.maximum(freqs, 1e-4)) - math.log10(centre)) / width_decades) ** 2)


def station_noise(rng, n: int, fs: float, inst: dict, hf_rms: float, microseisms=MICROSEISMS) -> np.ndarray:
    """[3, n] realistic seismic noise whose rms above 1 Hz is ``hf_rms``, with microseisms ``microseisms``
    (log-uniform range) times as strong."""
    n_fft = 1 << int(math.ceil(math.log2(n)))
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    f = np.maximum(freqs, 1e-3)
    inst_amp = instrument_amplitude(freqs, inst, fs)
    beta = rng.uniform(0.0, 1.3)
    background = f ** (-beta)
    cultural = _loguniform(rng, 0.05, 3.0) * _band(freqs, rng.uniform(2, 15), rng.uniform(0.1, 0.35))
    white = _loguniform(rng, 0.01, 0.3)
    hf = (background / np.sqrt(np.mean(background[freqs > 1] ** 2)) + cultural + white) * inst_amp
    micro = _band(freqs, rng.uniform(0.12, 0.3), 0.15) * inst_amp
    hf_level = np.sqrt(np.mean(hf[freqs > 1] ** 2))
    micro_ratio = _loguniform(rng, *microseisms)
    out = np.empty((3, n))
    for c in range(3):
        tilt = 1.0 if c == 0 else rng.uniform(1.0, 3.0)  # horizontals are noisier at long periods
        spec = hf / hf_level + micro * micro_ratio * tilt * (hf_level / max(np.sqrt(np.mean(micro[freqs > 0.05] ** 2)), 1e-12)) / hf_level
        phase = np.exp(2j * np.pi * rng.random(len(freqs)))
        x = np.fft.irfft(spec * phase, n_fft)[:n]
        out[c] = x
    scale_to_hf_rms(out, fs, hf_rms)
    # slow amplitude modulation (non-stationary noise)
    t = np.arange(n) / fs
    out *= 1 + 0.25 * np.sin(2 * np.pi * t / rng.uniform(20, 120) + rng.uniform(0, 2 * np.pi))
    return out


def scale_to_hf_rms(x: np.ndarray, fs: float, hf_rms: float) -> np.ndarray:
    """Scale ``[3, n]`` noise in place so that its rms above 1 Hz on the Z component is ``hf_rms``."""
    n = x.shape[1]
    n_fft = 1 << int(math.ceil(math.log2(n)))
    freqs = np.fft.rfftfreq(n_fft, 1 / fs)
    z_hf = np.fft.irfft(np.fft.rfft(x[0], n_fft) * (freqs > 1), n_fft)[:n]
    x *= hf_rms / max(z_hf.std(), 1e-20)
    return x


@functools.lru_cache(maxsize=4)
def _noise_bank(path: str):
    from .noise_bank import NoiseBank

    return NoiseBank(path)


def real_noise(rng, cfg: SynthConfig, n: int, hf_rms: float) -> tuple[np.ndarray, dict, str]:
    """``[3, n]`` real noise from the bank scaled to ``hf_rms``, the instrument of its recording and its name."""
    noise, seg = _noise_bank(cfg.noise_bank).draw(rng, n, cfg.sampling_rate)
    inst = {"type": seg.kind, "rate": seg.sampling_rate}
    if seg.kind == "short-period":
        inst["f0"] = float(rng.choice([1.0, 2.0, 4.5]))
    return scale_to_hf_rms(noise, cfg.sampling_rate, hf_rms), inst, f"{Path(seg.source).name}:{seg.station}.{seg.channel}"


def as_acceleration(noise: np.ndarray, fs: float, hf_rms: float) -> np.ndarray:
    """Velocity noise ``[3, n]`` as an accelerometer beside the sensor records it: its time derivative (central
    differences, zero-phase), scaled to ``hf_rms`` above 1 Hz like all noise."""
    return scale_to_hf_rms(np.gradient(noise, 1 / fs, axis=-1), fs, hf_rms)


CHANNELS = {"short-period": "EH", "broadband": "HH", "accelerometer": "HN"}


def add_artefacts(rng, x: np.ndarray, fs: float, hf_rms: float) -> list[str]:
    """Bursts, spikes, gaps, offsets, trends and clipping, each now and then. Returns what was added."""
    n = x.shape[1]
    added = []
    if rng.random() < 0.15:  # cultural/noise bursts: band-limited, can mimic onsets
        for _ in range(rng.integers(1, 4)):
            length = int(rng.uniform(0.3, 5) * fs)
            i0 = int(rng.integers(0, max(1, n - length)))
            burst = rng.standard_normal((3, length)) * np.hanning(length) * hf_rms * _loguniform(rng, 1, 8)
            burst *= np.array([1.0, rng.uniform(0.3, 1.5), rng.uniform(0.3, 1.5)])[:, None]
            x[:, i0:i0 + length] += burst
        added.append("bursts")
    if rng.random() < 0.03:
        for _ in range(rng.integers(1, 6)):
            x[rng.integers(0, 3), rng.integers(0, n)] += rng.choice([-1, 1]) * hf_rms * _loguniform(rng, 10, 300)
        added.append("spikes")
    if rng.random() < 0.03:
        length = int(rng.uniform(0.5, 8) * fs)
        i0 = int(rng.integers(0, max(1, n - length)))
        x[:, i0:i0 + length] = 0.0
        added.append("gap")
    x += (rng.standard_normal((3, 1)) * hf_rms * _loguniform(rng, 0.1, 100))  # DC offset (removed by demean)
    if rng.random() < 0.1:
        x += np.linspace(0, 1, n)[None, :] * rng.standard_normal((3, 1)) * hf_rms * 20
        added.append("trend")
    return added


# ------------------------------------------------------------------------------------------------ traces
def synthesize_trace(cfg: SynthConfig, index: int, return_parts: bool = False):
    """One labelled trace: ``(data [3, n] float32 Z/N/E, metadata dict)``.

    With ``return_parts`` the clean event signal and the noise are returned as well (for tests):
    ``(data, metadata, signal, noise)``.
    """
    rng = np.random.default_rng([cfg.seed, index])
    fs = cfg.sampling_rate
    n = int(round(cfg.trace_duration * fs))
    u = rng.random()   # one draw for the kind, so the random stream does not depend on the shares
    inst = ({"type": "short-period", "f0": float(rng.choice([1.0, 2.0, 4.5]))} if u < 0.3
            else {"type": "accelerometer"} if u < 0.3 + cfg.accelerometer_fraction else {"type": "broadband"})
    inst["rate"] = float(rng.choice([100.0, 200.0, 50.0, 40.0, 20.0], p=[0.5, 0.1, 0.1, 0.15, 0.15]))
    kappa = rng.uniform(0.01, 0.06)
    hf_rms = _loguniform(rng, 10**-3.4, 10**-1.2)
    noise_source = "synthetic"
    if cfg.noise_bank and rng.random() < cfg.real_noise_fraction:
        noise, inst, noise_source = real_noise(rng, cfg, n, hf_rms)
        if (inst["type"] != "accelerometer"    # its own stream: every other draw unchanged
                and np.random.default_rng([cfg.seed, index, 4]).random() < cfg.colocated_accelerometer_fraction):
            noise, inst = as_acceleration(noise, fs, hf_rms), {"type": "accelerometer", "rate": inst["rate"]}
            noise_source += " as acceleration"
    else:
        noise = station_noise(rng, n, fs, inst, hf_rms,
                              cfg.broadband_microseisms if inst["type"] == "broadband" else MICROSEISMS)
    signal = np.zeros((3, n))
    meta = {
        "trace_name": f"synth_{index:07d}",
        "trace_start_time": str(UTCDateTime(2020, 1, 1) + index * 120.0),
        "trace_sampling_rate_hz": fs,
        "station_network_code": "SY",
        "station_code": f"S{int(rng.integers(0, 64)):03d}",
        "station_location_code": "",
        "trace_channel": CHANNELS[inst["type"]],
        "station_instrument": inst["type"],
        "trace_noise_source": noise_source,
        "trace_category": "noise",
        "trace_noise_rms": hf_rms,
        "trace_original_rate_hz": inst["rate"],
    }
    events = []
    if rng.random() >= cfg.noise_fraction:
        events.append(("", int(rng.uniform(*cfg.p_onset_range) * fs)))
        if rng.random() < cfg.second_event_fraction:
            events.append(("2", int(rng.uniform(0.0, cfg.trace_duration - 2.0) * fs)))
    nucleation_rng = np.random.default_rng([cfg.seed, index, 1])   # its own stream: every other draw unchanged
    site_rng = np.random.default_rng([cfg.seed, index, 2])         # the same for the site
    crust_rng = np.random.default_rng([cfg.seed, index, 5])        # and for the crust
    if np.random.default_rng([cfg.seed, index, 3]).random() < cfg.linear_phase_fraction:
        inst = {**inst, "linear_phase": True}
    if cfg.linear_phase_fraction:
        meta["trace_digitiser_filter"] = "linear-phase" if inst.get("linear_phase") else "minimum-phase"
    site = draw_site(site_rng, fs) if site_rng.random() < cfg.site_resonance_fraction else None
    if cfg.site_resonance_fraction:
        meta["station_site_f0_hz"] = site["f0_s"] if site else 0.0
    for suffix, p_onset in events:
        ev = draw_event(rng, cfg)
        if cfg.nucleation_fraction and nucleation_rng.random() < cfg.nucleation_fraction:
            delay = _loguniform(nucleation_rng, 0.05, 0.5) * 10 ** (0.25 * (ev["magnitude"] - 3))
            ev["nucleation"] = (_loguniform(nucleation_rng, 0.05, 0.4), min(delay, 1.0))
        if cfg.crust_fraction and crust_rng.random() < cfg.crust_fraction:
            ev["head_waves"] = head_waves(ev, draw_crust(crust_rng))
        if suffix == "2":  # a second event is usually smaller
            ev["amplitude"] *= _loguniform(rng, 0.05, 2.0)
        sig, s_onset, p_amp, s_amp = event_signal(rng, ev, n, fs, p_onset, inst, kappa, site)
        signal += sig
        snr_p, snr_s = p_amp / hf_rms, s_amp / hf_rms
        # an analyst picks only what stands out of the noise (a weak head wave: the direct wave after it); picks
        # outside the trace do not exist
        heads = ev.get("head_waves") or {}
        p_label, p_phase = first_visible(p_onset, snr_p, 1.5, heads.get("P"), fs, "P")
        s_label, s_phase = first_visible(s_onset, snr_s, 2.0, heads.get("S"), fs, "S")
        s_label = s_label if s_label < n else np.nan
        meta.update({
            f"trace_p{suffix}_arrival_sample": p_label,
            f"trace_s{suffix}_arrival_sample": s_label,
        })
        if suffix == "":
            meta.update({
                "trace_category": "earthquake",
                "trace_p_onset": "impulsive" if ev["impulsive"] else "emergent",
                "trace_snr_p_db": 20 * math.log10(snr_p),
                "trace_snr_s_db": 20 * math.log10(snr_s),
                "source_magnitude": ev["magnitude"],
                "source_magnitude_type": "ML",
                "source_depth_km": ev["depth"],
                "path_ep_distance_km": ev["distance"],
                "path_hyp_distance_km": ev["hyp"],
                "path_back_azimuth_deg": ev["back_azimuth"],
                "path_vp_km_s": ev["vp"],
                "path_vs_km_s": ev["vs"],
                "source_corner_frequency_hz": ev["fc_s"],
            })
            if cfg.crust_fraction:
                meta.update({"path_p_phase": p_phase, "path_s_phase": s_phase})
            if cfg.nucleation_fraction:
                meta["source_nucleation_delay_s"] = ev["nucleation"][1] if "nucleation" in ev else 0.0
    data = signal + noise
    meta["trace_artefacts"] = ",".join(add_artefacts(rng, data, fs, hf_rms))
    if rng.random() < 0.03 and events:  # clipping of a strong record
        level = np.abs(data).max() * rng.uniform(0.3, 0.8)
        data = np.clip(data, -level, level)
        meta["trace_artefacts"] += ",clipped"
    if cfg.resample_low_rates and inst["rate"] < fs:
        data = through_rate(data, inst["rate"], fs)
    counts = _loguniform(rng, 1e5, 1e8)  # digitiser gain: mm-equivalent → counts
    data = (data * counts).astype(np.float32)
    r = rng.random()
    f_train, f_dev, _ = cfg.split_fractions
    meta["split"] = "train" if r < f_train else ("dev" if r < f_train + f_dev else "test")
    meta["trace_components"] = "ZNE"
    parts = [data, (signal * counts).astype(np.float32), (noise * counts).astype(np.float32)]
    if rng.random() < cfg.vertical_only_fraction:   # a vertical-only station: N and E are absent (zeros)
        for x in parts:
            x[1:] = 0.0
        meta["trace_components"] = "Z"
    if return_parts:
        return parts[0], meta, parts[1], parts[2]
    return data, meta


def first_visible(onset: int, snr: float, min_snr: float, head, fs: float, phase: str) -> tuple[float, str]:
    """``(label sample, phase name)`` of the first arrival of ``phase`` that an analyst sees: the head wave
    ``head = (ratio, lead_s)`` ahead of the direct wave at ``onset`` where it stands out of the noise and starts
    inside the trace, else the direct wave; NaN if that does not stand out either."""
    if head is not None:
        start = onset - int(round(head[1] * fs))
        if snr * head[0] >= min_snr and start >= 0:
            return float(start), phase + "n"
    name = phase + "g" if head is not None else phase
    return (float(onset), name) if snr >= min_snr else (np.nan, name)


def through_rate(x: np.ndarray, rate: float, fs: float) -> np.ndarray:
    """``x`` (at ``fs``) as if recorded at ``rate`` and resampled to ``fs``: polyphase down, then up."""
    ratio = Fraction(rate / fs).limit_denominator(1000)
    low = resample_poly(x, ratio.numerator, ratio.denominator, axis=-1)
    return resample_poly(low, ratio.denominator, ratio.numerator, axis=-1)[..., :x.shape[-1]]


def _chunk(args) -> list[tuple[np.ndarray, dict]]:
    cfg, lo, hi = args
    return [synthesize_trace(cfg, i) for i in range(lo, hi)]


def iter_traces(cfg: SynthConfig, n_jobs: int = 1, chunk: int = 64) -> Iterator[tuple[np.ndarray, dict]]:
    """Yield ``(data, metadata)`` for all traces in index order (parallel over ``n_jobs`` processes)."""
    bounds = [(cfg, lo, min(lo + chunk, cfg.n_traces)) for lo in range(0, cfg.n_traces, chunk)]
    if n_jobs <= 1:
        for b in bounds:
            yield from _chunk(b)
        return
    with ProcessPoolExecutor(n_jobs) as pool:
        for traces in pool.map(_chunk, bounds):
            yield from traces


def write_synthetic_dataset(out_dir: str | Path, cfg: SynthConfig, n_jobs: int = 1,
                            progress: bool = True) -> Path:
    """Write ``cfg.n_traces`` synthetic traces as a SeisBench dataset (``metadata.csv`` + ``waveforms.hdf5``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if (out / "metadata.csv").exists() or (out / "waveforms.hdf5").exists():
        raise FileExistsError(f"{out} already holds a data set (metadata.csv/waveforms.hdf5); choose another folder")
    with sbd.WaveformDataWriter(out / "metadata.csv", out / "waveforms.hdf5") as writer:
        writer.data_format = {
            "dimension_order": "CW", "component_order": "ZNE", "sampling_rate": cfg.sampling_rate,
            "measurement": "velocity", "unit": "counts", "instrument_response": "not restituted",
        }
        # the writer's own bar (it makes one on the first trace) is ours: one bar, with a total, on a terminal only
        writer._pbar = progress_bar(total=cfg.n_traces, enabled=progress, desc="synthetic traces", unit="trace")
        for data, meta in iter_traces(cfg, n_jobs):
            writer.add_trace(meta, data)
        writer._pbar.close()
    log.debug("wrote %d synthetic traces to %s", cfg.n_traces, out)
    return out
