"""`pdn-train`: train PatchDriveNet with AdamW, warmup + cosine annealing, on one device or
many (`torchrun --nproc_per_node N -m training.train ...`, DDP; NCCL on GPUs, gloo on CPU).

Reproducible by construction: sample i of the run is a pure function of (seed, i) and every
step reseeds torch's RNG from (seed, step, rank), so a resumed run continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from pdn_model.checkpoint import load_checkpoint, save_checkpoint
from pdn_model.config import preset_config
from pdn_model.model import PatchDriveNet
from pdn_model.temporal import push_frame
from training.config import OptimConfig, TrainConfig, load_train_config
from training.curves import plot_curves
from training.data import ClipDataset, collate_clips
from training.diagnostics import (
    drift_warnings,
    module_grad_norms,
    priority_stats,
    window_stats,
)
from training.losses import LOSS_TERMS, detection_criterion, detection_heads, saliency_targets

TRAIN_STATE_FORMAT = "pdn-train-2"
# Non-finite steps tolerated (skipped) before a run is declared diverged.
MAX_SKIPPED_STEPS = 20


def log_columns(model: PatchDriveNet) -> tuple[str, ...]:
    """The columns of log.csv: schedule, loss terms, positives per head, and diagnostics
    (priority statistics and window precision per scale, small-object patch recall,
    gradient norm per module)."""
    cfg = model.config
    columns = ["step", "lr", "total", *LOSS_TERMS]
    columns += [f"positives_{name}" for name, _ in detection_heads(cfg)]
    for scale in cfg.patch_scales:
        columns += [f"prio_{stat}_p{scale}" for stat in ("mean", "std", "absmax")]
    columns += [f"window_precision_p{scale}" for scale in cfg.patch_scales]
    columns += ["patch_recall_small", "grad_norm"]
    columns += [f"grad_{name}" for name, _ in model.named_children()]
    return (*columns, "seconds_per_step", "skipped_steps")


class StepSampler(Sampler[int]):
    """Endless sample indices for steps `start`, `start+1`, ...: rank r of w takes indices
    step*B*w + r*B + j, j < B. Shards the data across DDP ranks without epochs."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world: int = 1):
        self.start_step, self.batch_size, self.rank, self.world = (
            start_step,
            batch_size,
            rank,
            world,
        )

    def __iter__(self) -> Iterator[int]:
        step = self.start_step
        while True:
            base = (step * self.world + self.rank) * self.batch_size
            yield from range(base, base + self.batch_size)
            step += 1


def lr_factor(step: int, optim: OptimConfig) -> float:
    """Multiplier of the base learning rate: linear warmup, then cosine to min_lr_ratio."""
    if step < optim.warmup_steps:
        return (step + 1) / optim.warmup_steps
    progress = min(1.0, (step - optim.warmup_steps) / max(1, optim.steps - optim.warmup_steps))
    return optim.min_lr_ratio + (1 - optim.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_model(config: TrainConfig) -> PatchDriveNet:
    """The model at the training crop size, with the training patch budget; with `init`,
    it starts from that checkpoint's weights (fine-tuning)."""
    height, width = config.data.crop
    model = PatchDriveNet(preset_config(config.preset, height, width, **config.model))
    if config.init is not None:
        source = load_checkpoint(config.init)
        try:
            model.load_state_dict(source.state_dict())
        except RuntimeError as err:
            reason = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
            raise ValueError(
                f"init {config.init}: its weights do not fit the model this config builds"
                f" (preset {config.preset}, model {config.model}): {reason}"
            ) from err
    if config.train_patches is not None:
        model.set_patches(config.train_patches)
    return model


def run_dir(config: TrainConfig) -> Path:
    """The folder of a run: OUT/NAME."""
    return Path(config.out) / config.name


def _distributed() -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return rank, world, device


def _device(config: TrainConfig, default: torch.device) -> torch.device:
    return default if config.device == "auto" else torch.device(config.device)


def train(
    config: TrainConfig, resume: bool = False, stop_after: int | None = None
) -> PatchDriveNet:
    """Run (or resume) training; returns the trained model. The run folder (`run_dir`) gets
    model.pt, last.pt (optimizer and schedule too, for --resume), log.csv and curves.png.

    `stop_after` ends the run early at that step (as if interrupted), keeping the schedule
    of the full `optim.steps`.
    """
    rank, world, default_device = _distributed()
    device = _device(config, default_device)
    out = run_dir(config)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.optim.lr, weight_decay=config.optim.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, config.optim)
    )
    start, skipped = 0, 0
    state_path = out / "last.pt"
    log_path = out / "log.csv"
    if resume:
        start, skipped = _load_train_state(state_path, model, optimizer, scheduler, device)
        if rank == 0:
            _truncate_log(log_path, start)
    net = DistributedDataParallel(model, find_unused_parameters=True) if world > 1 else model
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    dataset = ClipDataset(config.data, seed=config.seed)
    loader = DataLoader(
        dataset,
        batch_size=config.optim.batch_size,
        sampler=StepSampler(start, config.optim.batch_size, rank, world),
        num_workers=config.data.workers,
        collate_fn=collate_clips,
        persistent_workers=config.data.workers > 0,
    )
    last = min(config.optim.steps, stop_after or config.optim.steps)
    columns = log_columns(model)
    progress = tqdm(total=last, initial=start, desc=f"train {config.name}", disable=rank != 0)
    batches = iter(loader)
    model.train()
    tick = time.perf_counter()
    for step in range(start, last):
        images, targets = next(batches)
        torch.manual_seed(config.seed * 1_000_003 + step * world + rank)
        images, targets, budget = _step_plan(images, targets, model, config, step)
        with (
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp),
            patch_budget(model, budget),
        ):
            terms, outputs, frame_targets = _clip_loss(
                net, model, images.to(device), targets, config, step, device
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(terms["total"]).backward()
        scaler.unscale_(optimizer)
        done = step + 1
        logging = rank == 0 and (done % config.log_every == 0 or done == last)
        grads = module_grad_norms(model) if logging else {}
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.optim.grad_clip)
        if torch.isfinite(norm) and torch.isfinite(terms["total"]):
            scaler.step(optimizer)
        else:  # one bad batch must not poison the weights: skip it, count it, go on
            skipped += 1
            if skipped > MAX_SKIPPED_STEPS:
                raise FloatingPointError(
                    f"{skipped} steps had a non-finite loss or gradient (last at step {step})"
                )
        scaler.update()
        scheduler.step()
        progress.update(1)
        if logging:
            elapsed = (time.perf_counter() - tick) / config.log_every
            tick = time.perf_counter()
            row = {
                "step": done,
                "lr": scheduler.get_last_lr()[0],
                "seconds_per_step": elapsed,
                "skipped_steps": skipped,
                "grad_norm": float(norm),
                **grads,
                **{k: float(v.detach()) for k, v in terms.items()},
                **window_stats(outputs, frame_targets, model.config),
            }
            prio = priority_stats(outputs["priority_logits"], model.config)
            row.update(prio)
            _append_log(log_path, row, columns)
            for line in drift_warnings(prio, model.config):
                _warn(out / "train.log", f"step {done}: {line}", progress)
            progress.set_postfix(loss=f"{row['total']:.3f}", lr=f"{row['lr']:.2e}")
        if rank == 0 and (done % config.checkpoint_every == 0 or done == last):
            _save_train_state(state_path, model, optimizer, scheduler, done, skipped, config)
    progress.close()
    if world > 1:
        # Gradients keep parameters equal across ranks; batch-norm statistics are updated
        # locally, so every rank takes rank 0's (the ones saved) before anyone uses them.
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
    if rank == 0:
        save_checkpoint(model.eval(), out / "model.pt", trained_steps=last)
        plot_curves(log_path, out / "curves.png")
    if world > 1:
        dist.barrier()
    return model


@contextlib.contextmanager
def patch_budget(model: PatchDriveNet, counts: tuple[int, ...] | None) -> Iterator[None]:
    """Run with another window count per scale (None: leave it as it is)."""
    saved = model.patch_counts
    if counts is not None:
        model.set_patches(counts)
    try:
        yield
    finally:
        model.patch_counts = saved


def _step_plan(
    images: torch.Tensor, targets: list, model: PatchDriveNet, config: TrainConfig, step: int
) -> tuple[torch.Tensor, list, tuple[int, ...] | None]:
    """What this step trains, drawn from (seed, step) so every rank and a resumed run agree:
    the whole clip on a `long_clip_share` of steps (else its first frame: temporal memory
    is trained on fewer, cheaper steps), and the global stream alone (0 windows) on a
    `global_only_share` of steps."""
    rng = np.random.default_rng([config.seed, step, 7])
    if rng.random() >= config.long_clip_share:
        images, targets = images[:, :1], [clip[:1] for clip in targets]
    global_only = rng.random() < config.global_only_share
    return images, targets, (0,) * model.config.num_scales if global_only else None


def _clip_loss(
    net: torch.nn.Module,
    model: PatchDriveNet,
    images: torch.Tensor,
    targets: list,
    config: TrainConfig,
    step: int,
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list]:
    """Loss over a batch of clips [B, L, 3, H, W], unrolling memory and controller state;
    also the last frame's outputs and targets (for the diagnostics)."""
    b, length = images.shape[:2]
    state = model.initial_state(b)
    memory, valid, control = state["memory"], state["memory_valid"], state["controller_state"]
    guide = config.guide * max(0.0, 1.0 - step / max(1, config.guide_steps))
    totals: dict[str, torch.Tensor] = {}
    for t in range(length):
        frame_targets = [clip[t].to(device) for clip in targets]
        bias = None
        if guide > 0:
            bias = guide * torch.stack([saliency_targets(tg, model.config) for tg in frame_targets])
        out = net(images[:, t], memory, valid, control, selection_bias=bias)
        terms = detection_criterion(out, frame_targets, model.config, config.loss)
        for key, value in terms.items():
            totals[key] = totals.get(key, 0.0) + value / length
        memory, valid = push_frame(memory, valid, out["frame_tokens"])
        control = out["next_controller_state"]
    return totals, out, frame_targets


def _save_train_state(
    path: Path, model, optimizer, scheduler, step: int, skipped: int, config
) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "format": TRAIN_STATE_FORMAT,
            "step": step,
            "skipped_steps": skipped,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "config": dataclasses.asdict(config),
        },
        tmp,
    )
    tmp.replace(path)


def _load_train_state(
    path: Path, model, optimizer, scheduler, device: torch.device
) -> tuple[int, int]:
    """Restore a training state; returns (step, skipped steps so far)."""
    if not path.is_file():
        raise FileNotFoundError(f"nothing to resume: {path} does not exist")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable training state: {err}") from err
    if state.get("format") != TRAIN_STATE_FORMAT:
        raise ValueError(f"{path} is not a PatchDriveNet training state")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return int(state["step"]), int(state["skipped_steps"])


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows past `step`: a run that crashed after its last checkpoint logged steps
    that the resumed run will log again."""
    if not path.is_file():
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = lines[:1] + [line for line in lines[1:] if int(line.split(",", 1)[0]) <= step]
    path.write_text("".join(kept))


def _append_log(path: Path, row: dict, columns: tuple[str, ...]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _warn(path: Path, line: str, progress: tqdm) -> None:
    """A warning on the console and in the run's train.log."""
    progress.write(f"WARNING: {line}")
    with path.open("a") as f:
        f.write(f"WARNING: {line}\n")


def main(argv: list[str] | None = None) -> int:
    """`pdn-train --config training/configs/NAME.yaml [--resume] [--steps N] [--out DIR]`."""
    parser = argparse.ArgumentParser(prog="pdn-train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="YAML training config")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/NAME/last.pt")
    parser.add_argument("--out", help="runs folder (default from the config)")
    parser.add_argument("--stop-after", type=int, help="stop at this step (schedule unchanged)")
    args = parser.parse_args(argv)
    try:
        overrides = {"out": args.out} if args.out else {}
        config = load_train_config(args.config, **overrides)
        train(config, resume=args.resume, stop_after=args.stop_after)
        folder = run_dir(config)
    except (ValueError, FileNotFoundError) as err:
        print(f"pdn-train: {err}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"pdn-train: done; model in {folder / 'model.pt'}, curves in {folder / 'curves.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
