"""Run by ``test_finetune.py`` in a subprocess: two-process CPU (gloo) DDP fine-tuning with freeze_then_unfreeze,
through the package's own training harness (``training.fit``); each rank saves its weights before and after, so
the test can compare the ranks.

    python tests/ddp_unfreeze_check.py DATA_DIR OUT_DIR
"""

import sys
from pathlib import Path

import lightning as L
import torch

from seiscontrast.config import config_to_dict, load_config
from seiscontrast.finetune import FinetuneConfig, PickerModule, PickingData
from seiscontrast.training import fit

TINY = ["window.length=1024", "picker.model.encoder.channels=[16,16]",
        "picker.model.context.dim=16", "picker.model.context.num_heads=2", "picker.model.context.depths=[1,1,1]",
        "picker.model.quantizer.dim=16", "picker.model.final_dim=16", "picker.head.hidden=8", "optim.warmup_steps=1"]


def main(data_dir: str, out: Path) -> None:
    cfg = load_config(FinetuneConfig, None, [
        *TINY, "schedule.name=freeze_then_unfreeze", "schedule.unfreeze_at_step=2", "schedule.backbone_lr_mult=1.0",
        "optim.max_steps=5", "trainer.batch_size=2", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.strategy=ddp", "trainer.val_every_n_steps=0", f"data.sources=['{data_dir}']"])
    L.seed_everything(0)
    module = PickerModule(config_to_dict(cfg))
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    trainer = fit(module, PickingData(cfg), out / "run", None, progress=False)
    torch.save({"before": before, "after": module.net.state_dict()}, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
