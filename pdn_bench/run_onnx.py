"""Run an exported model in a fresh process and print its latency and peak memory as JSON.

`python -m pdn_bench.run_onnx MODEL.onnx --runs N --threads T`: the process imports only
NumPy, ONNX and ONNX Runtime, so its peak resident memory is what deployment would need.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import onnx

from pdn_bench.measure import latency_stats, onnxruntime_session, peak_rss_mb
from pdn_model.contract import INPUT_NAMES
from pdn_model.onnx_graph import read_metadata


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    meta = read_metadata(onnx.load(args.model, load_external_data=False))
    sess = onnxruntime_session(args.model, args.threads)
    rng = np.random.default_rng(0)
    feeds = {}
    for spec in sess.get_inputs():
        if spec.name == "image":
            feeds[spec.name] = rng.integers(0, 256, spec.shape, dtype=np.uint8)
        else:
            feeds[spec.name] = np.zeros(spec.shape, dtype=np.float32)
    assert set(feeds) == set(INPUT_NAMES)
    times = []
    for _ in range(args.runs + 1):
        start = time.perf_counter()
        sess.run(None, feeds)
        times.append(time.perf_counter() - start)
    print(json.dumps({
        "input_size": meta["input_size"],
        **latency_stats(times[1:]),
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
