"""`pdn-bench`: one command for the project's benchmarks, one subcommand each."""

from __future__ import annotations

import argparse
import shlex
import sys

from pdn_bench import backends, compare, int8, large_image, model, node, profile


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="pdn-bench", description=__doc__)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    model.add_arguments(
        sub.add_parser("model", help="PatchDriveNet vs dense tiled vs global only (ONNX Runtime)")
    )
    backends.add_arguments(
        sub.add_parser("backends", help="latency of the inference backends at 1080p, 4K, 8K")
    )
    compare.add_arguments(
        sub.add_parser(
            "compare", help="PatchDriveNet vs global only, dense tiled and SAHI: speed and AP"
        )
    )
    node.add_arguments(
        sub.add_parser("node", help="pdn_node at 4K and 15 Hz: latency, drops, memory (soak)")
    )
    large_image.add_arguments(
        sub.add_parser(
            "large-image",
            help="pdn-detect on 400 Mpx and 1 Gpx tiled TIFFs: pasted objects found, peak memory",
        )
    )
    int8.add_arguments(
        sub.add_parser("int8", help="float and INT8 side by side at 1080p, 4K, 8K: latency, AP")
    )
    profile.add_arguments(
        sub.add_parser("profile", help="float and INT8 model, stage by stage, and the node's path")
    )
    args = parser.parse_args(argv)
    command = shlex.join(["pdn-bench", *argv])
    mains = {
        "model": model.main,
        "backends": backends.main,
        "compare": compare.main,
        "node": node.main,
        "int8": int8.main,
        "profile": profile.main,
        "large-image": large_image.main,
    }
    return mains[args.benchmark](args, command)


if __name__ == "__main__":
    sys.exit(main())
