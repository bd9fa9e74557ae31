"""Frame-level and pooled embeddings of every window of a SeisBench dataset or ObsPy files, written to HDF5."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", help="SeisBench dataset names/folders or waveform files/directories/globs")
    p.add_argument("--model", required=True, help="model.pt (pretrained), picker.pt (fine-tuned) or 'default' (the bundled picker's backbone)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--split", choices=["train", "dev", "test"], help="only this split (SeisBench sources)")
    p.add_argument("--no-frames", action="store_true", help="store pooled embeddings only (much smaller)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    from ..embed import embed_to_hdf5

    n = embed_to_hdf5(args.model, args.sources, args.out, args.split, not args.no_frames, args.batch_size,
                      args.device, progress=not args.quiet)
    print(f"wrote {n} window embeddings to {args.out}")
    return 0
