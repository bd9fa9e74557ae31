"""Pretraining on a continuous archive: peak memory must not grow with the archive's length.

A synthetic SDS archive of one station (100 Hz, 3 channels of band-limited noise) is made 1 day and ``--days`` days
long. Each length is, in a fresh process: converted for pretraining (:func:`seiscontrast.data.sources.converted_archive`,
read one station-day at a time) and then read as pretraining data (the training windows of ``pretraining_datasets``,
``--batches`` batches of 8 through the training DataLoader). The reference, printed in the same run, is what holding
every window in memory needs (the archive as float32: what the windows of the former in-memory dataset took).

    python benchmarks/pretrain_archive_memory.py [--days 4] [--work /tmp/pretrain_archive_mem]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from obspy import UTCDateTime

START = UTCDateTime(2024, 3, 1)

CHILD = r"""
import json, os, resource, sys, time
from seiscontrast.data.windows import WindowConfig
from seiscontrast.data.seisbench_source import DatasetConfig
from seiscontrast.data.sources import converted_archive, pretraining_datasets
from seiscontrast.training import window_loader
stage, root, batches = sys.argv[1], sys.argv[2], int(sys.argv[3])
window = WindowConfig()
t = time.perf_counter()
if stage == "convert":
    converted_archive([root], window)
else:
    train, _ = pretraining_datasets(DatasetConfig(sources=[root]), window)
    for i, batch in enumerate(window_loader(train, 8, 0, 0, train=True)):
        if i + 1 >= batches:
            break
print(json.dumps({"seconds": time.perf_counter() - t, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "windows": len(train) if stage != "convert" else None}))
"""


def child(stage: str, root: Path, batches: int, cache: Path) -> dict:
    env = {**os.environ, "SEISCONTRAST_CACHE": str(cache)}
    res = subprocess.run([sys.executable, "-c", CHILD, stage, str(root), str(batches)], capture_output=True,
                         text=True, env=env, check=False)
    if res.returncode:
        sys.exit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    from seiscontrast.data.synthetic_archive import write_sds_archive

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=4)
    ap.add_argument("--batches", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path("/tmp/pretrain_archive_mem"))
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    rows = []
    for days in (1, a.days):
        root = a.work / f"sds_{days}d"
        write_sds_archive(root, START, START + days * 86400, stations=("A01",))
        conv = child("convert", root, a.batches, a.work / f"cache_{days}d")
        read = child("read", root, a.batches, a.work / f"cache_{days}d")
        in_memory = days * 86400 * 100 * 3 * 4 / 2**20
        rows.append((days, read["windows"], in_memory, conv["peak_mb"], conv["seconds"], read["peak_mb"]))
        print(f"{days} day(s): {read['windows']} training windows; all windows in memory would take {in_memory:.0f} MB; "
              f"conversion peak {conv['peak_mb']:.0f} MB in {conv['seconds']:.0f} s; reading {a.batches} batches "
              f"peak {read['peak_mb']:.0f} MB", flush=True)
    (d1, _, m1, c1, _, r1), (dn, _, mn, cn, _, rn) = rows
    print(f"\n{dn} days vs 1 day: windows-in-memory reference x{mn / m1:.1f}; conversion peak x{cn / c1:.2f}; "
          f"reading peak x{rn / r1:.2f} (target: <= 1.2)")


if __name__ == "__main__":
    main()
