"""Fine-tuning schedules (what is frozen, what is in the optimizer, at which lr), baselines and evaluation."""

import json

import lightning as L
import numpy as np
import obspy
import pandas as pd
import pytest
import torch
from conftest import TINY_PRETRAIN

from seiscontrast.config import load_config
from seiscontrast.data import WindowConfig, open_dataset, picking_generator, split
from seiscontrast.evaluate import evaluate, make_targets
from seiscontrast.finetune import FinetuneConfig, PickerModule, run_finetuning
from seiscontrast.pretrain import PretrainConfig, run_pretraining

SMALL = ["window.length=1024", "trainer.batch_size=4", "trainer.log_every_n_steps=1",
         "trainer.val_every_n_steps=0", "optim.warmup_steps=2", "trainer.limit_val_batches=2"]
TINY_MODEL = ["picker.model.encoder.channels=[16,16]", "picker.model.context.dim=16", "picker.model.context.num_heads=2",
              "picker.model.context.depths=[1,1,1]", "picker.model.quantizer.dim=16", "picker.model.final_dim=16",
              "picker.head.hidden=8"]


def ft_config(synth_dir, *extra):
    return load_config(FinetuneConfig, None, [*SMALL, *TINY_MODEL, f"data.sources=['{synth_dir}']", *extra])


def _train(cfg, steps, resolve=False):
    """Train ``steps`` steps; returns the module, the weights before, and per step (global step, optimizer
    parameter ids, {part: lr}, a copy of the first encoder tensor) as seen when the batch starts."""
    from seiscontrast.config import config_to_dict
    from seiscontrast.finetune import load_pretrained_into, resolve_pretrained

    if resolve:
        cfg = resolve_pretrained(cfg)
    module = PickerModule(config_to_dict(cfg))
    if resolve:
        load_pretrained_into(cfg, module)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    data = open_dataset(cfg.data.sources[0], cfg.window)
    gen = picking_generator(split(data, "train"), cfg.window)
    loader = torch.utils.data.DataLoader(gen, batch_size=4, shuffle=True)
    seen = []

    class Spy(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            opt = trainer.optimizers[0]
            ids = {id(p) for g in opt.param_groups for p in g["params"]}
            lrs = {g["part"]: g["lr"] for g in opt.param_groups}
            enc = _part_params(pl_module, "encoder")[0].detach().clone()
            seen.append((trainer.global_step, ids, lrs, enc))

    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[Spy()])
    trainer.fit(module, loader)
    return module, before, seen


def _part_params(module, name):
    return [p for m in module.net.stages()[name] for p in m.parameters()]


def _changed(module, before, params):
    names = {id(p): n for n, p in module.net.named_parameters()}
    return [not torch.equal(before[names[id(p)]], p.detach()) for p in params]


def _starts(seen, parts):
    """First step at which each part had a non-zero learning rate."""
    return {name: min((step for step, _, lrs, _ in seen if lrs.get(name, 0) > 0), default=None) for name in parts}


def test_frozen_backbone_stays_out_of_optimizer_and_unchanged(synth_dir):
    module, before, seen = _train(ft_config(synth_dir, "schedule.name=frozen"), 4)
    backbone = [p for k in ("context_up", "context_bottleneck", "context_down", "encoder") for p in _part_params(module, k)]
    assert not any(p.requires_grad for p in backbone)
    assert all(id(p) not in ids for _, ids, _, _ in seen for p in backbone)
    assert not any(_changed(module, before, backbone))
    assert all(_changed(module, before, _part_params(module, "head"))[:1])


def test_freeze_then_unfreeze_holds_then_trains_with_scaled_lr(synth_dir):
    cfg = ft_config(synth_dir, "schedule.name=freeze_then_unfreeze", "schedule.unfreeze_at_step=3",
                    "schedule.backbone_lr_mult=0.1", "optim.lr=1e-3", "optim.max_steps=6")
    module, before, seen = _train(cfg, 6)
    enc = _part_params(module, "encoder")
    trainable = {id(p) for p in module.net.parameters() if p.requires_grad}
    for step, ids, lrs, enc0 in seen:
        assert ids == trainable, step          # the optimizer never changes: every part is in it from step 0
        if step < 3:
            assert lrs["encoder"] == 0 and lrs["head"] > 0, step
            assert torch.equal(enc0, before[next(n for n, p in module.net.named_parameters() if p is enc[0])])
        else:
            assert lrs["encoder"] == pytest.approx(lrs["head"] * 0.1, rel=1e-6), step
    assert any(_changed(module, before, enc))  # ... and it did train after step 3


def test_gradual_unfreezing_order(synth_dir):
    cfg = ft_config(synth_dir, "schedule.name=gradual", "schedule.gradual_every_steps=2", "optim.max_steps=9")
    module, _, seen = _train(cfg, 9)
    order = ["context_up", "context_bottleneck", "context_down", "encoder"]
    assert [k for k in module.net.stages() if k != "head"] == order
    assert _starts(seen, ["head", *order]) == {"head": 0, "context_up": 2, "context_bottleneck": 4,
                                                "context_down": 6, "encoder": 8}


def test_layer_decay_scales_each_part_below_the_head(synth_dir):
    from seiscontrast.config import config_to_dict

    cfg = ft_config(synth_dir, "schedule.backbone_lr_mult=0.5", "schedule.layer_decay=0.5", "optim.lr=1e-3")
    lrs = {g["part"]: g["lr"] for g in PickerModule(config_to_dict(cfg)).parameter_groups()}
    assert lrs == pytest.approx({"head": 1e-3, "context_up": 5e-4, "context_bottleneck": 2.5e-4,
                                 "context_down": 1.25e-4, "encoder": 6.25e-5})
    with pytest.raises(ValueError, match="layer_decay"):
        ft_config(synth_dir, "schedule.layer_decay=0")


def test_full_schedule_trains_everything(synth_dir):
    module, before, seen = _train(ft_config(synth_dir, "schedule.name=full"), 2)
    all_params = [p for p in module.net.parameters()]
    ids = seen[0][1]
    used = [p for n, p in module.net.named_parameters()
            if not any(k in n for k in ("quantizer", "project_", "mask_embedding"))]
    assert all(id(p) in ids for p in used)
    assert ids == {id(p) for p in all_params if p.requires_grad}   # the optimizer holds every trainable tensor


@pytest.fixture(scope="module")
def pretrained(synth_dir, tmp_path_factory):
    cfg = load_config(PretrainConfig, None, [*TINY_PRETRAIN, "optim.max_steps=3", f"data.sources=['{synth_dir}']"])
    return run_pretraining(cfg, tmp_path_factory.mktemp("pre") / "run", progress=False)


@pytest.fixture(scope="module")
def finetuned(synth_dir, pretrained, tmp_path_factory):
    cfg = ft_config(synth_dir, f"pretrained='{pretrained}'", "optim.max_steps=6", "trainer.val_every_n_steps=3",
                    "data.fraction=0.5", "trainer.checkpoint_every_n_steps=3")
    out = tmp_path_factory.mktemp("ft") / "run"
    return run_finetuning(cfg, out, progress=False)


def test_finetune_from_pretrained_writes_picker(finetuned, pretrained):
    from seiscontrast.checkpoints import load_model

    pick, pre = load_model(finetuned, kind="picker"), load_model(pretrained, kind="pretrained")
    assert pick.spec.picker.model == pre.spec.model          # architecture taken from the file
    assert pick.spec.labels == "PSND" and pick.meta["best_checkpoint"]
    assert torch.load(finetuned, weights_only=True)["config"]["pretrained"] == str(pretrained)   # provenance
    with pytest.raises(ValueError, match="pretrained model; this needs a fine-tuned picker"):
        load_model(pretrained, kind="picker")


def test_keep_last_writes_the_final_weights(synth_dir, tmp_path):
    from seiscontrast.checkpoints import read_model_file

    cfg = ft_config(synth_dir, "keep=last", "optim.max_steps=6", "trainer.val_every_n_steps=3",
                    "trainer.checkpoint_every_n_steps=3", "data.fraction=0.5")
    path = run_finetuning(cfg, tmp_path / "run", progress=False)
    _, kept, meta = read_model_file(path)
    _, final, _ = read_model_file(tmp_path / "run" / "checkpoints" / "last.ckpt")   # saved at step 6
    assert meta["best_checkpoint"] is None and meta["global_step"] == 6
    assert kept.keys() == final.keys() and all(torch.equal(kept[k], final[k]) for k in kept)
    with pytest.raises(ValueError, match="keep must be"):
        ft_config(synth_dir, "keep=worst")


def test_keep_best_f1_writes_the_checkpoint_with_the_highest_dev_pick_f1(synth_dir, tmp_path):
    from seiscontrast.checkpoints import read_model_file

    cfg = ft_config(synth_dir, "keep=best_f1", "optim.max_steps=6", "trainer.val_every_n_steps=2",
                    "trainer.checkpoint_every_n_steps=2", "data.fraction=0.5", "optim.lr=1e-2")
    path = run_finetuning(cfg, tmp_path / "run", progress=False)
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    f1 = metrics.dropna(subset=["val/pick_f1"])
    assert len(f1) == 3 and f1["val/pick_f1"].between(0, 1).all()
    best_step = int(f1.step.iloc[f1["val/pick_f1"].to_numpy().argmax()]) + 1   # logged at the step before the save
    _, kept, meta = read_model_file(path)
    _, saved, _ = read_model_file(tmp_path / "run" / "checkpoints" / meta["best_checkpoint"])
    assert meta["best_checkpoint"] == f"step{best_step:07d}.ckpt"
    assert all(torch.equal(kept[k], saved[k]) for k in kept)


def test_ema_decay_writes_the_moving_average_of_the_weights(synth_dir, tmp_path):
    """With ``optim.ema_decay`` the written picker holds the exponential moving average of the weights the training
    went through (from the end of the warm-up), and the training itself is unchanged."""
    from seiscontrast.checkpoints import read_model_file

    common = ["keep=last", "optim.warmup_steps=0", "optim.min_lr_ratio=1.0", "trainer.val_every_n_steps=1",
              "trainer.checkpoint_every_n_steps=1", "data.fraction=0.5"]
    weights = {}
    for steps, ema in ((1, 0.0), (2, 0.0), (2, 0.75)):   # a constant lr: the first step is the same in each run
        cfg = ft_config(synth_dir, *common, f"optim.max_steps={steps}", f"optim.ema_decay={ema}")
        weights[steps, ema] = read_model_file(run_finetuning(cfg, tmp_path / f"run{steps}_{ema}", progress=False))[1]
    w1, w2, average = weights[1, 0.0], weights[2, 0.0], weights[2, 0.75]
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)
    for k in w1:
        if w1[k].is_floating_point():
            torch.testing.assert_close(average[k], 0.75 * w1[k] + 0.25 * w2[k])
    raw = torch.load(tmp_path / "run2_0.75" / "checkpoints" / "last.ckpt", weights_only=True)["current_model_state"]
    assert all(torch.equal(raw["net." + k], w2[k]) for k in w2)        # the trained weights themselves unchanged
    with pytest.raises(ValueError, match="ema_decay"):
        ft_config(synth_dir, "optim.ema_decay=1.0")


def test_evaluate_protocol(finetuned, synth_dir, tmp_path):
    res = evaluate(finetuned, [str(synth_dir)], tmp_path, progress=False)
    for split_name in ("dev", "test"):
        for key in ("det_auc", "det_f1", "ps_mcc", "P_mae_s", "S_rmse_s", "P_outlier_fraction"):
            assert key in res[split_name]
    # thresholds are the best on dev (recomputed here from the window scores) and applied unchanged to test
    windows = pd.read_csv(tmp_path / "windows.csv")
    dev = windows[(windows.split == "dev") & (windows.task == "detection")]
    grid = np.unique(np.quantile(dev.det_score, np.linspace(0, 1, 201)))
    f1 = [2 * ((dev.det_score >= c) & (dev.label == 1)).sum() /
          ((dev.det_score >= c).sum() + (dev.label == 1).sum()) for c in grid]
    assert res["dev"]["det_f1"] == pytest.approx(max(f1))
    test = windows[(windows.split == "test") & (windows.task == "detection")]
    predicted = test.det_score >= res["test"]["det_threshold"]
    assert res["test"]["det_threshold"] == res["dev"]["det_threshold"]
    assert res["test"]["det_recall"] == pytest.approx((predicted & (test.label == 1)).sum() / (test.label == 1).sum())
    assert json.loads((tmp_path / "results.json").read_text())["test"] == res["test"]
    assert (tmp_path / "residuals.png").is_file() and (tmp_path / "examples.png").is_file()


def test_eval_targets_deterministic_and_clean(synth_dir):
    w = WindowConfig()
    meta = split(open_dataset(synth_dir, w), "test").metadata
    a, b = make_targets(meta, w), make_targets(meta, w)
    assert a.equals(b)
    ph = a[a.task == "phase"]
    assert len(ph) > 10
    sub = 1000
    for _, row in ph.iterrows():
        assert row.sub_start <= row.onset < row.sub_start + sub     # the pick is in the scoring window
        assert 0 <= row.onset < w.length


def test_phasenet_baseline_same_trainer(synth_dir, tmp_path):
    cfg = ft_config(synth_dir, "picker.arch=phasenet", "optim.max_steps=2")
    path = run_finetuning(cfg, tmp_path / "pn", progress=False)
    res = evaluate(path, [str(synth_dir)], None, progress=False, plots=False)
    assert np.isfinite(res["test"]["det_auc"])


def test_benchmark_metrics_against_oracles():
    """AUC, F1 and MCC (torchmetrics) against values worked out by hand and an independent rank-sum AUC."""
    from scipy.stats import rankdata

    from seiscontrast.evaluate import _auc, _f1, _mcc

    assert _auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    y, pred = np.array([1, 1, 1, 0]), np.array([True, False, True, True])   # tp 2, fp 1, fn 1, tn 0
    assert _f1(y, pred) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert _mcc(y, pred) == pytest.approx((2 * 0 - 1 * 1) / np.sqrt(3 * 3 * 1 * 1), abs=1e-6)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    score = rng.normal(size=500) + y
    ranks = rankdata(score)
    pos = y == 1
    mann_whitney = (ranks[pos].sum() - pos.sum() * (pos.sum() + 1) / 2) / (pos.sum() * (~pos).sum())
    assert _auc(y, score) == pytest.approx(mann_whitney, abs=1e-6)
    assert np.isnan(_auc(np.ones(5), np.arange(5.0)))


def test_transformer_backbone_through_the_whole_pipeline(synth_dir, tmp_path):
    """Swapping the context network is a config change: pretrain, gradual fine-tuning over its own parts, picking."""
    from seiscontrast.picker import SeisContrastPicker
    from seiscontrast.transformer_context import TransformerContext

    transformer = ["model.transformer.layers=2", "model.transformer.num_heads=2", "model.transformer.pos_conv_groups=2"]
    pre = run_pretraining(load_config(PretrainConfig, None, [*TINY_PRETRAIN, *transformer, "optim.max_steps=2",
                                                             f"data.sources=['{synth_dir}']"]), tmp_path / "pre",
                          progress=False)
    cfg = ft_config(synth_dir, f"pretrained='{pre}'", "schedule.name=gradual", "schedule.gradual_every_steps=1",
                    "optim.max_steps=4")
    module, before, seen = _train(cfg, 4, resolve=True)
    assert isinstance(module.net.backbone.context, TransformerContext)
    order = [k for k in module.net.stages() if k != "head"]
    assert order == ["context_layer2", "context_layer1", "encoder"]
    assert _starts(seen, order) == {"context_layer2": 1, "context_layer1": 2, "encoder": 3}   # head side first
    picker = run_finetuning(ft_config(synth_dir, f"pretrained='{pre}'", "optim.max_steps=2"), tmp_path / "ft",
                            progress=False)
    ann = SeisContrastPicker.from_file(picker).annotate(obspy.read())
    assert {tr.stats.channel.split("_")[-1] for tr in ann} == set("PSND")


@pytest.mark.slow
def test_unfrozen_parts_train_identically_under_ddp(synth_dir, tmp_path):
    """Two gloo processes, backbone unfrozen at step 2 of 5: afterwards its weights changed and agree on both ranks."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("ddp_unfreeze_check.py")
    res = subprocess.run([sys.executable, str(script), str(synth_dir), str(tmp_path)], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    encoder = [k for k in r0["after"] if k.startswith("backbone.encoder.")]
    assert encoder
    for key in encoder:
        assert torch.equal(r0["after"][key], r1["after"][key]), key
    assert any(not torch.equal(r0["after"][k], r0["before"][k]) for k in encoder)


def test_init_from_a_picker_starts_from_its_network_and_weights(finetuned, synth_dir, tmp_path):
    """More training of a fine-tuned picker (self-training): with lr 0 the result is the picker it started from,
    and ``data.repeats`` draws a source's training split that many times per epoch."""
    from seiscontrast.checkpoints import load_model, read_model_file
    from seiscontrast.finetune import PickingData

    cfg = ft_config(synth_dir, f"init_from='{finetuned}'", "optim.max_steps=2", "optim.lr=0.0", "picker.head.hidden=4",
                    f"data.sources=['{synth_dir}','{synth_dir}']", "data.repeats=[1,2]")
    out = run_finetuning(cfg, tmp_path / "again", progress=False)
    teacher, student = read_model_file(finetuned), read_model_file(out)
    assert student[0].picker == teacher[0].picker          # the network is the picker's, not the config's head
    for k, v in teacher[1].items():
        torch.testing.assert_close(student[1][k], v)
    assert torch.load(out, weights_only=True)["config"]["init_from"] == str(finetuned)
    data = PickingData(cfg)
    data.setup("fit")
    n_train = len(open_dataset(synth_dir, cfg.window).train())
    assert len(data.train_set) == 3 * n_train
    assert load_model(out, kind="picker")


@pytest.mark.parametrize("extra, message", [
    (["pretrained='x.pt'", "init_from='y.pt'"], "either pretrained"),
    (["data.repeats=[0]"], "repeats must be whole numbers"),
])
def test_init_from_and_repeats_reject_bad_settings(synth_dir, extra, message):
    with pytest.raises(ValueError, match=message):
        ft_config(synth_dir, *extra)


def test_init_from_needs_a_picker_and_repeats_one_number_per_source(pretrained, synth_dir, tmp_path):
    from seiscontrast.finetune import PickingData

    with pytest.raises(ValueError, match="not a picker"):
        run_finetuning(ft_config(synth_dir, f"init_from='{pretrained}'"), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="2 numbers for 1 sources"):
        PickingData(ft_config(synth_dir, "data.repeats=[1,2]")).setup("fit")


def test_distillation_loss_is_the_weighted_mix_of_labels_and_teacher(finetuned, synth_dir):
    """``loss = (1 - w) · CE(labels) + w · CE(teacher probabilities)``, the teacher seeing the same windows."""
    from seiscontrast.config import config_to_dict
    from seiscontrast.distill import load_teacher, soft_cross_entropy

    cfg = ft_config(synth_dir, f"distill.teacher='{finetuned}'", "distill.weight=0.25")
    module = PickerModule(config_to_dict(cfg))
    assert not any(k.startswith("_teacher") for k in module.state_dict())   # never saved with the picker
    gen = picking_generator(split(open_dataset(synth_dir, cfg.window), "dev"), cfg.window)
    batch = next(iter(torch.utils.data.DataLoader(gen, batch_size=4)))
    logged = {}
    module.log_stage = lambda stage, metrics, *a, **k: logged.update(metrics)
    with torch.no_grad():
        total, out = module._step(batch, "val")
        teacher = load_teacher(str(finetuned), cfg.window, "PSND")(batch["X"]).probs
    by_hand = 0.75 * soft_cross_entropy(out.log_probs, batch["y"]) + 0.25 * soft_cross_entropy(out.log_probs, teacher)
    torch.testing.assert_close(total, by_hand)
    assert set(logged) == {"loss", "pick_loss", "distill_loss"}
    assert logged["distill_loss"] > 0.1          # a random student is far from the teacher


def test_distilled_student_learns_the_teachers_curves(finetuned, synth_dir, tmp_path):
    """A smaller network trained on the teacher's probabilities alone (no labels) moves towards them: its
    excess cross-entropy against the teacher (the KL divergence) on dev windows falls by more than half; the
    file records the teacher."""
    from seiscontrast.checkpoints import load_model, read_model_file, save_model_file
    from seiscontrast.distill import load_teacher, soft_cross_entropy

    # a teacher with sharp, input-dependent curves: the fine-tuned picker's output layer made 30x steeper
    spec, state, _ = read_model_file(finetuned)
    state = {k: v * 30 if k.startswith("head.out.") else v for k, v in state.items()}
    sharp = save_model_file(tmp_path / "teacher.pt", spec, state)
    cfg = ft_config(synth_dir, f"distill.teacher='{sharp}'", "picker.head.hidden=4", "optim.max_steps=40",
                    "optim.lr=1e-2", "keep=last", "seed=3")
    gen = picking_generator(split(open_dataset(synth_dir, cfg.window), "dev"), cfg.window)
    batch = next(iter(torch.utils.data.DataLoader(gen, batch_size=8)))
    teacher = load_teacher(str(sharp), cfg.window, "PSND")

    def distance(net):
        with torch.no_grad():
            p = teacher(batch["X"]).probs
            return float(soft_cross_entropy(net(batch["X"]).log_probs, p) - soft_cross_entropy(p.log(), p))

    from seiscontrast.config import config_to_dict
    L.seed_everything(3)
    before = distance(PickerModule(config_to_dict(cfg)).net.eval())
    out = run_finetuning(cfg, tmp_path / "student", progress=False)
    after = distance(load_model(out, kind="picker").net.eval())
    assert after < 0.5 * before, (before, after)
    assert torch.load(out, weights_only=True)["config"]["distill"]["teacher"] == str(sharp)


def test_distillation_rejects_a_teacher_that_does_not_fit(pretrained, finetuned, synth_dir, tmp_path):
    with pytest.raises(ValueError, match="not a picker"):
        run_finetuning(ft_config(synth_dir, f"distill.teacher='{pretrained}'"), tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="windows .* differ"):
        run_finetuning(ft_config(synth_dir, f"distill.teacher='{finetuned}'", "window.length=2048"), tmp_path / "b",
                       progress=False)
    with pytest.raises(ValueError, match="distill.weight"):
        ft_config(synth_dir, "distill.weight=1.5")
