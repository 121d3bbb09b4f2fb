"""pdn_runtime.StreamRunner, the one per-stream loop, on a NumPy stand-in model whose outputs
depend on each row's image and state: streams in one batch get exactly what batch-1 runs
give them, states reset by the policy or a new stream, and the detections are selected and
copied as documented."""

from __future__ import annotations

import numpy as np
import pytest

from pdn_runtime import Backend, FrameMark, ModelInfo, StreamPolicy, StreamRunner
from pdn_runtime.stream import select_detections

S = 1_000_000_000
HEIGHT, WIDTH, DETECTIONS, PATCHES = 8, 12, 6, 3
MEMORY = (3, 2, 4)  # T slots x M tokens x C channels
CONTROLLER = 5


class RowModel(Backend):
    """Per row: scores from the image's mean and the state's sums (so a wrong row or a lost
    state shows), boxes from the row's pixels, padding with score 0 at the end."""

    kind = "row-model"
    OPTIONS = frozenset()

    def __init__(self, batch: int) -> None:
        self.info = ModelInfo(
            height=HEIGHT,
            width=WIDTH,
            batch=batch,
            class_names=("a", "b"),
            memory_shape=MEMORY,
            controller_dim=CONTROLLER,
            output_shapes={},
        )
        self.out = {
            "boxes": np.zeros((batch, DETECTIONS, 4), np.float32),
            "scores": np.zeros((batch, DETECTIONS), np.float32),
            "labels": np.zeros((batch, DETECTIONS), np.int32),
            "patch_boxes": np.zeros((batch, PATCHES, 4), np.float32),
            "patch_scores": np.zeros((batch, PATCHES), np.float32),
            "patch_scale": np.zeros((batch, PATCHES), np.int32),
            "frame_tokens": np.zeros((batch, *MEMORY[1:]), np.float32),
            "next_controller_state": np.zeros((batch, CONTROLLER), np.float32),
        }

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        image = inputs["image"].astype(np.float32)
        mean = image.mean(axis=(1, 2, 3))
        memory = (inputs["memory"] * inputs["memory_valid"][:, :, None, None]).sum(axis=(1, 2, 3))
        control = inputs["controller_state"].sum(axis=1)
        rank = np.arange(DETECTIONS - 1, dtype=np.float32)
        raw = (mean[:, None] * (rank + 1) + memory[:, None] + 3 * control[:, None]) % 1.0
        self.out["scores"][:, :-1] = np.sort(0.05 + 0.9 * raw, axis=1)[:, ::-1]
        self.out["scores"][:, -1] = 0.0  # padding
        corner = image[:, 0, :DETECTIONS, :2].reshape(-1, DETECTIONS, 2) / 32.0
        self.out["boxes"][...] = np.concatenate([corner, corner + 1.0 + mean[:, None, None]], -1)
        self.out["labels"][...] = (image[:, 1, 0, :DETECTIONS] > 127).astype(np.int32)
        self.out["patch_boxes"][...] = mean[:, None, None] + np.arange(PATCHES * 4).reshape(-1, 4)
        self.out["patch_scores"][...] = (raw[:, :PATCHES] + 0.5) / 2
        self.out["patch_scale"][...] = np.arange(PATCHES) % 2
        self.out["frame_tokens"][...] = mean[:, None, None] / 255.0 + control[:, None, None]
        self.out["next_controller_state"][...] = (mean[:, None] / 255.0 + control[:, None]) / 2
        return dict(self.out)

    def describe(self) -> str:
        return "row model"


def frames(seed: int, count: int) -> list[np.ndarray]:
    """`count` random planar frames [1,3,H,W]."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (1, 3, HEIGHT, WIDTH), np.uint8) for _ in range(count)]


def assert_same(got, want) -> None:
    """Two FrameDetections hold the same values."""
    for name in ("boxes", "scores", "labels", "patch_boxes", "patch_scores", "patch_scale"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
    assert got.reset == want.reset


def test_two_streams_in_one_batch_get_what_batch_1_runs_give_them():
    policy = StreamPolicy(reset_gap_ns=S // 2, max_detections=4)
    cameras = [frames(1, 4), frames(2, 5)]  # camera 0 misses one call
    # camera 1 has a gap before its fourth frame, camera 0 does not
    stamps = [[i * S // 10 for i in range(4)], [0, S // 10, 2 * S // 10, 2 * S, 2 * S + S // 10]]
    alone = [StreamRunner(RowModel(batch=1)) for _ in cameras]
    expected = [
        [
            runner.step(image, policy, FrameMark(stamp, WIDTH, HEIGHT))
            for image, stamp in zip(cameras[c], stamps[c], strict=True)
        ]
        for c, runner in enumerate(alone)
    ]
    assert [f.reset for f in expected[1]] == [None, None, None, "gap", None]
    together = StreamRunner(RowModel(batch=2))
    taken = [0, 0]
    for rows in ([0, 1], [0, 1], [1], [0, 1], [0, 1]):
        for row in rows:
            together.image[row] = cameras[row][taken[row]][0]
            together.begin(row, FrameMark(stamps[row][taken[row]], WIDTH, HEIGHT), policy)
        for row, found in zip(rows, together.run(rows, policy), strict=True):
            assert_same(found, expected[row][taken[row]])
            taken[row] += 1
    assert taken == [4, 5]
    for row, runner in enumerate(alone):
        for name, array in runner.streams[0].state.inputs().items():
            np.testing.assert_array_equal(
                together.streams[row].state.inputs()[name], array, err_msg=name
            )


def test_a_new_stream_forgets_the_state_and_the_policy_resets_it():
    runner = StreamRunner(RowModel(batch=1))
    images = frames(3, 3)
    first = runner.step(images[0], new_stream=True)
    runner.step(images[1])
    assert runner.streams[0].state.memory_valid.tolist() == [[1.0, 1.0, 0.0]]
    again = runner.step(images[0], new_stream=True)
    assert_same(again, first)
    runner.step(images[1], mark=FrameMark(5 * S, WIDTH, HEIGHT))
    back = runner.step(images[0], mark=FrameMark(4 * S, WIDTH, HEIGHT))
    assert back.reset == "time_backwards"
    assert runner.streams[0].state.memory_valid.tolist() == [[1.0, 0.0, 0.0]]
    short = StreamRunner(RowModel(batch=1))
    for image in images:
        short.step(image, StreamPolicy(memory_length=1))
    assert short.streams[0].state.memory_valid.tolist() == [[1.0, 0.0, 0.0]]


def test_detections_are_selected_best_first_and_copied_out_of_the_buffers():
    scores = np.array([0.2, 0.9, 0.0, 0.5, 0.9, 3e-7], np.float32)
    assert select_detections(scores, 0.0, None).tolist() == [1, 4, 3, 0]  # padding dropped
    assert select_detections(scores, 0.5, None).tolist() == [1, 4, 3]  # threshold inclusive
    assert select_detections(scores, 0.0, 2).tolist() == [1, 4]
    model = RowModel(batch=1)
    runner = StreamRunner(model)
    found = runner.step(frames(4, 1)[0], StreamPolicy(score_threshold=0.3, max_detections=3))
    kept = model.out["scores"][0][model.out["scores"][0] >= 0.3][:3]
    np.testing.assert_array_equal(found.scores, kept)
    assert 0 < len(found.scores) <= 3 and found.labels.dtype == np.int64
    assert (found.width, found.height) == (WIDTH, HEIGHT) and found.inference_s > 0
    model.out["boxes"].fill(-1.0)  # the next frame overwrites the buffers
    model.out["patch_boxes"].fill(-1.0)
    assert (found.boxes >= 0).all() and (found.patch_boxes >= 0).all()


def test_a_runner_needs_one_stream_per_batch_row():
    from pdn_runtime import Stream

    model = RowModel(batch=2)
    with pytest.raises(ValueError, match="one stream per batch row"):
        StreamRunner(model, [Stream(model.info)])
