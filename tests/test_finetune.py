"""Fine-tuning schedules (what is frozen, what is in the optimizer, at which lr), baselines and evaluation."""

import json

import lightning as L
import numpy as np
import pytest
import torch
from conftest import TINY_PRETRAIN

from seiscontrast.config import load_config
from seiscontrast.data import WindowConfig, open_dataset, picking_generator, split
from seiscontrast.evaluate import evaluate, make_targets
from seiscontrast.finetune import FinetuneConfig, FreezeSchedule, PickerModule, run_finetuning
from seiscontrast.pretrain import PretrainConfig, run_pretraining

SMALL = ["window.length=1024", "picker.model.max_frames=256", "trainer.batch_size=4", "trainer.log_every_n_steps=1",
         "trainer.val_every_n_steps=0", "optim.warmup_steps=2", "trainer.limit_val_batches=2"]
TINY_MODEL = ["picker.model.encoder.channels=[16,16]", "picker.model.context.dim=16", "picker.model.context.num_heads=2",
              "picker.model.context.depths=[1,1,1]", "picker.model.quantizer.dim=16", "picker.model.final_dim=16",
              "picker.head.hidden=8"]


def ft_config(synth_dir, *extra):
    return load_config(FinetuneConfig, None, [*SMALL, *TINY_MODEL, f"data.sources=['{synth_dir}']", *extra])


def _train(cfg, steps):
    module = PickerModule(__import__("seiscontrast.config", fromlist=["x"]).config_to_dict(cfg))
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    data = open_dataset(cfg.data.sources[0], cfg.window)
    gen = picking_generator(split(data, "train"), cfg.window)
    loader = torch.utils.data.DataLoader(gen, batch_size=4, shuffle=True)
    seen = []

    class Spy(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            opt = trainer.optimizers[0]
            ids = {id(p) for g in opt.param_groups for p in g["params"]}
            lrs = [g["lr"] for g in opt.param_groups]
            seen.append((trainer.global_step, ids, lrs))

    trainer = L.Trainer(max_steps=steps, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[FreezeSchedule(cfg.schedule, cfg.optim), Spy()])
    trainer.fit(module, loader)
    return module, before, seen


def _part_params(module, name):
    return [p for m in module.net.stages()[name] for p in m.parameters()]


def _changed(module, before, params):
    names = {id(p): n for n, p in module.net.named_parameters()}
    return [not torch.equal(before[names[id(p)]], p.detach()) for p in params]


def test_frozen_backbone_stays_out_of_optimizer_and_unchanged(synth_dir):
    module, before, seen = _train(ft_config(synth_dir, "schedule.name=frozen"), 4)
    backbone = [p for k in ("context_up", "bottleneck", "context_down", "encoder") for p in _part_params(module, k)]
    assert not any(p.requires_grad for p in backbone)
    assert all(id(p) not in ids for _, ids, _ in seen for p in backbone)
    assert not any(_changed(module, before, backbone))
    assert all(_changed(module, before, _part_params(module, "head"))[:1])


def test_freeze_then_unfreeze_joins_with_scaled_lr(synth_dir):
    cfg = ft_config(synth_dir, "schedule.name=freeze_then_unfreeze", "schedule.unfreeze_at_step=3",
                    "schedule.backbone_lr_mult=0.1", "optim.lr=1e-3", "optim.max_steps=6")
    module, before, seen = _train(cfg, 6)
    enc = _part_params(module, "encoder")
    for step, ids, lrs in seen:
        in_opt = all(id(p) in ids for p in enc)
        assert in_opt == (step > 3), step   # global_step after the batch: unfrozen from the batch at step 3 on
        if in_opt:
            assert len(lrs) > 2 and lrs[-1] == pytest.approx(lrs[0] * 0.1, rel=1e-6)
    assert any(_changed(module, before, enc))


def test_gradual_unfreezing_order(synth_dir):
    cfg = ft_config(synth_dir, "schedule.name=gradual", "schedule.gradual_every_steps=2", "optim.max_steps=9")
    module, _, seen = _train(cfg, 9)
    order = ["context_up", "bottleneck", "context_down", "encoder"]
    joined = {}
    for step, ids, _ in seen:
        for name in order:
            if name not in joined and all(id(p) in ids for p in _part_params(module, name)):
                joined[name] = step
    assert list(joined) == order
    assert [joined[n] for n in order] == sorted(joined[n] for n in order)
    assert joined["context_up"] < joined["encoder"]


def test_full_schedule_trains_everything(synth_dir):
    module, before, seen = _train(ft_config(synth_dir, "schedule.name=full"), 2)
    all_params = [p for p in module.net.parameters()]
    ids = seen[0][1]
    used = [p for n, p in module.net.named_parameters()
            if not any(k in n for k in ("quantizer", "project_", "mask_embedding"))]
    assert all(id(p) in ids for p in used) and len(ids) <= len(all_params)


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
    from seiscontrast.checkpoints import load_model_file

    pick = load_model_file(finetuned)
    pre = load_model_file(pretrained)
    assert pick["kind"] == "picker" and pick["config"]["pretrained"] == str(pretrained)
    assert pick["config"]["picker"]["model"] == pre["config"]["model"]   # architecture taken from the file
    assert pick["meta"]["best_checkpoint"]


def test_evaluate_protocol(finetuned, synth_dir, tmp_path):
    res = evaluate(finetuned, [str(synth_dir)], tmp_path, progress=False)
    for split_name in ("dev", "test"):
        for key in ("det_auc", "det_f1", "ps_mcc", "P_mae_s", "S_rmse_s", "P_outlier_fraction"):
            assert key in res[split_name]
    # thresholds come from dev and are applied unchanged to test
    assert res["test"]["det_threshold"] == res["dev"]["det_threshold"]
    assert res["test"]["ps_threshold"] == res["dev"]["ps_threshold"]
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
