"""Archive-scale picking through the CLI: peak memory flat in archive length, throughput with worker processes,
and no pick lost or doubled at midnight.

A synthetic SDS archive (3 stations x 7 days of 100 Hz band-limited noise; synthetic events every ~2 h, one
straddling every midnight) is picked with ``seiscontrast pick --sds``:
* day 1 only vs all 7 days (``--jobs 1``): peak RSS of the process tree (target: 7-day peak <= 1.2x the 1-day peak);
* all 7 days with ``--jobs 1`` and ``--jobs 2``: station-days per second;
* every inserted event: P and S picked once within 0.5 s, never twice (events across midnight listed apart);
* days 2-3 once more as one chunk per station (``--chunk 30d``): the picks must equal the chunked run's there,
  so whatever the chunked run misses, it misses without chunks too.

    python benchmarks/archive_scale.py [--days 7] [--stations 3] [--work /tmp/archive_bench]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from obspy import UTCDateTime

ROOT = Path(__file__).resolve().parents[1]
START = UTCDateTime(2024, 3, 1)


def make_archive(root: Path, stations: int, days: int) -> pd.DataFrame:
    from seiscontrast.data.synthetic_archive import write_sds_archive

    rng = np.random.default_rng(0)
    times = []
    for d in range(days):   # ~12 events a day, one of them with P 3 s before midnight (its S after midnight)
        times += sorted(d * 86400 + rng.uniform(600, 85000, 11).round(2))
        if d + 1 < days:
            times.append((d + 1) * 86400 - 3.0)
    return write_sds_archive(root / "sds", START, START + days * 86400, [f"S{k:02d}" for k in range(stations)],
                             times)


def run_pick(args: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB of the command and its workers, exit status), measured in a fresh process."""
    probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
             "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
             "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")
    out = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "seiscontrast.cli", "pick", *args],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), float(out[1]) / 1024, int(out[2])


def check_picks(picks: pd.DataFrame, truth: pd.DataFrame) -> dict:
    found = {"P": 0, "S": 0}
    doubled = lost = 0
    for row in truth.itertuples():
        sta = picks[picks.station == row.station]
        for phase, t in (("P", row.p_time), ("S", row.s_time)):
            near = sum(abs(UTCDateTime(x) - t) <= 0.5 for x in sta[sta.phase == phase].time)
            found[phase] += near >= 1
            doubled += near > 1
            lost += near == 0
    midnight = truth[[UTCDateTime(p).julday != UTCDateTime(s).julday for p, s in zip(truth.p_time, truth.s_time)]]
    lost_midnight = 0
    for row in midnight.itertuples():
        sta = picks[picks.station == row.station]
        for phase, t in (("P", row.p_time), ("S", row.s_time)):
            lost_midnight += not any(abs(UTCDateTime(x) - t) <= 0.5 for x in sta[sta.phase == phase].time)
    return dict(events=len(truth), P_found=found["P"], S_found=found["S"], doubled=doubled, lost=lost,
                across_midnight=len(midnight), lost_across_midnight=lost_midnight)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--stations", type=int, default=3)
    ap.add_argument("--work", default="/tmp/archive_bench")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "archive_scale.json"))
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    truth = make_archive(work, args.stations, args.days)
    print(f"archive: {args.stations} stations x {args.days} days, {len(truth)} station-events, "
          f"written in {time.perf_counter() - t:.0f} s")
    sds = ["--sds", str(work / "sds"), "--start", str(START.date)]
    results = {}
    for label, days, jobs in (("1 day, --jobs 1", 1, 1), (f"{args.days} days, --jobs 1", args.days, 1),
                              (f"{args.days} days, --jobs 2", args.days, 2)):
        out = work / f"picks_{days}d_{jobs}j.csv"
        end = str((START + days * 86400).date)
        seconds, rss, rc = run_pick([*sds, "--end", end, "--out", str(out), "--jobs", str(jobs), "-q"])
        station_days = days * args.stations
        results[label] = dict(seconds=round(seconds, 1), peak_rss_mb=round(rss), exit_status=rc,
                              station_days_per_s=round(station_days / seconds, 4))
        print(f"{label:>18}: {seconds:7.1f} s, {station_days / seconds:.4f} station-days/s, peak RSS {rss:.0f} MB")
        if days == args.days:
            results[label].update(check_picks(pd.read_csv(out), truth))
            print("   ", {k: v for k, v in results[label].items() if k not in ("seconds", "peak_rss_mb")})
    # the same two days (and the midnight between them) without chunk edges
    a, b = START + 86400, START + 3 * 86400
    out = work / "picks_unchunked.csv"
    seconds, rss, rc = run_pick(["--sds", str(work / "sds"), "--start", str(a.date), "--end", str(b.date),
                                 "--chunk", "30d", "--out", str(out), "-q"])
    whole = pd.read_csv(out)
    chunked = pd.read_csv(work / f"picks_{args.days}d_1j.csv")
    chunked = chunked[[a <= UTCDateTime(t) < b for t in chunked.time]]
    keys = [set(zip(df.station, df.phase, [str(UTCDateTime(t)) for t in df.time])) for df in (chunked, whole)]
    results["days 2-3 unchunked"] = dict(seconds=round(seconds, 1), peak_rss_mb=round(rss), exit_status=rc,
                                         picks=len(whole), only_chunked=len(keys[0] - keys[1]),
                                         only_unchunked=len(keys[1] - keys[0]))
    print(f"days 2-3 as one chunk per station: {len(whole)} picks; only in the chunked run "
          f"{len(keys[0] - keys[1])}, only without chunks {len(keys[1] - keys[0])} (peak RSS {rss:.0f} MB)")
    one, full = results["1 day, --jobs 1"], results[f"{args.days} days, --jobs 1"]
    ratio = full["peak_rss_mb"] / one["peak_rss_mb"]
    speedup = results[f"{args.days} days, --jobs 2"]["station_days_per_s"] / full["station_days_per_s"]
    print(f"peak RSS {args.days} days / 1 day: {ratio:.2f} (target <= 1.2); --jobs 2 / --jobs 1 throughput: "
          f"{speedup:.2f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(dict(stations=args.stations, days=args.days, runs=results,
                                              rss_ratio=round(ratio, 3), jobs2_speedup=round(speedup, 3),
                                              cpu_count=__import__("os").cpu_count()), indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
