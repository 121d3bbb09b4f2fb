"""Export a PatchDriveNet to ONNX (`to_onnx`), and the model half of the `pdn-export` command
(options and export; `pdn_runtime.export_cli` adds the TensorRT engine)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import onnx
import torch
from torch import nn

from pdn_model import __version__
from pdn_model.checkpoint import load_checkpoint, with_config
from pdn_model.config import default_patches
from pdn_model.contract import INPUT_NAMES, OUTPUT_NAMES, input_shapes
from pdn_model.model import DENSE, PatchDriveNet, build
from pdn_model.onnx_graph import check_tensorrt_rules, write_metadata

ONNX_OPSET = 18


class _ContractGraph(nn.Module):
    """The model with positional outputs in contract order, as the exporter needs."""

    def __init__(self, model: PatchDriveNet):
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*inputs)
        return tuple(out[name] for name in OUTPUT_NAMES)


def example_inputs(model: PatchDriveNet, batch: int = 1) -> tuple[torch.Tensor, ...]:
    """Inputs of the contract's shapes: a random frame and a first frame's state."""
    shapes = input_shapes(model.config, batch)
    image = torch.randint(0, 256, shapes["image"], dtype=torch.uint8)
    state = model.initial_state(batch)
    return (image, state["memory"], state["memory_valid"], state["controller_state"])


def to_onnx(model: PatchDriveNet, path: str | Path, batch: int = 1) -> Path:
    """Write `model` (eval mode, its current patch counts) as a static-shape ONNX graph.

    The file carries `pdn.*` metadata (class names, input size, memory shape, preset,
    patch counts, config, project version) and is checked against onnx.checker and the
    TensorRT rules; a violation raises ValueError.
    """
    model = model.eval()
    return export_graph(
        _ContractGraph(model),
        example_inputs(model, batch),
        (INPUT_NAMES, OUTPUT_NAMES),
        path,
        model_metadata(model, batch),
    )


def model_metadata(model: PatchDriveNet, batch: int) -> dict:
    """The `pdn.*` metadata of an export of `model` with `batch` frames per call."""
    cfg = model.config
    return {
        "class_names": list(cfg.class_names),
        "input_size": [cfg.height, cfg.width],
        "batch": batch,
        "memory_shape": list(input_shapes(cfg, batch)["memory"][1:]),
        "controller_dim": cfg.controller_dim,
        "preset": cfg.preset,
        "patch_counts": DENSE if model.patch_counts is None else list(model.patch_counts),
        "config": cfg.to_dict(),
        "version": __version__,
    }


def export_graph(
    module: nn.Module,
    example: tuple[torch.Tensor, ...],
    names: tuple[Sequence[str], Sequence[str]],
    path: str | Path,
    metadata: dict,
) -> Path:
    """Export `module` (positional tensors in and out, named by `names` = (inputs, outputs))
    with torch's default exporter, check it (onnx.checker, TensorRT rules: a violation
    raises ValueError), write `metadata` as `pdn.*` entries and save it to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            example,
            input_names=list(names[0]),
            output_names=list(names[1]),
            opset_version=ONNX_OPSET,
            dynamo=True,
            optimize=True,
            verbose=False,
        )
    graph = program.model_proto
    problems = check_tensorrt_rules(graph)
    if problems:
        raise ValueError("exported graph breaks TensorRT rules:\n  " + "\n  ".join(problems))
    write_metadata(graph, metadata)
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, path)
    return path


class _quiet_exporter:  # noqa: N801 - used as a context manager, reads as a phrase
    """Silence the exporter's per-op log lines (it warns about the absent torchvision)."""

    def __enter__(self) -> None:
        self._levels = {}
        for name in ("torch.onnx", "torch.export", "torch._dynamo"):
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)


def parse_patches(text: str) -> tuple[int, ...] | str:
    """'12,4' -> (12, 4); 'all' -> dense tiling; '0' style shorthands need every scale."""
    if text == DENSE:
        return DENSE
    try:
        return tuple(int(k) for k in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"--patches takes counts per scale like 12,4 or 'all', got {text!r}"
        ) from err


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model options of `pdn-export` (the command line lives in `pdn_runtime.export_cli`,
    which adds the engine options)."""
    parser.add_argument("--preset", default="pdn-s", help="model preset (default pdn-s)")
    parser.add_argument("--height", type=int, default=2160, help="input height in pixels")
    parser.add_argument("--width", type=int, default=3840, help="input width in pixels")
    parser.add_argument("--checkpoint", type=Path, help="trained weights (random if absent)")
    parser.add_argument("--out", type=Path, required=True, help="output .onnx file")
    parser.add_argument("--batch", type=int, default=1, help="cameras per batch (static)")
    parser.add_argument(
        "--patches",
        type=parse_patches,
        help="windows per scale, e.g. 12,4, or 'all' (dense); default: the checkpoint's budget "
        "up to 4K, scaled with the frame's linear size above (8K: twice as many)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for random weights")
    parser.add_argument(
        "--nms-iou",
        type=float,
        help="NMS IoU of the graph: a box overlapping a higher-scored one of its class by more "
        "is dropped (default: the checkpoint's)",
    )
    parser.add_argument(
        "--pre-nms-topk",
        type=int,
        help="candidates NMS compares, best first; its cost grows with the square "
        "(default: the checkpoint's)",
    )
    parser.add_argument(
        "--two-part",
        action="store_true",
        help="also write the model in two parts, OUT.look.onnx and OUT.detect.onnx, for "
        "pdn-detect and very large images (docs/detect.md)",
    )


def export_from_args(args: argparse.Namespace) -> int:
    """Build (or load) the model `args` describe and write its ONNX graph to `args.out`,
    printing progress; 0 when written, 2 (with the reason on stderr) when it cannot be."""
    try:
        if args.checkpoint:
            model = load_checkpoint(args.checkpoint, input_size=(args.height, args.width))
        else:
            torch.manual_seed(args.seed)
            model = build(args.preset, args.height, args.width)
        nms = {"nms_iou": args.nms_iou, "pre_nms_topk": args.pre_nms_topk}
        nms = {key: value for key, value in nms.items() if value is not None}
        if nms:
            model = with_config(model, **nms)
        model.set_patches(default_patches(model.config) if args.patches is None else args.patches)
    except (ValueError, FileNotFoundError) as err:
        print(f"pdn-export: {err}", file=sys.stderr)
        return 2
    source = args.checkpoint or f"random weights (seed {args.seed})"
    print(
        f"pdn-export: {model.config.preset} {args.width}x{args.height}, batch {args.batch}, "
        f"patches {model.window_counts()}, NMS IoU {model.config.nms_iou} over the best "
        f"{model.config.pre_nms_topk}, from {source}",
        flush=True,
    )
    start = time.perf_counter()
    to_onnx(model, args.out, batch=args.batch)
    size_mb = args.out.stat().st_size / 1e6
    print(f"pdn-export: wrote {args.out} ({size_mb:.1f} MB) in {time.perf_counter() - start:.1f} s")
    if args.two_part:
        from pdn_model.two_part import export_two_part  # it imports this module

        start = time.perf_counter()
        look, detect = export_two_part(model, args.out, batch=args.batch)
        print(f"pdn-export: wrote {look} and {detect} in {time.perf_counter() - start:.1f} s")
    return 0
