"""Run by ``test_finetune.py`` in a subprocess: two-process CPU (gloo) DDP fine-tuning with freeze_then_unfreeze;
each rank saves its weights before and after, so the test can compare the ranks.

    python tests/ddp_unfreeze_check.py DATA_DIR OUT_DIR
"""

import sys
from pathlib import Path

import lightning as L
import torch

from seiscontrast.config import config_to_dict, load_config
from seiscontrast.data import open_dataset, picking_generator, split
from seiscontrast.finetune import FinetuneConfig, PickerModule

TINY = ["window.length=1024", "picker.model.max_frames=256", "picker.model.encoder.channels=[16,16]",
        "picker.model.context.dim=16", "picker.model.context.num_heads=2", "picker.model.context.depths=[1,1,1]",
        "picker.model.quantizer.dim=16", "picker.model.final_dim=16", "picker.head.hidden=8", "optim.warmup_steps=1"]


def main(data_dir: str, out: Path) -> None:
    cfg = load_config(FinetuneConfig, None, [*TINY, "schedule.name=freeze_then_unfreeze", "schedule.unfreeze_at_step=2",
                                             "schedule.backbone_lr_mult=1.0", "optim.max_steps=5"])
    L.seed_everything(0)
    module = PickerModule(config_to_dict(cfg))
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    gen = picking_generator(split(open_dataset(data_dir, cfg.window), "train"), cfg.window)
    loader = torch.utils.data.DataLoader(gen, batch_size=2, shuffle=True)
    trainer = L.Trainer(max_steps=5, accelerator="cpu", devices=2, strategy="ddp", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, loader)
    torch.save({"before": before, "after": module.net.state_dict()}, out / f"rank{trainer.global_rank}.pt")


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
