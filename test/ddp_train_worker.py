"""Run by torchrun in test_training_train.py: train, then save this rank's weights."""

from __future__ import annotations

import os
import sys

import torch

from training.config import load_train_config
from training.train import run_dir, train

if __name__ == "__main__":
    config = load_train_config(sys.argv[1])
    model = train(config)
    rank = int(os.environ["RANK"])
    torch.save(model.state_dict(), run_dir(config) / f"rank{rank}.pt")
