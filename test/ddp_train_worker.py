"""Run by torchrun in test_training_train.py: train, then save this rank's weights and the
indices of the samples it loaded."""

from __future__ import annotations

import json
import os
import sys

import torch

from training.config import load_train_config
from training.data import ClipDataset
from training.train import run_dir, train

if __name__ == "__main__":
    config = load_train_config(sys.argv[1])
    seen: list[int] = []
    load = ClipDataset.__getitem__

    def recording(self: ClipDataset, index: int):
        seen.append(int(index))
        return load(self, index)

    ClipDataset.__getitem__ = recording  # the test config loads in this process (workers: 0)
    model = train(config)
    rank = int(os.environ["RANK"])
    torch.save(model.state_dict(), run_dir(config) / f"rank{rank}.pt")
    (run_dir(config) / f"rank{rank}_samples.json").write_text(json.dumps(seen))
