"""Archive runs: chunks picked one at a time (or in ``jobs`` processes), each result saved atomically as it
finishes, so that a run killed at any moment loses at most the chunks in flight and the same command continues.

The work folder (next to the output, ``picks_chunks/`` for ``picks.csv``) holds ``run.json`` (the settings that
change picks; a run with other settings refuses to mix its picks in), ``chunks/<chunk id>.json`` (picks and
problems of one finished chunk) and ``pick.log`` (every problem, one line each). The output file is assembled from
the chunk files of the current plan once all of them exist; shards (``--shard I/N``, e.g. a SLURM job array) share
the folder, and whichever finishes last — or a plain re-run — writes the output.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path

from .archive import ArchiveConfig, ArchivePlan, Chunk, release_memory
from .files import atomic_write
from .logs import get_logger, progress_bar
from .pick import ChunkResult, PickResult, PickSettings, collect, pick_chunk

log = get_logger(__name__)


@dataclass
class RunSettings:
    """Everything that decides the picks of a run (stored in ``run.json``; a mismatch refuses to resume)."""

    model: str
    model_version: str
    pick: PickSettings
    archive: ArchiveConfig
    plot_dir: str | None = None

    def identity(self) -> dict:
        d = asdict(self)
        for key in ("batch_size", "device", "sweep"):   # change speed (or extra outputs), not picks
            d["pick"].pop(key)
        if d["pick"]["highpass"] is None:   # the model's own: runs of earlier releases, without the key, resume
            d["pick"].pop("highpass")
        d.pop("plot_dir")
        return d


@dataclass
class WorkDir:
    """The work folder of one archive run."""

    root: Path
    settings: RunSettings
    restart: bool = False
    done: set[str] = field(default_factory=set, init=False)   # ids of finished chunks, read from chunk_dir

    def __post_init__(self):
        self.root = Path(self.root)
        manifest = self.root / "run.json"
        if manifest.is_file() and not self.restart:
            stored = json.loads(manifest.read_text())
            if stored != self.settings.identity():
                diff = [k for k in stored if stored.get(k) != self.settings.identity().get(k)]
                raise ValueError(f"{self.root} holds picks made with other settings ({', '.join(diff)}); add "
                                 "--restart to discard them, or choose another --out")
        elif self.restart and self.chunk_dir.is_dir():
            for f in self.chunk_dir.glob("*.json"):
                f.unlink()
        self.chunk_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(manifest, lambda tmp: Path(tmp).write_text(json.dumps(self.settings.identity(), indent=1)))
        self.refresh()

    def refresh(self) -> None:
        """Re-read which chunks are finished (other shards may have added some)."""
        self.done = {f.stem for f in self.chunk_dir.glob("*.json")}

    @property
    def chunk_dir(self) -> Path:
        return self.root / "chunks"

    def save(self, result: ChunkResult) -> None:
        """Store a finished chunk (atomically) and append its problems to ``pick.log``."""
        atomic_write(self.chunk_dir / f"{result.chunk_id}.json",
                     lambda tmp: Path(tmp).write_text(json.dumps(result.to_dict())))
        self.done.add(result.chunk_id)
        self.log(result.report.errors, "ERROR")
        self.log(result.report.warnings, "WARNING")

    def log(self, entries, level: str) -> None:
        if entries:
            with open(self.root / "pick.log", "a") as f:
                f.writelines(f"{level} {src}: {msg}\n" for src, msg in entries)

    def load(self, chunk: Chunk) -> ChunkResult:
        return ChunkResult.from_dict(json.loads((self.chunk_dir / f"{chunk.id}.json").read_text()))


def work_dir_for(out: str | Path) -> Path:
    """``picks.csv`` → ``picks_chunks/`` beside it."""
    out = Path(out)
    return out.with_name(f"{out.stem}_chunks")


# --- worker processes: each loads the model once and picks chunks with its share of the cores ------------------
_WORKER: dict = {}


def _init_worker(model_spec: str, settings: RunSettings, threads: int) -> None:
    import torch

    from .logs import setup_logging
    from .picker import load_picker_model

    setup_logging(-1)
    torch.set_num_threads(threads)
    _WORKER.update(model=load_picker_model(model_spec).to(settings.pick.device).eval(), settings=settings)


def _pick_in_worker(chunk: Chunk) -> ChunkResult:
    s: RunSettings = _WORKER["settings"]
    plot = Path(s.plot_dir) if s.plot_dir else None
    try:
        return pick_chunk(_WORKER["model"], chunk, s.pick, s.archive, plot)
    finally:
        release_memory()


def _results(todo: list[Chunk], model, model_spec: str, settings: RunSettings, jobs: int) -> Iterator[ChunkResult]:
    """Chunk results as they finish: in this process, or in ``jobs`` spawned processes (a few chunks queued each)."""
    if jobs <= 1:
        plot = Path(settings.plot_dir) if settings.plot_dir else None
        for chunk in todo:
            result = pick_chunk(model, chunk, settings.pick, settings.archive, plot)
            release_memory()
            yield result
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn"), initializer=_init_worker,
                             initargs=(model_spec, settings, threads)) as pool:
        queue, pending = list(reversed(todo)), set()
        while queue or pending:
            while queue and len(pending) < 2 * jobs:   # bounded: results of a year never pile up in memory
                pending.add(pool.submit(_pick_in_worker, queue.pop()))
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in finished:
                try:
                    yield f.result()
                except BrokenProcessPool:
                    raise ChildProcessError("a worker process died (out of memory? try a shorter --chunk or fewer "
                                            "--jobs); finished chunks are kept: run the same command again to "
                                            "continue") from None


def run_plan(plan: ArchivePlan, chunks: Sequence[Chunk], work: WorkDir, model, model_spec: str, jobs: int = 1,
             progress: bool = True) -> tuple[int, int]:
    """Pick the chunks of ``chunks`` not yet done; returns (chunks picked now, picks found now)."""
    todo = [c for c in chunks if c.id not in work.done]
    if len(todo) < len(chunks):
        log.info("resuming: %d of %d chunk(s) already picked in %s", len(chunks) - len(todo), len(chunks), work.root)
    picked = n_picks = 0
    with progress_bar(total=len(todo), unit="chunk", desc="picking", enabled=progress) as bar:
        for result in _results(todo, model, model_spec, work.settings, jobs):
            work.save(result)
            picked += 1
            n_picks += len(result.rows)
            bar.set_postfix(picks=n_picks, station=result.station, refresh=False)
            bar.update()
    return picked, n_picks


def assemble(plan: ArchivePlan, work: WorkDir) -> PickResult | None:
    """All picks of the plan from the chunk files, or ``None`` while chunks are missing (other shards running)."""
    work.refresh()
    missing = [c for c in plan.chunks if c.id not in work.done]
    if missing:
        return None
    return collect([work.load(c) for c in plan.chunks], plan.report)
