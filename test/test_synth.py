"""Synthetic scenes (training.synth), their COCO files (training.coco) and pdn-synth."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from pdn_model.config import DEFAULT_CLASSES
from training.coco import CocoFormatError, read_coco, write_coco
from training.synth import (
    CLASS_NAMES,
    MIN_BOX_SIDE,
    SIGN,
    SceneConfig,
    SceneSequence,
    draw_object,
    generate_sequence,
)
from training.synth_cli import main

SMALL = SceneConfig(height=540, width=960, frames=4)
MAGENTA = (255, 0, 255)  # in no palette: every changed pixel belongs to the object


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels where two RGB images differ."""
    return np.any(a != b, axis=2)


def _sides(boxes: np.ndarray) -> np.ndarray:
    """Longer side of each xyxy box."""
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def test_class_names_are_the_models() -> None:
    assert CLASS_NAMES == DEFAULT_CLASSES == ("person", "vehicle", "bicycle", "animal", "sign")


@pytest.mark.parametrize("label", range(len(CLASS_NAMES)))
def test_single_object_box_is_its_drawn_pixels(label: int) -> None:
    """The box equals the bounding box of the changed pixels, at any size, facing, sub-pixel
    position, and when clipped by the image border."""
    rng = np.random.default_rng(label)
    for size, cx, bottom, facing in (
        (7.0, 40.3, 60.7, 1),
        (19.5, 80.55, 120.2, -1),
        (57.0, 150.0, 180.0, 1),
        (150.0, 200.25, 300.9, -1),
        (120.0, 10.0, 120.0, 1),  # clipped on the left
        (120.0, 300.0, 330.0, -1),  # clipped at the bottom and on the right
    ):
        canvas = np.full((320, 320, 3), MAGENTA, np.uint8)
        box = draw_object(canvas, label, cx, bottom, size, rng, facing)
        assert box is not None
        ys, xs = np.nonzero(_changed(canvas, np.full_like(canvas, MAGENTA)))
        drawn = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        np.testing.assert_array_equal(box, drawn)
        if cx - size > 0 and cx + size < 320 and bottom < 320:
            assert abs(_sides(box[None])[0] - size) <= 1.5  # the icon fills its nominal size


def test_scene_truth_is_exactly_what_is_drawn() -> None:
    """Outside all boxes the frame is the pure background; each box is touched on all four
    sides by drawn pixels; the layout-only path gives the same truth."""
    sequence = SceneSequence(3, SMALL)
    for t in (0, 3):
        frame = sequence.render(t)
        assert frame.image.dtype == np.uint8 and frame.image.shape == (540, 960, 3)
        assert frame.image.flags.c_contiguous
        changed = _changed(frame.image, sequence.background(t))
        covered = np.zeros_like(changed)
        assert len(frame.boxes) > 10
        for x1, y1, x2, y2 in frame.boxes.astype(int):
            region = changed[y1:y2, x1:x2]
            assert region[0].any() and region[-1].any()
            assert region[:, 0].any() and region[:, -1].any()
            covered[y1:y2, x1:x2] = True
        assert not (changed & ~covered).any()
        truth = sequence.truth(t)
        for name in ("boxes", "labels", "track_ids", "ignore"):
            np.testing.assert_array_equal(getattr(truth, name), getattr(frame, name))
        assert len(np.unique(frame.track_ids)) == len(frame.track_ids)
        assert ((frame.boxes >= 0) & (frame.boxes <= [960, 540, 960, 540])).all()
        assert (_sides(frame.boxes)[~frame.ignore] >= MIN_BOX_SIDE).all()


def test_background_has_sky_and_textured_ground() -> None:
    sequence = SceneSequence(6, SceneConfig(height=540, width=960, frames=1, grain=0))
    background = sequence.background(0).astype(float)
    sky, ground = background[: sequence.horizon - 30], background[sequence.horizon + 5 :]
    assert sky[:, :, 2].mean() > ground[:, :, 2].mean()  # bluer above than below
    sky_steps = np.abs(np.diff(sky, axis=1)).mean()  # gradient and soft clouds
    ground_steps = np.abs(np.diff(ground, axis=1)).mean()  # texture
    assert sky_steps < 0.5 and ground_steps > 2.0
    assert (ground.std(axis=1).mean(axis=1) > 2).mean() > 0.9  # texture on every row


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a = list(generate_sequence(11, SMALL))
    b = SceneSequence(11, SMALL)
    for t in (2, 0):  # any order
        frame = b.render(t)
        np.testing.assert_array_equal(frame.image, a[t].image)
        np.testing.assert_array_equal(frame.boxes, a[t].boxes)
        np.testing.assert_array_equal(frame.track_ids, a[t].track_ids)
    other = SceneSequence(12, SMALL).render(0)
    assert not np.array_equal(other.image, a[0].image)
    assert not np.array_equal(SceneSequence((11, 1), SMALL).render(0).image, a[0].image)


def test_size_spread_at_4k() -> None:
    """About 70 % of the objects are 6-32 px on their longer side, a few exceed 100 px, and a
    4K frame holds roughly 40-80 of them (ground truth only: no pixels rendered)."""
    config = SceneConfig(frames=1)
    sides, counts = [], []
    for seed in range(12):
        truth = SceneSequence(seed, config).truth(0)
        sides.append(_sides(truth.boxes[~truth.ignore]))
        counts.append(len(truth.boxes))
    everything = np.concatenate(sides)
    small = np.mean((everything >= 6) & (everything <= 32))
    assert 0.6 <= small <= 0.8, small
    assert (everything > 100).sum() >= 12
    assert everything.max() <= 450
    assert 30 <= np.median(counts) <= 90, counts


def test_sizes_scale_with_height() -> None:
    """A 1080p scene is a half-size 4K one: the same seed gives half the object sizes."""
    big = SceneSequence(5, SceneConfig(frames=1)).truth(0)
    half = SceneSequence(5, SceneConfig(height=1080, width=1920, frames=1)).truth(0)
    ratio = np.median(_sides(half.boxes)) / np.median(_sides(big.boxes))
    assert 0.4 <= ratio <= 0.6, ratio


def test_motion_is_smooth_and_the_camera_pans() -> None:
    config = SceneConfig(height=540, width=960, frames=40, pan_speed=24.0, grain=0)
    sequence = SceneSequence(2, config)
    truths = [sequence.truth(t) for t in range(config.frames)]
    pans = np.diff([truth.camera_x for truth in truths])
    assert np.abs(pans).max() <= 24.0 * config.scale + 1 and np.abs(pans).sum() > 10
    static_checked = steps_checked = 0
    for before, after in zip(truths, truths[1:], strict=False):
        pan = after.camera_x - before.camera_x
        index = {track: k for k, track in enumerate(before.track_ids)}
        for k, track in enumerate(after.track_ids):
            if track not in index:
                continue
            a, b = before.boxes[index[track]], after.boxes[k]
            inside = all(v[0] > 0 and v[2] < 960 and v[1] > 0 and v[3] < 540 for v in (a, b))
            if not inside or before.ignore[index[track]] or after.ignore[k]:
                continue
            step = (b[0] + b[2]) / 2 - (a[0] + a[2]) / 2 + pan
            assert abs(step) <= 0.25 * _sides(a[None])[0] + 2, (track, step)
            assert abs((b[1] + b[3]) / 2 - (a[1] + a[3]) / 2) <= 0.1 * _sides(a[None])[0] + 2
            steps_checked += 1
            if after.labels[k] == SIGN:  # static: moves exactly against the pan
                np.testing.assert_array_equal(b - a, [-pan, 0, -pan, 0])
                static_checked += 1
    assert steps_checked > 200 and static_checked > 10
    first, last = set(truths[0].track_ids), set(truths[-1].track_ids)
    assert first - last and last - first  # objects left and entered the view


def test_config_and_frame_index_are_checked() -> None:
    with pytest.raises(ValueError, match="height must be an integer >= 16"):
        SceneConfig(height=8)
    with pytest.raises(ValueError, match="frames must be an integer >= 1"):
        SceneConfig(frames=0)
    with pytest.raises(ValueError, match="objects"):
        SceneConfig(objects=(5, 2))
    with pytest.raises(ValueError, match="seed"):
        SceneSequence(-1, SMALL)
    with pytest.raises(IndexError):
        SceneSequence(0, SMALL).render(SMALL.frames)


def test_coco_round_trip(tmp_path: Path) -> None:
    frames = list(SceneSequence(4, SceneConfig(height=270, width=480, frames=2)))
    path = write_coco(tmp_path, [("seq0000", frames)])
    dataset = read_coco(path)
    assert [c.name for c in dataset.categories] == list(CLASS_NAMES)
    assert [c.id for c in dataset.categories] == [1, 2, 3, 4, 5]
    assert [v.name for v in dataset.videos] == ["seq0000"]
    grouped = dataset.annotations_by_image()
    for image, frame in zip(dataset.images, frames, strict=True):
        assert (image.width, image.height, image.frame_id) == (480, 270, frame.frame_index)
        assert image.file_name == f"images/seq0000_{frame.frame_index:06d}.jpg"
        annotations = grouped[image.id]
        boxes = [
            (a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3])
            for a in annotations
        ]
        np.testing.assert_array_equal(boxes, frame.boxes)
        assert [a.category_id - 1 for a in annotations] == frame.labels.tolist()
        assert [a.track_id for a in annotations] == frame.track_ids.tolist()
        assert [a.iscrowd for a in annotations] == frame.ignore.tolist()
        decoded = cv2.cvtColor(cv2.imread(str(dataset.image_path(image))), cv2.COLOR_BGR2RGB)
        assert np.abs(decoded.astype(int) - frame.image).mean() < 3.0  # RGB order kept


def _valid_document() -> dict:
    """A small valid COCO document."""
    return {
        "images": [{"id": 1, "file_name": "images/a.jpg", "width": 64, "height": 48}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4], "iscrowd": 0}
        ],
        "categories": [{"id": 1, "name": "person"}],
    }


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: d.pop("images"), "missing top-level key 'images'"),
        (lambda d: d["images"][0].pop("file_name"), "missing key 'file_name'"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "bbox must have 4 numbers"),
        (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "negative size"),
        (lambda d: d["annotations"][0].update(image_id=7), "unknown image_id 7"),
        (lambda d: d["annotations"][0].update(category_id=9), "unknown category_id 9"),
        (lambda d: d["annotations"][0].update(iscrowd=2), "'iscrowd' must be 0 or 1"),
        (lambda d: d["images"].append(dict(d["images"][0])), "duplicate id 1"),
    ],
)
def test_read_coco_names_the_file_and_the_problem(tmp_path: Path, corrupt, message: str) -> None:
    document = _valid_document()
    corrupt(document)
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(document))
    with pytest.raises(CocoFormatError, match=message) as raised:
        read_coco(path)
    assert str(path) in str(raised.value)


def test_read_coco_missing_file_and_bad_json(tmp_path: Path) -> None:
    path = tmp_path / "annotations.json"
    with pytest.raises(FileNotFoundError, match=str(path)):
        read_coco(path)
    path.write_text('{"images": [')
    with pytest.raises(CocoFormatError, match="invalid JSON") as raised:
        read_coco(path)
    assert str(path) in str(raised.value)
    path.write_text(json.dumps(_valid_document()))
    assert read_coco(path).annotations[0].bbox == (1.0, 2.0, 3.0, 4.0)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run pdn-synth in-process; returns (exit status, stderr)."""
    status = main(argv)
    return status, capsys.readouterr().err


def test_cli_writes_a_deterministic_dataset_and_bag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--sequences", "2", "--frames", "2", "--height", "90", "--width", "160"]
    first = tmp_path / "a"
    status, _ = _run(
        [*args, "--out", str(first), "--bag", str(tmp_path / "bag"), "--bag-format", "jpeg"], capsys
    )
    assert status == 0
    dataset = read_coco(first / "annotations.json")
    assert len(dataset.images) == 4 and len(dataset.videos) == 2
    assert all(dataset.image_path(image).is_file() for image in dataset.images)
    assert (tmp_path / "bag" / "metadata.yaml").is_file()
    assert (tmp_path / "bag" / "bag.mcap").is_file()
    second = tmp_path / "b"
    assert _run([*args, "--out", str(second)], capsys)[0] == 0
    for image in dataset.images:
        assert (first / image.file_name).read_bytes() == (second / image.file_name).read_bytes()
    assert (first / "annotations.json").read_bytes() == (second / "annotations.json").read_bytes()
    assert _run([*args, "--out", str(second), "--seed", "1", "--overwrite"], capsys)[0] == 0
    assert (first / "annotations.json").read_bytes() != (second / "annotations.json").read_bytes()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--height", "0"], "--height: must be at least 1"),
        (["--frames", "0"], "--frames: must be at least 1"),
        (["--objects", "5"], "expected MIN,MAX"),
        (["--objects", "9,3"], "need 0 <= MIN <= MAX"),
        (["--fps", "0"], "fps must be positive"),
        (["--width", "8"], "width must be an integer >= 16"),
        (["--bag-format", "jpeg"], "--bag-format needs --bag"),
        (["--bag-format", "png", "--bag", "x"], "invalid choice"),
    ],
)
def test_cli_refuses_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    status, err = _run(
        ["--out", str(tmp_path / "out"), "--height", "90", "--width", "160", *extra], capsys
    )
    assert status == 2
    assert message in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_non_empty_folder_without_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    status, err = _run(["--out", str(tmp_path), "--height", "90", "--width", "160"], capsys)
    assert status == 2 and "not empty" in err and "--overwrite" in err
    args = ["--out", str(tmp_path), "--height", "90", "--width", "160", "--frames", "1"]
    assert _run([*args, "--overwrite"], capsys)[0] == 0
    assert (tmp_path / "keep.txt").read_text() == "mine"  # only the dataset is replaced
