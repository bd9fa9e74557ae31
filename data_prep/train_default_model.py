"""Recipe of the bundled default picker (``seiscontrast/resources/default_picker.pt``); runs offline on a CPU.

1. writes the labelled synthetic dataset (``seiscontrast synth``); most traces carry real noise, cut from the
   quiet parts of the recordings that ship with ObsPy (``obspy_noise_files``; see ``seiscontrast.data.noise_bank``),
2. pretrains the CPU-friendly backbone (``configs/pretrain_tiny.yaml`` + ``configs/picker_cpu.yaml`` +
   ``configs/narrow_targets.yaml``) on the
   synthetic traces, ObsPy's bundled real recordings and, when given, further real waveforms (``--real``),
3. fine-tunes it on the synthetic picks (full schedule); both steps high-pass every trace at 0.5 Hz
   (``window.highpass``: real broadband records carry microseisms tens of times stronger than the synthetic ones);
   the head has no detection output of its own (the default, ``picker.head.detection=false``: a detection loss
   took three quarters of the loss and left the picks late, model card "What made our synthetic P late"),
4. with ``--self-train``, labels the real records given there with the picker's own confident,
   augmentation-consistent picks (``seiscontrast pseudo-label``, their train split) and fine-tunes the picker
   further on them next to the synthetic data (``--init-from``, ``data.repeats``),
   with ``--distill-from PICKER``, the fine-tuning learns that picker's probabilities instead of the labels
   (knowledge distillation, ``seiscontrast.distill``; ``--distill-weight`` mixes the labels back in): a
   cheaper network taught by the bundled one; with ``--self-train`` too, the second run learns the teacher's
   probabilities on the real windows as well (their pseudo-labels then only place the windows),
5. chooses its P and S thresholds on the synthetic dev split (``seiscontrast calibrate``: best pick F1 within
   0.5 s; stored in the file), evaluates it on the synthetic test split (and, with ``--real-benchmark``, on real
   recordings side by side with PhaseNetLight-ETHZ and ObsPy's ar_pick) and writes the model and its card (JSON)
   into the package.

    python data_prep/train_default_model.py --work runs/default_model [--real ../shared/data/seisbench-dummy] \
        [--real-benchmark ../shared/data/seisbench-dummy] [--real-noise none] [--microseisms 3 100] \
        [--pretrain-set model.context.depths=[0,1,1]] [--finetune-set picker.head.hidden=8] [--nucleation 0.5] \
        [--site-resonance 0.5] [--linear-phase 0.8] [--colocated-accelerometers 0.15] [--seed 1] \
        [--self-train ../shared/data/seisbench-dummy] [--distill-from seiscontrast/resources/default_picker.pt]

``--real-noise none`` keeps the synthetic noise only; ``--microseisms`` sets the synthetic broadband stations'
microseism / high-frequency noise ratios; ``--nucleation`` the share of synthetic events with a weak nucleation
sub-event; ``--site-resonance`` the share of synthetic stations on a ringing soft layer; ``--linear-phase`` the
share of synthetic recordings through a linear-phase digitiser filter; ``--colocated-accelerometers`` the share
of real-noise traces from velocity sensors seen by an accelerometer instead; ``--seed`` the seed of the
data, pretraining and fine-tuning (0 made the bundled model);
``--pretrain-set``/``--finetune-set`` add config overrides to those steps (after the recipe's own, so they win):
the variants measured in the model card are runs of this script with them. ``--self-train`` (with
``--self-train-repeats`` and ``--self-train-steps``) adds the self-training step on unlabelled real records.

Steps whose output exists are skipped, so re-running with the same ``--work`` only evaluates and installs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from seiscontrast.checkpoints import read_model_file
from seiscontrast.cli import main as cli
from seiscontrast.data.synthetic import REALISTIC, SynthConfig

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "seiscontrast" / "resources"


def obspy_example_files() -> list[str]:
    """Real local-event recordings shipped inside ObsPy (used as unlabelled pretraining data)."""
    import obspy

    base = Path(obspy.__file__).parent
    names = ["io/mseed/tests/data/BW.BGLD.__.EHE.D.2008.001.first_10_records",
             "io/gse2/tests/data/loc_RJOB20050831023349.z", "io/gse2/tests/data/loc_RNON20040609200559.z",
             "io/gse2/tests/data/loc_STAU20031119011659.z"]
    return [str(base / n) for n in names if (base / n).is_file()]


#: ObsPy's bundled recordings with usable quiet parts: broadband (20-200 Hz), short-period and geophones, from
#: Germany, the US, New Zealand, Japan, Greece and more; every one a different station
NOISE_FILES = """signal/tests/data/ref_STS2 signal/tests/data/ref_unknown realtime/tests/data/II.TLY.BHZ.SAC
clients/fdsn/tests/data/dataselect_example.mseed signal/tests/data/CRLZ.HHZ.10.NZ.SAC io/mseed/tests/data/test.mseed
io/mseed/tests/data/gaps.mseed signal/tests/data/BW.UH3._.SHE.D.2010.147.cut.slist.gz
signal/tests/data/BW.UH3._.SHN.D.2010.147.cut.slist.gz signal/tests/data/BW.UH3._.SHZ.D.2010.147.cut.slist.gz
signal/tests/data/BW.UH4._.EHZ.D.2010.147.cut.slist.gz io/y/tests/data/YAYT_BHZ_20021223.124800
io/seisan/tests/data/2005-07-23-1452-04S.CER___030.mseed io/mseed/tests/data/dataquality-m.mseed
io/mseed/tests/data/fullseed.mseed io/gse2/tests/data/loc_RJOB20050831023349.z
io/gse2/tests/data/loc_RNON20040609200559.z io/mseed/tests/data/BW.BGLD.__.EHE.D.2008.001.first_10_records""".split()


def obspy_noise_files() -> list[str]:
    """Real recordings shipped inside ObsPy whose quiet parts become the noise of the synthetic traces."""
    import obspy

    base = Path(obspy.__file__).parent
    return [str(base / n) for n in NOISE_FILES if (base / n).is_file()]


def step(args: list[str]) -> None:
    print("$ seiscontrast " + " ".join(args), flush=True)
    if cli(args) != 0:
        sys.exit(f"step failed: seiscontrast {' '.join(args)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(ROOT / "runs" / "default_model"))
    ap.add_argument("--n-traces", type=int, default=20000)
    ap.add_argument("--pretrain-steps", type=int, default=800)
    ap.add_argument("--finetune-steps", type=int, default=2500)
    ap.add_argument("--real", nargs="*", default=[], help="extra real waveforms/SeisBench folders for pretraining")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--no-install", action="store_true", help="do not copy the result into the package")
    ap.add_argument("--real-noise", choices=("obspy", "none"), default="obspy",
                    help="noise under the synthetic events: real, from ObsPy's recordings (default), or synthetic only")
    ap.add_argument("--microseisms", nargs=2, default=["0.3", "8"], metavar=("LOW", "HIGH"),
                    help="synthetic broadband microseism / high-frequency noise ratios (seiscontrast synth)")
    ap.add_argument("--nucleation", default="0", metavar="FRACTION",
                    help="share of synthetic events with a weak nucleation sub-event (seiscontrast synth)")
    ap.add_argument("--site-resonance", default="0", metavar="FRACTION",
                    help="share of synthetic stations on a ringing soft surface layer (seiscontrast synth)")
    ap.add_argument("--linear-phase", default="0", metavar="FRACTION",
                    help="share of synthetic recordings with a linear-phase digitiser filter (seiscontrast synth)")
    ap.add_argument("--colocated-accelerometers", default="0", metavar="FRACTION",
                    help="share of real-noise traces from velocity sensors seen by an accelerometer beside them "
                    "(seiscontrast synth)")
    ap.add_argument("--crust", default="0", metavar="FRACTION",
                    help="share of synthetic events in a crust over the mantle, with head waves (Pn, Sn) ahead of the "
                    "direct waves beyond the crossover distance (seiscontrast synth)")
    ap.add_argument("--distance-range", nargs=2, default=["3", "200"], metavar=("MIN", "MAX"),
                    help="epicentral distances of the synthetic events, km (seiscontrast synth)")
    ap.add_argument("--seed", default="0", help="seed of the synthetic data, pretraining and fine-tuning (another seed "
                    "measures how much a run of the recipe varies)")
    ap.add_argument("--pretrain-set", nargs="*", default=[], metavar="KEY=VALUE", help="extra pretraining overrides")
    ap.add_argument("--finetune-set", nargs="*", default=[], metavar="KEY=VALUE", help="extra fine-tuning overrides")
    ap.add_argument("--self-train", nargs="*", default=[], metavar="FOLDER",
                    help="SeisBench folders of unlabelled real records: pseudo-label their train split with the "
                    "fine-tuned picker, then fine-tune it further on them next to the synthetic data")
    ap.add_argument("--self-train-repeats", type=int, default=40, help="draws of each pseudo-labelled training "
                    "split per epoch (data.repeats), against one of the synthetic one")
    ap.add_argument("--self-train-steps", type=int, default=1000)
    ap.add_argument("--distill-from", metavar="PICKER", help="picker.pt whose probabilities the fine-tuning learns "
                    "(the teacher; its windows must be the recipe's)")
    ap.add_argument("--distill-weight", default="1.0", help="share of the picking loss from the teacher (the rest "
                    "from the labels)")
    ap.add_argument("--real-benchmark", metavar="FOLDER",
                    help="also run benchmarks/real_data_picks.py on this SeisBench folder and put its summary in the card")
    a = ap.parse_args()
    work = Path(a.work)
    synth = work / "synthetic"
    if not (synth / "metadata.csv").is_file():
        step(["synth", str(synth), "--n-traces", str(a.n_traces), "--seed", a.seed, "--jobs", str(a.jobs),
              "--realistic", "--microseisms", *a.microseisms, "--nucleation", a.nucleation,
              "--site-resonance", a.site_resonance, "--linear-phase", a.linear_phase,
              "--colocated-accelerometers", a.colocated_accelerometers, "--crust", a.crust,
              "--distance-range", *a.distance_range,
              *(["--real-noise", *obspy_noise_files()] if a.real_noise == "obspy" else [])])
    pre = work / "pretrain"
    if not (pre / "model.pt").is_file():
        # narrow_targets.yaml: the quantizer the bundled model's backbone was pretrained with
        step(["pretrain", "--config", "configs/pretrain_tiny.yaml", "configs/picker_cpu.yaml",
              "configs/narrow_targets.yaml", "--data", str(synth),
              *obspy_example_files(), *a.real, "--out", str(pre), "--max-steps", str(a.pretrain_steps),
              "optim.warmup_steps=50", "trainer.batch_size=16", "trainer.val_every_n_steps=200", "window.highpass=0.5",
              f"seed={a.seed}", *a.pretrain_set])
    ft = work / "finetune"
    distill = []
    if a.distill_from:   # from a copy: installing the result may overwrite the teacher's file
        if not (work / "teacher.pt").is_file():
            shutil.copy(a.distill_from, work / "teacher.pt")
        distill = [f"distill.teacher='{(work / 'teacher.pt').resolve()}'", f"distill.weight={a.distill_weight}"]
    # what every fine-tuning run of the recipe shares (the first run and the self-training run)
    finetuning = ["--config", "configs/finetune_full.yaml", "trainer.batch_size=16", "trainer.val_every_n_steps=250",
                  "trainer.checkpoint_every_n_steps=250", "trainer.limit_val_batches=20",
                  "schedule.backbone_lr_mult=0.5", "window.highpass=0.5", f"seed={a.seed}", *distill]
    if not (ft / "picker.pt").is_file():
        step(["finetune", *finetuning, "--data", str(synth), "--out", str(ft), "--pretrained", str(pre / "model.pt"),
              "--max-steps", str(a.finetune_steps), "picker.head.hidden=16", "optim.lr=2e-3",
              "optim.warmup_steps=100", *a.finetune_set])
    if a.self_train:
        pseudo = [work / f"pseudo_{k}" for k in range(len(a.self_train))]
        for folder, out in zip(a.self_train, pseudo):
            if not (out / "metadata.csv").is_file():
                step(["pseudo-label", folder, "--out", str(out), "--model", str(ft / "picker.pt")])
        teacher, ft = ft, work / "selftrain"
        if not (ft / "picker.pt").is_file():
            repeats = ",".join(["1"] + [str(a.self_train_repeats)] * len(pseudo))
            step(["finetune", *finetuning, "--data", str(synth), *map(str, pseudo), "--out", str(ft),
                  "--init-from", str(teacher / "picker.pt"), "--max-steps", str(a.self_train_steps),
                  f"data.repeats=[{repeats}]", "optim.lr=5e-4", "optim.warmup_steps=50"])
    if "thresholds" not in read_model_file(ft / "picker.pt")[2]:
        step(["calibrate", str(ft / "picker.pt"), "--data", str(synth)])
    ev = work / "evaluation"
    step(["evaluate", "--model", str(ft / "picker.pt"), "--data", str(synth), "--out", str(ev)])
    real = None
    if a.real_benchmark:
        real = work / "real_data_picks.json"
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "real_data_picks.py"), "--model",
                        str(ft / "picker.pt"), "--dataset", a.real_benchmark, "--out", str(real)], check=True)
    if not a.no_install:
        RESOURCES.mkdir(exist_ok=True)
        shutil.copy(ft / "picker.pt", RESOURCES / "default_picker.pt")
        card = {"name": "seiscontrast-default-cpu", "recipe": "data_prep/train_default_model.py",
                "pretraining_data": [f"synthetic (seiscontrast synth, seed {a.seed})", *map(str, a.real),
                                     "ObsPy bundled example recordings"],
                "finetuning_data": f"synthetic, {a.n_traces} traces, seed {a.seed}; " + (
                    f"{SynthConfig.real_noise_fraction:.0%} in real noise from {len(obspy_noise_files())} ObsPy "
                    "recordings, " if a.real_noise == "obspy" else "synthetic noise only, ") +
                    f"{REALISTIC['accelerometer_fraction']:.0%} accelerometers, "
                    f"{REALISTIC['vertical_only_fraction']:.0%} vertical-only",
                "self_training_data": [f"{f} (train split, pseudo-labelled)" for f in a.self_train],
                "overrides": {"pretraining": a.pretrain_set, "finetuning": a.finetune_set},
                "distilled_from": (f"{a.distill_from} (weight {a.distill_weight})" if a.distill_from else None),
                "thresholds": read_model_file(ft / "picker.pt")[2]["thresholds"],
                "synthetic_test_metrics": json.loads((ev / "results.json").read_text())["test"]}
        if real is not None:
            card["real_data_benchmark"] = json.loads(real.read_text())
        (RESOURCES / "default_picker.json").write_text(json.dumps(card, indent=2))
        print(f"installed {RESOURCES / 'default_picker.pt'}")


if __name__ == "__main__":
    main()
