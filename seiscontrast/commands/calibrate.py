"""Set the P and S probability thresholds a picker file picks at by default.

With ``--data``, every trace of a labelled SeisBench-format folder's split (dev by default) is picked whole as
the pick-benchmark scores do (SeisBench ``annotate``), and each phase gets the threshold with the best pick F1
within ``--tolerance`` of the reference onsets; ``--p-threshold``/``--s-threshold`` set them by hand instead
(e.g. the best ones ``seiscontrast score-picks --thresholds`` found on your own catalogue). The file keeps its
weights; ``seiscontrast pick``, ``score-picks`` and SeisBench's ``classify`` then use these thresholds unless
given others.
"""

from __future__ import annotations

import argparse

from ..pick_metrics import THRESHOLDS


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="picker.pt from `seiscontrast finetune`")
    p.add_argument("--data", help="labelled SeisBench-format folder or SeisBench dataset name (e.g. ETHZ); its "
                   "picks, or TauP arrivals from its source and station coordinates, are the reference")
    p.add_argument("--split", default="dev", help="split of --data to choose on (default dev; 'all': every trace)")
    p.add_argument("--tolerance", type=float, default=0.5, help="a pick within this many seconds of its reference "
                   "counts (default 0.5)")
    p.add_argument("--thresholds", type=float, nargs="+", default=list(THRESHOLDS), metavar="T",
                   help=f"candidates (default {' '.join(map(str, THRESHOLDS))})")
    p.add_argument("--p-threshold", type=float, help="set the P threshold to this (instead of choosing it)")
    p.add_argument("--s-threshold", type=float, help="set the S threshold to this (instead of choosing it)")
    p.add_argument("--out", help="write the calibrated model here (default: update MODEL in place)")
    p.add_argument("--batch-size", type=int, default=64)


def run(args: argparse.Namespace) -> int:
    from ..checkpoints import write_thresholds
    from ..pick_metrics import annotate, best_thresholds, reference_traces, threshold_table
    from ..picker import SeisContrastPicker

    given = {p: t for p, t in (("P", args.p_threshold), ("S", args.s_threshold)) if t is not None}
    if not args.data and len(given) < 2:
        raise ValueError("give --data to choose the thresholds, or both --p-threshold and --s-threshold")
    if args.data and len(given) == 2:
        raise ValueError("--data chooses the thresholds that --p-threshold and --s-threshold set: give one or the other")
    if not args.tolerance > 0 or not all(0 < t <= 1 for t in args.thresholds):
        raise ValueError(f"--tolerance must be > 0 and --thresholds probabilities in (0, 1], got {args.tolerance:g} "
                         f"and {args.thresholds}")
    model = SeisContrastPicker.from_file(args.model)   # fails early, naming the file, if it is no picker
    chosen, notes = {}, []
    if args.data:
        refs = reference_traces(args.data, None if args.split == "all" else args.split)
        if not refs.n_traces:
            raise ValueError(f"--data {args.data}: its {args.split} split has no traces")
        table = threshold_table(model, annotate(model, refs, args.batch_size), refs, args.tolerance,
                                sorted(args.thresholds))
        print(f"picks within {args.tolerance:g} s on {refs.n_traces} traces of {refs.name}:")
        print(table.round(3).to_string())
        chosen = best_thresholds(table)
        notes.append(f"best pick F1 within {args.tolerance:g} s on {refs.name} ({refs.n_traces} traces)")
    notes += [f"{p} set by hand" for p in given]
    given = {**chosen, **given}
    path = write_thresholds(args.model, given, "; ".join(notes), args.out)
    print(f"thresholds P {given['P']:g}, S {given['S']:g} written to {path}")
    return 0
