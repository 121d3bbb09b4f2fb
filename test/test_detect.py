"""`pdn-detect` on a folder of JPEGs, on an MP4 and on bad input, with a tiny two-part
export: COCO detections in the sources' pixels, temporal memory across a video and a numbered
sequence (reset between unrelated images), annotated output, errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pdn_tiny import HEIGHT, WIDTH, tiny_model

from pdn_model.two_part import export_two_part
from pdn_runtime.detect_cli import main
from pdn_runtime.detect_sources import expand, plan
from pdn_runtime.image_reader import ArrayReader
from pdn_runtime.large_image import ImageDetections, TiledDetector
from pdn_runtime.two_part import TwoPartModel

SCORE = 0.05


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A tiny model's two-part export (tiny.look.onnx, tiny.detect.onnx) named by tiny.onnx."""
    path = tmp_path_factory.mktemp("detect") / "tiny.onnx"
    export_two_part(tiny_model(seed=3), path)
    return path


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth random RGB pixels (survive JPEG and MP4 compression better than noise)."""
    small = rng.integers(0, 256, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def as_coco(found: ImageDetections) -> list[tuple[int, list[float]]]:
    """(category_id, bbox xywh) of each detection, as detections.json holds them."""
    return [
        (int(label) + 1, [round(v, 2) for v in (x0, y0, x1 - x0, y1 - y0)])
        for (x0, y0, x1, y1), label in zip(found.boxes.tolist(), found.labels, strict=True)
    ]


def written(document: dict, image_id: int) -> list[tuple[int, list[float]]]:
    return [
        (a["category_id"], a["bbox"]) for a in document["annotations"] if a["image_id"] == image_id
    ]


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_folder_of_jpegs_sequence_carries_memory_unrelated_images_reset(model_path, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    folder.mkdir()
    sizes = {"frame_0001.jpg": (HEIGHT, WIDTH), "frame_0002.jpg": (HEIGHT, WIDTH)}
    sizes |= {"small.jpg": (150, 200), "wide.jpg": (HEIGHT, 2 * WIDTH + 40)}
    for name, (h, w) in sizes.items():
        cv2.imwrite(str(folder / name), random_image(rng, h, w), [cv2.IMWRITE_JPEG_QUALITY, 95])
    out = tmp_path / "out"
    assert (
        main([str(folder), "--model", str(model_path), "--out", str(out), "--score", "0.05"]) == 0
    )
    document = json.loads((out / "detections.json").read_text())
    names = [Path(i["file_name"]).name for i in document["images"]]
    assert names == ["frame_0001.jpg", "frame_0002.jpg", "small.jpg", "wide.jpg"]
    assert [(i["height"], i["width"]) for i in document["images"]] == list(sizes.values())
    assert [c["name"] for c in document["categories"]][:2] == ["person", "vehicle"]
    # The same numbers from the detector run by hand: frame 2 with frame 1's memory, the
    # unrelated images from a fresh state.
    detector = TiledDetector(TwoPartModel(model_path), SCORE)
    pixels = {name: read_rgb(folder / name) for name in sizes}
    detector.detect(ArrayReader(pixels["frame_0001.jpg"]))
    carried = detector.detect(ArrayReader(pixels["frame_0002.jpg"]))
    detector.new_stream()
    fresh = detector.detect(ArrayReader(pixels["frame_0002.jpg"]))
    assert written(document, 2) == as_coco(carried) != as_coco(fresh)
    for image_id, name in ((3, "small.jpg"), (4, "wide.jpg")):
        detector.new_stream()
        found = detector.detect(ArrayReader(pixels[name]))
        assert written(document, image_id) == as_coco(found)
    assert len(document["annotations"]) > 10
    for a in document["annotations"]:
        image = document["images"][a["image_id"] - 1]
        x, y, w, h = a["bbox"]
        assert 0 <= x <= x + w <= image["width"] and 0 <= y <= y + h <= image["height"]
        assert a["score"] >= SCORE
    assert read_rgb(out / "wide.jpg").shape == (HEIGHT, 2 * WIDTH + 40, 3)


def test_mp4_frames_share_memory_and_an_annotated_video_is_written(model_path, tmp_path):
    rng = np.random.default_rng(1)
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10, (WIDTH, HEIGHT))
    for _ in range(4):
        writer.write(random_image(rng, HEIGHT, WIDTH))
    writer.release()
    out = tmp_path / "out"
    assert main([str(video), "--model", str(model_path), "--out", str(out), "--score", "0.05"]) == 0
    document = json.loads((out / "detections.json").read_text())
    assert [i["frame_index"] for i in document["images"]] == [0, 1, 2, 3]
    assert {i["file_name"] for i in document["images"]} == {str(video)}
    detector = TiledDetector(TwoPartModel(model_path), SCORE)
    capture = cv2.VideoCapture(str(video))
    for image_id in range(1, 5):
        frame = cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB)
        assert written(document, image_id) == as_coco(detector.detect(ArrayReader(frame)))
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        WIDTH,
        HEIGHT,
    )


def test_bad_sources_are_named_and_the_results_so_far_kept(model_path, tmp_path, capsys):
    rng = np.random.default_rng(2)
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), random_image(rng, HEIGHT, WIDTH))
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    avi = tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(avi), cv2.VideoWriter_fourcc(*"MJPG"), 10, (WIDTH, HEIGHT))
    for _ in range(6):
        writer.write(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8))
    writer.release()
    avi.write_bytes(avi.read_bytes()[: int(avi.stat().st_size * 0.6)])
    mp4 = tmp_path / "cut.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    out = tmp_path / "out"
    sources = [str(bad), str(avi), str(mp4), str(good), str(tmp_path / "missing.png")]
    assert main([*sources, "--model", str(model_path), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: cannot read the image" in err
    assert f"{avi}: the video ended after" in err and "of 6 frames" in err
    assert f"{mp4}: cannot open the video" in err
    assert f"{tmp_path / 'missing.png'}: no such file" in err
    document = json.loads((out / "detections.json").read_text())
    files = [Path(i["file_name"]).name for i in document["images"]]
    assert files[-1] == "good.jpg" and 1 <= files.count("cut.avi") < 6
    assert len(document["info"]["errors"]) == 4


def test_missing_model_says_how_to_export_it(tmp_path, capsys):
    image = tmp_path / "a.jpg"
    cv2.imwrite(str(image), np.zeros((16, 16, 3), np.uint8))
    assert main([str(image), "--model", str(tmp_path / "m.onnx"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "m.look.onnx" in err and "pdn-export" in err and "--two-part" in err


def test_numbered_images_continue_a_stream_only_when_consecutive(tmp_path):
    names = ["f_9.jpg", "f_10.jpg", "f_12.jpg", "g_13.jpg", "f_13.png", "clip.mp4", "x.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    files, problems = expand([str(tmp_path), str(tmp_path / "*.png"), "nothing*.jpg"])
    assert [f.name for f in files] == [
        "clip.mp4",
        "f_9.jpg",
        "f_10.jpg",
        "f_12.jpg",
        "f_13.png",
        "g_13.jpg",
        "f_13.png",
    ]
    assert problems == ["nothing*.jpg: no image or video file matches"]
    assert [(s.kind, s.continues) for s in plan(files)] == [
        ("video", False),
        ("image", False),
        ("image", True),
        ("image", False),
        ("image", False),
        ("image", False),
        ("image", False),
    ]
