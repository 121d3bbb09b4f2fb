"""pdn-bag-eval: a bag written by pdn-synth evaluates exactly like the same frames through
pdn-eval, and a truncated bag gives a clear error plus the results read before the damage."""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import pytest
from pdn_tiny import tiny_model
from planted_backend import frame_key, register, write_planted
from rosbags.rosbag2 import Reader, StoragePlugin, Writer

from pdn_model.export import to_onnx
from pdn_ros.tools.bag_eval.cli import main
from pdn_ros.tools.bag_eval.run import BagRun, frame_results, run_bag
from pdn_ros.tools.bag_reader import open_bag
from pdn_runtime.camera_motion import CameraMotion
from training.data import load_frames, read_image
from training.evaluate import evaluate, open_model, run_frames
from training.metrics import METRIC_KEYS
from training.rosbag_io import typestore
from training.synth_cli import main as synth_main
from training.tracking_metrics import TRACKING_KEYS

HEIGHT, WIDTH = 256, 384
COMPARED = (*METRIC_KEYS, "recall_0-16px", "recall_16-32px", "frames", "objects")
COMPARED += ("patch_recall_small", "patches")


def _synth(folder: Path, frames: int, image_format: str) -> tuple[Path, Path]:
    """Two sequences as a COCO set and a bag; returns (annotations.json, bag folder)."""
    args = ["--out", str(folder / "data"), "--sequences", "2", "--frames", str(frames)]
    args += ["--height", str(HEIGHT), "--width", str(WIDTH), "--seed", "8"]
    args += ["--bag", str(folder / "bag"), "--bag-format", image_format]
    assert synth_main(args) == 0
    return folder / "data" / "annotations.json", folder / "bag"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test model exported at the bags' frame size."""
    tiny = tiny_model(seed=3)
    sized = tiny.__class__(tiny.config.replace(height=HEIGHT, width=WIDTH))
    sized.load_state_dict(tiny.state_dict())
    return to_onnx(sized, tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="module")
def jpeg_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """JPEG frames: the bag's CompressedImages are byte for byte the COCO set's files."""
    return _synth(tmp_path_factory.mktemp("jpegbag"), 3, "jpeg")


@pytest.fixture(scope="module")
def raw_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight raw frames: big enough that rosbags writes several mcap chunks."""
    return _synth(tmp_path_factory.mktemp("rawbag"), 4, "raw")[1]


def test_bag_evaluates_like_pdn_eval(model: Path, jpeg_set: tuple[Path, Path], tmp_path) -> None:
    annotations, bag = jpeg_set
    reference, _ = evaluate(model, annotations)
    assert main([str(bag), "--model", str(model), "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key in COMPARED:
        assert metrics[key] == pytest.approx(reference[key], nan_ok=True), key
    assert metrics["complete"] is True and metrics["error"] is None
    assert metrics["frames"] == 6 and metrics["resets"] == 1  # the gap between the sequences
    assert 0.0 < metrics["patch_recall_small"] < 1.0
    for name in ("report.md", "frames.csv", "latency.png", "pr_ap.png"):
        assert (tmp_path / "eval" / name).stat().st_size > 100, name
    assert len(list((tmp_path / "eval" / "samples").glob("*.jpg"))) == 4
    assert len((tmp_path / "eval" / "frames.csv").read_text().splitlines()) == 7
    # the figures that need no annotations are there too
    assert metrics["ground_truth"] is True
    assert metrics["image_topic"] == "/camera/image_raw/compressed"
    assert metrics["frames_processed"] == 6 and metrics["frames_skipped"] == {}
    assert metrics["resets_by_reason"] == {"gap": 1}
    assert metrics["windows_per_frame"] == 5.0  # the model's 3 + 2 windows
    assert set(metrics["windows_by_scale"]) == {"0", "1"}
    assert 0.0 < metrics["window_coverage_min"] <= metrics["window_coverage_max"] < 1.0
    video = cv2.VideoCapture(str(tmp_path / "eval" / "run.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    video.release()

    # frame by frame, the node's path gives pdn-eval's detections and patches exactly
    with_coco = main(
        [str(bag), "--model", str(model), "--coco", str(annotations), "--out", str(tmp_path)]
    )
    assert with_coco == 0
    frames, _ = load_frames(annotations)
    expected = run_frames(open_model(model, (HEIGHT, WIDTH), None), frames)
    with ExitStack() as stack:
        run = run_bag(open_bag(bag, stack), model, "auto", 0, None, None, None, None, 1.0, -1)
    for got, want in zip(frame_results(run).values(), expected, strict=True):
        np.testing.assert_array_equal(got.gt_boxes, want.gt_boxes)
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.scores, want.scores)
        np.testing.assert_array_equal(got.patch_boxes, want.patch_boxes)


def plant(annotations: Path, path: Path) -> Path:
    """Planted detections for the frames of a COCO set: about 70 % of the objects found with
    a few pixels of error (some with the wrong class), plus two false positives per frame,
    scores spread so that AP is neither 0 nor 1."""
    frames, class_names = load_frames(annotations)
    rng = np.random.default_rng(12)
    found = {}
    for frame in frames:
        rows = []
        for box, label in zip(frame.boxes.tolist(), frame.labels.tolist(), strict=True):
            if rng.random() < 0.3:
                continue
            shifted = np.array(box) + rng.uniform(-0.5, 0.5, 4)
            wrong = rng.random() < 0.1
            label = (label + 1) % len(class_names) if wrong else label
            rows.append([*shifted.tolist(), float(rng.uniform(0.3, 0.95)), label])
        for _ in range(2):
            x, y = rng.uniform(0, WIDTH - 40), rng.uniform(0, HEIGHT - 40)
            rows.append([x, y, x + 30, y + 20, float(rng.uniform(0.3, 0.9)), 0])
        found[frame_key(read_image(frame.path).transpose(2, 0, 1))] = rows
    return write_planted(path, (HEIGHT, WIDTH), class_names, found)


def test_pdn_eval_and_pdn_bag_eval_agree_on_a_model_that_detects(
    jpeg_set: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    annotations, bag = jpeg_set
    register(monkeypatch)
    model = plant(annotations, tmp_path / "planted.json")
    reference, _ = evaluate(model, annotations, backend="planted")
    for key in ("AP", "AP50", "AP_small", "recall_0-16px", "recall_16-32px"):
        assert 0.2 < reference[key] < 0.95, (key, reference[key])
    assert 0.0 < reference["patch_recall_small"] < 1.0
    args = [str(bag), "--model", str(model), "--backend", "planted", "--out", str(tmp_path)]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in COMPARED:
        assert metrics[key] == pytest.approx(reference[key]), key
    assert metrics["backend"] == reference["backend"] == "planted detections"
    planted = json.loads(model.read_text())["found"].values()
    assert metrics["detections_per_frame"] == pytest.approx(sum(map(len, planted)) / 6)

    # the same bag without its ground truth: nothing scored, the same annotation-free figures
    blind_out = tmp_path / "blind"
    assert main([*args[:-1], str(blind_out), "--no-ground-truth", "--no-video"]) == 0
    blind = json.loads((blind_out / "metrics.json").read_text())
    assert blind["ground_truth"] is False
    assert not {*COMPARED, *TRACKING_KEYS} & blind.keys() - {"patches"}
    for key in ("frames_processed", "resets_by_reason", "detections_per_frame_by_class"):
        assert blind[key] == metrics[key], key
    for key in ("windows_per_frame", "window_coverage_mean", "tracked_share"):
        assert blind[key] == pytest.approx(metrics[key]), key
    assert "**no ground truth**" in (blind_out / "report.md").read_text()


def test_sqlite3_bag_evaluates_like_its_mcap_original(
    model: Path, jpeg_set: tuple[Path, Path], tmp_path: Path
) -> None:
    _, bag = jpeg_set
    copy = tmp_path / "sqlite_bag"
    with Reader(bag) as reader, Writer(copy, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        connections = {
            c.id: w.add_connection(c.topic, c.msgtype, typestore=typestore())
            for c in reader.connections
        }
        for connection, log_time, raw in reader.messages():
            w.write(connections[connection.id], log_time, raw)
    assert list(copy.glob("*.db3"))
    for source, out in ((bag, "mcap"), (copy, "sqlite3")):
        assert main([str(source), "--model", str(model), "--out", str(tmp_path / out)]) == 0
    mcap, sqlite3 = (
        json.loads((tmp_path / o / "metrics.json").read_text()) for o in ("mcap", "sqlite3")
    )
    for key in COMPARED:
        assert sqlite3[key] == pytest.approx(mcap[key], nan_ok=True), key


def test_truncated_bag_reports_the_error_and_the_frames_before_it(
    model: Path, raw_bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut"
    shutil.copytree(raw_bag, cut)
    mcap = cut / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 5 // 6])  # inside the second mcap chunk
    assert main([str(cut), "--model", str(model), "--out", str(tmp_path / "cut_eval")]) == 1
    err = capsys.readouterr().err
    assert "Truncated record" in err and "frames read before it" in err
    partial = json.loads((tmp_path / "cut_eval" / "metrics.json").read_text())
    assert partial["complete"] is False and "Truncated record" in partial["error"]
    assert "INCOMPLETE" in (tmp_path / "cut_eval" / "report.md").read_text()
    # the first chunk held three whole frames and the fourth image without its ground truth
    assert (partial["frames_read"], partial["frames"]) == (4, 3)
    assert partial["frames_without_ground_truth"] == 1

    # those frames evaluate exactly as the first three of the intact bag
    assert main([str(raw_bag), "--model", str(model), "--limit", "3", "--out", str(tmp_path)]) == 0
    intact = json.loads((tmp_path / "metrics.json").read_text())
    for key in COMPARED:
        assert partial[key] == pytest.approx(intact[key], nan_ok=True), key

    mcap.write_bytes(data[:1000])  # nothing but the header survives
    assert main([str(cut), "--model", str(model), "--out", str(tmp_path / "none")]) == 2
    assert "no topic is readable" in capsys.readouterr().err


def test_mistakes_get_a_clear_message(
    model: Path, jpeg_set: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    annotations, bag = jpeg_set
    small = tiny_model(seed=3)  # exported for 320x192 frames, the bag has 384x256
    wrong = to_onnx(small, tmp_path / "small.onnx")
    for args, message in (
        ([str(bag), "--model", str(wrong)], "export one for this camera"),
        ([str(bag), "--model", str(tmp_path / "absent.onnx")], "absent.onnx"),
        ([str(tmp_path / "nobag"), "--model", str(model)], "does not exist"),
        ([str(bag), "--model", str(model), "--gt-topic", "/camera/camera_info"], "not a"),
    ):
        assert main([*args, "--out", str(tmp_path / "out")]) == 2, args
        assert message in capsys.readouterr().err, args


def test_tracking_metrics_of_exact_detections(
    jpeg_set: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ground-truth object planted as a detection (no false positive, no miss): an
    object can have an id from its second frame in a row on (ByteTrack gives none on the
    first); with no id switch, IDF1, MOTA and the tracked share all follow from the number
    of tracked detections, and almost every object seen twice in a row is tracked (a few
    tiny, fast ones at this frame size move off their box between frames)."""
    annotations, bag = jpeg_set
    register(monkeypatch)
    frames, class_names = load_frames(annotations)
    exact = {
        frame_key(read_image(f.path).transpose(2, 0, 1)): [
            [*b, 0.9, label] for b, label in zip(f.boxes.tolist(), f.labels.tolist(), strict=True)
        ]
        for f in frames
    }
    model = write_planted(tmp_path / "exact.json", (HEIGHT, WIDTH), class_names, exact)
    args = [str(bag), "--model", str(model), "--backend", "planted", "--out", str(tmp_path)]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    with ExitStack() as stack:
        run = run_bag(open_bag(bag, stack), model, "planted", 0, None, None, None, None, 1.0, -1)
    seen: set[str] = set()
    total = second = 0
    for row in run.rows:
        ids = set(row.truth_tracks)
        seen = set() if row.result.found.reset else seen
        total, second, seen = total + len(ids), second + len(ids & seen), ids
    assert metrics["tracking_frames"] == 6 and metrics["gt_objects"] == total
    # the sequences number their objects anew: the same id string is another object there
    assert metrics["gt_tracks"] == sum(
        len({t for r in run.rows[i : i + 3] for t in r.truth_tracks}) for i in (0, 3)
    )
    tracked = metrics["tracked_detections"]
    assert 0.9 * second <= tracked <= second < total
    assert metrics["IDSW"] == 0
    assert metrics["IDF1"] == pytest.approx(2 * tracked / (tracked + total))
    assert metrics["MOTA"] == pytest.approx(tracked / total)
    assert metrics["tracked_share"] == pytest.approx(tracked / total)


def test_every_runs_every_nth_image_as_a_slower_node_would(
    model: Path, jpeg_set: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--every 2 runs images 0, 2, 4 of the six (the others are dropped, not rows), each as
    it ran with every image; 0 is refused. Camera motion is estimated once per run image,
    and not at all when the tracker will not use it (--no-track-camera-motion)."""
    _, bag = jpeg_set
    estimated: list[tuple[float, float]] = []
    update = CameraMotion.update

    def counted(self: CameraMotion, image: np.ndarray) -> tuple[float, float]:
        estimated.append(offset := update(self, image))
        return offset

    monkeypatch.setattr(CameraMotion, "update", counted)
    with ExitStack() as stack:

        def run_every(every: int, camera_motion: bool = True) -> BagRun:
            reader = open_bag(bag, stack)
            return run_bag(
                reader,
                model,
                "onnxruntime",
                1,
                None,
                None,
                None,
                None,
                1.0,
                -1,
                every=every,
                camera_motion=camera_motion,
            )

        runs = {every: run_every(every) for every in (1, 2)}
        assert len(estimated) == 6 + 3
        assert [r.view_offset for r in runs[2].rows] == estimated[6:]
        still = run_every(1, camera_motion=False)
        assert len(estimated) == 9
        assert {r.view_offset for r in still.rows} == {(0.0, 0.0)}
        with pytest.raises(ValueError, match="every"):
            run_every(0)
    every_image, halved = runs[1].rows, runs[2].rows
    assert len(every_image) == 6
    assert [r.stamp_ns for r in halved] == [r.stamp_ns for r in every_image[::2]]
    assert [r.truth_tracks for r in halved] == [r.truth_tracks for r in every_image[::2]]
