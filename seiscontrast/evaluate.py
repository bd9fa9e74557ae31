"""Evaluation following the SeisBench pick-benchmark protocol (Münchmeyer et al., 2022), on dev and test.

Target windows are drawn once per split with seed 42, independent of the model:

* **task 1 — event detection**: one window per trace (around its first pick for events, anywhere for noise);
  score = maximum event probability in the window; ROC AUC, and precision/recall/F1 at the threshold that
  maximises F1 on *dev*.
* **task 2 — P vs S identification**: for each labelled pick a 10 s scoring window holding that pick and no other;
  score = max P / (max P + max S) there; MCC at the threshold that maximises MCC on *dev*.
* **task 3 — onset regression**: in the same windows, the arg-max of the pick's phase curve; residual
  mean, RMSE, MAE and the share of outliers (|residual| > 0.5 s), for P and S.

The model always sees a full input window (``window.length`` samples) that contains the scoring window, cut by
SeisBench's ``SteeredGenerator``/``SteeredWindow`` from the target table.
Thresholds are chosen on dev only; test numbers are reported, never tuned on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .checkpoints import LoadedModel, load_model
from .data.seisbench_source import P_COLUMNS, S_COLUMNS, open_datasets, split, steered_generator, trace_ids
from .data.windows import WindowConfig
from .logs import get_logger, progress_bar

log = get_logger(__name__)
SEED = 42
SCORE_WINDOW_S = 10.0
OUTLIER_S = 0.5


def _picks(row: pd.Series, columns) -> list[float]:
    return [float(row[c]) for c in columns if c in row and np.isfinite(row[c])]


def make_targets(metadata: pd.DataFrame, window: WindowConfig, seed: int = SEED) -> pd.DataFrame:
    """Evaluation windows for one split (deterministic for a seed): one row per (task, window).

    Each row names its trace (``trace`` index and SeisBench's ``trace_name`` [, ``trace_chunk``, ``trace_dataset``])
    and the input window it asks for (``start_sample``/``end_sample`` in the trace); ``onset`` and ``sub_start``
    (start of the scoring window) count from ``start_sample``.
    """
    rng = np.random.default_rng(seed)
    n, fs = window.length, window.sampling_rate
    sub = int(SCORE_WINDOW_S * fs)
    rows = []
    for i, (_, row) in enumerate(metadata.iterrows()):
        p, s = _picks(row, P_COLUMNS), _picks(row, S_COLUMNS)
        picks = sorted(p + s)
        if picks:  # task 1: the first pick somewhere in the middle 80 % of the window
            first = picks[0]
            start = int(first - rng.uniform(0.1, 0.9) * n)
        else:
            start = int(rng.uniform(0, 1) * max(0, _trace_len(row, fs) - n))
        rows.append(dict(task="detection", trace=i, start=start, label=int(bool(picks)), phase="", onset=np.nan,
                         sub_start=0))
        for phase, onsets in (("P", p), ("S", s)):
            for onset in onsets:
                others = [q for q in picks if q != onset]
                lo, hi = onset - sub + 25, onset - 25               # sub-window starts keeping the pick inside
                ok = [a for a in range(int(lo), int(hi) + 1, 5) if not any(a <= q < a + sub for q in others)]
                if not ok:
                    continue
                a = ok[int(rng.integers(len(ok)))]
                start = int(a + sub / 2 - n / 2 + rng.uniform(-0.3, 0.3) * (n - sub))   # input window around it
                rows.append(dict(task="phase", trace=i, start=start, label=int(phase == "P"), phase=phase,
                                 onset=onset - start, sub_start=a - start))
    targets = pd.DataFrame(rows, columns=["task", "trace", "start", "label", "phase", "onset", "sub_start"])
    ids = pd.DataFrame(trace_ids(metadata, targets.trace.to_numpy()))
    return pd.concat([targets.rename(columns={"start": "start_sample"}).assign(end_sample=targets.start + n),
                      ids], axis=1)


def _trace_len(row, fs) -> int:
    return int(row.get("trace_npts", 60 * fs)) if np.isfinite(row.get("trace_npts", np.nan)) else int(60 * fs)


@torch.no_grad()
def predict_windows(picker: LoadedModel, dataset, targets: pd.DataFrame, batch_size: int = 32,
                    device: str = "cpu", progress: bool = True) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Run the picker on every target window (cut by SeisBench's ``SteeredWindow``).

    Returns the targets as placed (a window asked to start before its trace starts at the trace's start instead;
    ``start_sample``, ``onset`` and ``sub_start`` follow it), ``probs [W, 3, N]`` and ``detection [W, N]``.
    """
    gen = steered_generator(dataset, targets, picker.spec.window)
    loader = torch.utils.data.DataLoader(gen, batch_size=batch_size)
    probs, det, shifts = [], [], []
    for batch in progress_bar(loader, enabled=progress, desc="evaluation windows", unit="batch"):
        out = picker.net(batch["X"].to(device))
        probs.append(out.probs.float().cpu().numpy())
        det.append(out.detection[:, 0].float().cpu().numpy())
        shifts.append(batch["window_borders"][:, 0].numpy())
    shift = np.concatenate(shifts)                    # requested start - actual start
    placed = targets.assign(start_sample=targets.start_sample - shift, end_sample=targets.end_sample - shift,
                            onset=targets.onset + shift, sub_start=targets.sub_start + shift)
    return placed, np.concatenate(probs), np.concatenate(det)


def scores(targets: pd.DataFrame, probs: np.ndarray, det: np.ndarray, fs: float) -> pd.DataFrame:
    """Per-window scores: detection score, P-vs-S score, predicted onset residual (s)."""
    t = targets.copy()
    t["det_score"] = det.max(1)
    sub = int(SCORE_WINDOW_S * fs)
    ps, res = np.full(len(t), np.nan), np.full(len(t), np.nan)
    for k, (_, row) in enumerate(t.iterrows()):
        if row.task != "phase":
            continue
        a = int(row.sub_start)
        seg = probs[k, :, max(0, a):a + sub]
        mp, msv = seg[0].max(), seg[1].max()
        ps[k] = mp / max(mp + msv, 1e-9)
        curve = seg[0] if row.phase == "P" else seg[1]
        res[k] = (max(0, a) + int(np.argmax(curve)) - row.onset) / fs
    t["ps_score"], t["residual_s"] = ps, res
    return t


def _best_threshold(score, label, metric) -> float:
    candidates = np.unique(np.quantile(score, np.linspace(0, 1, 201)))
    values = [metric(label, score >= c) for c in candidates]
    return float(candidates[int(np.nanargmax(values))])


def _binary(y, pred_or_score):
    return torch.as_tensor(np.asarray(pred_or_score, dtype=np.float64)), torch.as_tensor(np.asarray(y).astype(np.int64))


def _f1(y, pred) -> float:
    """F1 of boolean predictions (torchmetrics)."""
    from torchmetrics.functional.classification import binary_f1_score

    return float(binary_f1_score(*_binary(y, pred)))


def _mcc(y, pred) -> float:
    """Matthews correlation of boolean predictions (torchmetrics)."""
    from torchmetrics.functional.classification import binary_matthews_corrcoef

    return float(binary_matthews_corrcoef(*_binary(y, pred)))


def _auc(y, score) -> float:
    """ROC AUC (torchmetrics); NaN when only one class is present."""
    from torchmetrics.functional.classification import binary_auroc

    y = np.asarray(y)
    if not (y == 1).any() or not (y == 0).any():
        return float("nan")
    return float(binary_auroc(*_binary(y, score)))


def metrics(scored: pd.DataFrame, det_threshold: float, ps_threshold: float) -> dict:
    """All benchmark metrics for one split at given thresholds."""
    d = scored[scored.task == "detection"]
    y, s = d.label.to_numpy(), d.det_score.to_numpy()
    pred = s >= det_threshold
    tp = np.sum(pred & (y == 1))
    out = {"det_auc": _auc(y, s), "det_threshold": det_threshold,
           "det_precision": float(tp / max(pred.sum(), 1)), "det_recall": float(tp / max((y == 1).sum(), 1)),
           "det_f1": float(_f1(y, pred)), "n_detection_windows": int(len(d))}
    ph = scored[scored.task == "phase"]
    out.update({"ps_mcc": _mcc(ph.label.to_numpy(), ph.ps_score.to_numpy() >= ps_threshold),
                "ps_threshold": ps_threshold, "n_phase_windows": int(len(ph))})
    for phase in ("P", "S"):
        r = ph[ph.phase == phase].residual_s.to_numpy()
        r = r[np.isfinite(r)]
        inl = r[np.abs(r) <= OUTLIER_S]
        out.update({
            f"{phase}_n": int(len(r)),
            f"{phase}_residual_mean_s": float(r.mean()) if len(r) else float("nan"),
            f"{phase}_rmse_s": float(np.sqrt(np.mean(r**2))) if len(r) else float("nan"),
            f"{phase}_mae_s": float(np.mean(np.abs(r))) if len(r) else float("nan"),
            f"{phase}_inlier_mae_s": float(np.mean(np.abs(inl))) if len(inl) else float("nan"),
            f"{phase}_outlier_fraction": float(np.mean(np.abs(r) > OUTLIER_S)) if len(r) else float("nan"),
        })
    return out


def evaluate(model_path: str | Path, sources: list[str], out_dir: str | Path | None = None,
             batch_size: int = 32, device: str = "cpu", progress: bool = True, plots: bool = True) -> dict:
    """Evaluate a picker on the dev and test splits; writes ``results.json``, ``results.csv`` and plots."""
    picker = load_model(model_path, kind="picker", device=device)
    window = picker.spec.window
    data = open_datasets(sources, window)
    scored = {}
    for name in ("dev", "test"):
        part = split(data, name)
        targets = make_targets(part.metadata, window)
        targets, probs, det = predict_windows(picker, part, targets, batch_size, device, progress)
        scored[name] = scores(targets, probs, det, window.sampling_rate)
        if name == "test" and plots and out_dir is not None:
            from .plots import plot_evaluation

            plot_evaluation(scored[name], probs, steered_generator(part, targets, window), window, Path(out_dir))
    dev = scored["dev"]
    d = dev[dev.task == "detection"]
    det_thr = _best_threshold(d.det_score.to_numpy(), d.label.to_numpy(), _f1)
    ph = dev[dev.task == "phase"]
    ps_thr = _best_threshold(ph.ps_score.to_numpy(), ph.label.to_numpy(), _mcc) if len(ph) else 0.5
    results = {"model": str(model_path), "data": list(map(str, sources)),
               "dev": metrics(dev, det_thr, ps_thr), "test": metrics(scored["test"], det_thr, ps_thr)}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        pd.DataFrame([{"split": k, **v} for k, v in results.items() if k in ("dev", "test")]).to_csv(
            out / "results.csv", index=False)
        pd.concat([v.assign(split=k) for k, v in scored.items()]).to_csv(out / "windows.csv", index=False)
    return results
