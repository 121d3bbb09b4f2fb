"""Trainer and data: real optimisation runs on a tiny synthetic dataset."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from training.coco import CocoFormatError
from training.config import DataConfig, load_train_config
from training.data import ClipAugment, ClipDataset, FrameRecord, load_frames, read_image
from training.synth import SceneConfig, generate_sequence
from training.synth.randomize import GAUSSIAN, NO_BLUR
from training.synth_cli import main as synth_main
from training.train import build_model, run_dir, train

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "data"
    code = synth_main(
        [
            "--out",
            str(out),
            "--sequences",
            "2",
            "--frames",
            "3",
            "--height",
            "256",
            "--width",
            "384",
            "--seed",
            "5",
        ]
    )
    assert code == 0
    return out / "annotations.json"


def write_config(path: Path, data: Path, runs: Path, **extra) -> Path:
    config = {
        "name": "tiny",
        "data": {"train": str(data), "crop": [128, 192], "clip_length": 2, "workers": 0},
        "optim": {"steps": 4, "batch_size": 2, "warmup_steps": 1},
        "model": {
            "patch_scales": [64, 128],
            "patches_per_scale": [2, 1],
            "patch_size": 64,
            "max_detections": 20,
            "pre_nms_topk": 60,
        },
        "out": str(runs),
        "log_every": 1,
        "checkpoint_every": 2,
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_coco_frames_round_trip_in_sequence_order(dataset):
    frames, names = load_frames(dataset)
    assert names == ["person", "vehicle", "bicycle", "animal", "sign"]
    assert [(f.video_id, f.frame_id) for f in frames] == sorted(
        (f.video_id, f.frame_id) for f in frames
    )
    first = generate_sequence(5, SceneConfig(height=256, width=384, frames=3))
    truth = next(first)
    ours = frames[0]
    keep = ~np.asarray(truth.ignore) if hasattr(truth, "ignore") else slice(None)
    np.testing.assert_allclose(ours.boxes, np.asarray(truth.boxes)[keep], atol=1e-3)
    np.testing.assert_array_equal(ours.labels, np.asarray(truth.labels)[keep])
    assert read_image(ours.path).shape == (256, 384, 3)


def test_clips_are_deterministic_and_boxes_stay_in_the_crop(dataset):
    data = ClipDataset(DataConfig(train=str(dataset), crop=(128, 192), clip_length=2), seed=3)
    images, targets = data[7]
    again, targets2 = data[7]
    assert images.shape == (2, 3, 128, 192) and images.dtype == torch.uint8
    assert torch.equal(images, again)
    assert all(torch.equal(a.boxes, b.boxes) for a, b in zip(targets, targets2, strict=True))
    other, _ = data[8]
    assert not torch.equal(images, other)
    for target in targets:
        b = target.boxes
        assert ((b[:, 0] >= 0) & (b[:, 2] <= 192) & (b[:, 1] >= 0) & (b[:, 3] <= 128)).all()
        assert ((b[:, 2:] - b[:, :2]) >= 2).all()


def test_augmentation_geometry_keeps_small_objects_small(dataset):
    data = ClipDataset(DataConfig(train=str(dataset), crop=(128, 192), clip_length=1), seed=0)
    frame = dataclasses.replace(
        data.frames[0],
        boxes=np.array([[100.0, 100.0, 110.0, 108.0]], np.float32),
        labels=np.array([2]),
    )
    plain = ClipAugment(1.0, (50.0, 40.0), False, np.ones(3, np.float32), 0.0)
    image, target = data.apply(frame, plain)
    original = read_image(frame.path)
    np.testing.assert_array_equal(image, original[40:168, 50:242].transpose(2, 0, 1))
    assert target.boxes.tolist() == [[50.0, 60.0, 60.0, 68.0]] and target.labels.tolist() == [2]
    zoomed = ClipAugment(1.2, (50.0, 40.0), True, np.ones(3, np.float32), 0.0)
    _, target = data.apply(frame, zoomed)
    np.testing.assert_allclose(
        target.boxes.numpy(), [[192 - 72.0, 72.0, 192 - 60.0, 81.6]], atol=1e-4
    )
    for index in range(30):
        rng = np.random.default_rng([0, index])
        aug = data.draw(rng, data.frames[index % len(data.frames)])
        assert 0.8 <= aug.scale <= 1.25


def twin_draws(
    dataset: Path, clip_length: int, **changes: float
) -> tuple[ClipDataset, FrameRecord, ClipAugment, ClipAugment]:
    """A dataset with `changes` to its DataConfig, its first frame, and the clip draws of
    the plain and the changed config from the same generator state, whose geometry and
    colour jitter must agree (the change draws after them)."""
    config = DataConfig(train=str(dataset), crop=(128, 192), clip_length=clip_length)
    plain = ClipDataset(config, seed=0)
    changed = ClipDataset(dataclasses.replace(config, **changes), seed=0)
    frame = plain.frames[0]
    a = plain.draw(np.random.default_rng(7), frame)
    b = changed.draw(np.random.default_rng(7), frame)
    assert (a.scale, a.origin, a.flip, a.offset) == (b.scale, b.origin, b.flip, b.offset)
    assert np.array_equal(a.gain, b.gain)
    return changed, frame, a, b


def test_haze_lowers_the_contrast_and_leaves_geometry_and_other_draws_alone(dataset):
    hazy, frame, a, b = twin_draws(dataset, 1, haze=0.8)
    assert a.haze_colour is None and b.haze_colour is not None and 0 <= b.haze <= 0.8
    neutral = dataclasses.replace(b, gain=np.ones(3, np.float32), offset=0.0, haze=0.5)
    image, target = hazy.apply(frame, neutral)
    original, original_target = hazy.apply(frame, dataclasses.replace(neutral, haze=0.0))
    assert torch.equal(target.boxes, original_target.boxes)
    # Half the colour blended in halves every pixel's distance to it, so the contrast halves.
    per_channel = image.astype(np.float32).reshape(3, -1).std(axis=1)
    before = original.astype(np.float32).reshape(3, -1).std(axis=1)
    np.testing.assert_allclose(per_channel, before / 2, rtol=0.03)
    expected = original.astype(np.float32) / 2 + neutral.haze_colour[:, None, None] / 2
    assert np.abs(image - expected).max() <= 1.0


def test_camera_adds_the_noise_blur_and_jpeg_it_draws_and_leaves_geometry_alone(dataset):
    degraded, frame, a, b = twin_draws(dataset, 2, camera=1.0)
    assert a.camera is None and b.camera is not None
    base = dataclasses.replace(b, gain=np.ones(3, np.float32), offset=0.0)
    original, original_target = degraded.apply(frame, dataclasses.replace(base, camera=None))
    # Sensor noise alone (no blur, near-lossless JPEG): the added noise has the drawn deviation.
    noisy = dataclasses.replace(b.camera, blur=NO_BLUR, noise=8.0, jpeg=100)
    image, target = degraded.apply(frame, dataclasses.replace(base, camera=noisy))
    assert torch.equal(target.boxes, original_target.boxes)
    # Compared in luma on unclipped pixels: JPEG keeps luma at full resolution (chroma is
    # subsampled), and independent noise of 8 per channel is 8 * |(.299, .587, .114)| in luma.
    luma = np.array([0.299, 0.587, 0.114], np.float32)[:, None, None]
    before, after = ((x.astype(np.float32) * luma).sum(0) for x in (original, image))
    mid = (original.min(0) > 30) & (original.max(0) < 225)
    added = (after - before)[mid]
    assert mid.mean() > 0.3 and abs(added.std() / (8 * 0.668) - 1) < 0.15
    assert abs(added.mean()) < 1.0
    # A Gaussian blur without noise takes out fine detail: far less Laplacian energy.
    blurred = dataclasses.replace(noisy, blur=GAUSSIAN, blur_px=2.0, noise=0.0)
    soft, _ = degraded.apply(frame, dataclasses.replace(base, camera=blurred))

    def detail(x):
        return cv2.Laplacian(x.transpose(1, 2, 0), cv2.CV_32F).var()

    assert detail(soft) < 0.3 * detail(original)
    # The same clip item degrades the same way every time (reproducible, resumable runs).
    first, _ = degraded[3]
    again, _ = degraded[3]
    assert torch.equal(first, again)


def test_corrupt_annotation_and_image_errors_name_the_file(tmp_path, dataset):
    bad = tmp_path / "annotations.json"
    bad.write_text('{"images": [}')
    with pytest.raises(CocoFormatError, match=str(bad)):
        load_frames(bad)
    junk = tmp_path / "frame.jpg"
    junk.write_bytes(b"not a jpeg at all")
    with pytest.raises(ValueError, match="cannot decode image .*frame.jpg"):
        read_image(junk)
    with pytest.raises(FileNotFoundError, match="image not found"):
        read_image(tmp_path / "missing.jpg")


def test_resume_continues_exactly_where_it_stopped(tmp_path, dataset):
    straight = load_train_config(write_config(tmp_path / "a.yaml", dataset, tmp_path / "a"))
    resumed = load_train_config(write_config(tmp_path / "b.yaml", dataset, tmp_path / "b"))
    full = train(straight)
    train(resumed, stop_after=2)
    rows_before = (run_dir(resumed) / "log.csv").read_text().splitlines()
    assert rows_before[-1].startswith("2,")
    again = train(resumed, resume=True)
    rows = (run_dir(resumed) / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    for (name, a), b in zip(full.state_dict().items(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert (run_dir(resumed) / "model.pt").is_file() and (run_dir(resumed) / "curves.png").is_file()


def test_init_starts_from_a_checkpoints_weights_and_refuses_one_that_does_not_fit(
    tmp_path, dataset
):
    first = train(load_train_config(write_config(tmp_path / "a.yaml", dataset, tmp_path / "a")))
    checkpoint = run_dir(load_train_config(tmp_path / "a.yaml")) / "model.pt"
    tuned = load_train_config(
        write_config(tmp_path / "b.yaml", dataset, tmp_path / "b", init=str(checkpoint))
    )
    start = build_model(tuned)
    for (name, a), b in zip(first.state_dict().items(), start.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    fresh = build_model(load_train_config(tmp_path / "a.yaml"))
    changed = zip(fresh.state_dict().values(), start.state_dict().values(), strict=True)
    assert any(not torch.equal(a, b) for a, b in changed)
    other = load_train_config(
        write_config(
            tmp_path / "c.yaml",
            dataset,
            tmp_path / "c",
            init=str(checkpoint),
            model={
                "patch_scales": [64, 128],
                "patches_per_scale": [2, 1],
                "patch_size": 64,
                "class_names": ["a", "b"],
            },
        )
    )
    with pytest.raises(ValueError, match="do not fit"):
        build_model(other)
    missing = load_train_config(
        write_config(tmp_path / "d.yaml", dataset, tmp_path / "d", init=str(tmp_path / "no.pt"))
    )
    with pytest.raises(FileNotFoundError, match="no.pt"):
        build_model(missing)


# A skipped step still advances the schedule, on purpose; torch warns about that order.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_resume_after_a_crash_between_checkpoints_keeps_the_log_and_the_skip_count(
    tmp_path, dataset, monkeypatch
):
    import training.train as trainer

    real = trainer._clip_loss
    crash = {"at": 3}

    def flaky(net, model, images, targets, config, step, device):
        if step == crash["at"]:
            raise RuntimeError("simulated crash")
        terms, out, frame_targets = real(net, model, images, targets, config, step, device)
        if step == 0:  # one non-finite step before the checkpoint at step 2
            terms["total"] = terms["total"] * float("nan")
        return terms, out, frame_targets

    monkeypatch.setattr(trainer, "_clip_loss", flaky)
    config = load_train_config(write_config(tmp_path / "c.yaml", dataset, tmp_path / "c"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(config)  # logs steps 1-3, checkpoints at 2, dies in step 4
    log = run_dir(config) / "log.csv"
    assert [r.split(",")[0] for r in log.read_text().splitlines()[1:]] == ["1", "2", "3"]
    crash["at"] = None
    train(config, resume=True)
    rows = log.read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    header = rows[0].split(",")
    skipped = [int(r.split(",")[header.index("skipped_steps")]) for r in rows[1:]]
    assert skipped == [1, 1, 1, 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_ddp_on_cpu_keeps_ranks_identical(tmp_path, dataset):
    config = write_config(tmp_path / "ddp.yaml", dataset, tmp_path / "runs")
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [
            str(torchrun),
            "--nnodes",
            "1",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            str(HERE / "ddp_train_worker.py"),
            str(config),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "runs" / "tiny"
    rank0 = torch.load(folder / "rank0.pt", weights_only=True)
    rank1 = torch.load(folder / "rank1.pt", weights_only=True)
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    assert torch.equal(
        torch.load(folder / "last.pt", weights_only=True)["model"]["patch_head.classes.weight"],
        rank0["patch_head.classes.weight"],
    )
    torch.manual_seed(0)
    initial = build_model(load_train_config(config)).state_dict()
    assert not torch.equal(initial["patch_head.classes.weight"], rank0["patch_head.classes.weight"])
    assert (folder / "log.csv").read_text().count("\n") == 5
    # The ranks saw disjoint samples: 4 steps x batch 2 each, none shared.
    seen = [json.loads((folder / f"rank{r}_samples.json").read_text()) for r in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 8
    assert not set(seen[0]) & set(seen[1])


# A skipped step still advances the schedule, on purpose; torch warns about that order.
@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_non_finite_steps_are_skipped_counted_and_bounded(tmp_path, dataset, monkeypatch):
    import training.train as trainer

    real = trainer.detection_criterion

    def poisoned(*args, **kwargs):
        terms = real(*args, **kwargs)
        terms["total"] = terms["total"] * float("nan")
        return terms

    monkeypatch.setattr(trainer, "detection_criterion", poisoned)
    config = load_train_config(write_config(tmp_path / "n.yaml", dataset, tmp_path / "n"))
    torch.manual_seed(config.seed)
    initial = build_model(config).state_dict()
    model = train(config)
    for name, param in model.named_parameters():
        assert torch.equal(param, initial[name]), name
    last = (run_dir(config) / "log.csv").read_text().splitlines()[-1]
    assert last.split(",")[-1] == "4"
    monkeypatch.setattr(trainer, "MAX_SKIPPED_STEPS", 2)
    with pytest.raises(FloatingPointError, match="3 steps had a non-finite loss"):
        train(config.__class__(**{**config.__dict__, "name": "again"}))
