"""The report of `pdn-bench compare`: benchmarks.md (how to reproduce it, the methods, a
table per set, the budget sweep and the targets) and its plots (latency against AP_small
with the budget sweep, one panel per set; cost against resolution)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pdn_bench.budget import AP_SMALL_SHARE, DEFAULT_BUDGETS, SPEEDUP_8K
from pdn_bench.compare_sets import COLORS, DEFAULT_DATA, DENSE_TILED, METHODS, PDN, synth_command
from pdn_bench.sahi_model import SAHI, SAHI_GREEDY, SAHI_SETTINGS

LATENCY_AP_PNG = "benchmarks_latency_ap.png"
COST_PNG = "benchmarks_cost.png"


def _reproduce(results: dict[str, Any], command: str) -> list[str]:
    """How to make this report again: the data sets' pdn-synth commands and the command."""
    made = {d.name: d for d in DEFAULT_DATA}
    synth = [
        synth_command(made[name])
        for name, data in results["sets"].items()
        if name in made and Path(data["data"]) == made[name].path
    ]
    return [
        "## Reproduce",
        "",
        "```",
        *synth,
        command,
        "```",
        "",
        (
            "The held-out sets are made by the pdn-synth commands above when missing. "
            if synth
            else ""
        )
        + "`--budgets` sets the sweep (total windows per frame; default "
        f"{','.join(map(str, DEFAULT_BUDGETS))}); `--out DIR` writes this report, its plots "
        "and results.json into DIR and leaves docs/ alone unless `--report` is given. A missed "
        "target is reported in the Targets table, not in the exit status (2 for bad input: "
        "arguments, a missing checkpoint or data set; 1 if a method fails to run).",
        "",
    ]


def _sahi_lines(sahi: dict[str, Any], sahi_version: str) -> list[str]:
    """The Methods entries of the two SAHI settings."""
    high, real = sahi["settings"][SAHI], sahi["settings"][SAHI_GREEDY]
    return [
        f"- **sahi** and **sahi greedynmm**: `sahi` {sahi_version} `get_sliced_prediction` "
        f"with slices of {sahi['slice']} px, overlap {sahi['overlap']}, "
        "`perform_standard_pred=False` (no extra full-frame pass), class-aware merging. The "
        "detector on each slice is `PdnSliceModel`, a `sahi.models.base.DetectionModel` that "
        f"runs the same weights exported at {sahi['slice']}x{sahi['slice']} with every window "
        f"selected ({sahi['slice_gflops']:.2f} GFLOP per slice) with a fresh temporal state "
        "per slice; GFLOP = per-slice FLOPs x slices. The two rows are the two settings "
        "SAHI's maintainers recommend (its library notes: NMS/IOU and confidence 0.01 \"for "
        'academic papers requiring high mAP", GREEDYNMM/IOS "for real-world applications"): '
        "**sahi** for the highest mAP: "
        f"{high['type']} over {high['match_metric']} > {high['match_threshold']}, confidence "
        f"threshold {high['confidence']}; **sahi greedynmm** for real-world use, SAHI's "
        f"defaults: {real['type']} over {real['match_metric']} > {real['match_threshold']}, "
        f"confidence threshold {real['confidence']} (the DetectionModel default). Every "
        "PatchDriveNet row is scored with all its detections (up to 300 per frame).",
    ]


def _methods(results: dict[str, Any]) -> list[str]:
    """The Methods section and how each figure is measured."""
    return [
        "## Methods",
        "",
        "- **patchdrivenet**: the exported model with its default patch budget, frames in "
        "sequence order with the temporal state carried within a video and reset between "
        "videos (as the node and pdn-eval do).",
        "- **global only**: the same weights with 0 patches (global stream alone).",
        "- **dense tiled**: the same weights over every window of every scale (`--patches "
        "all`): the whole frame at full resolution through the patch stream.",
        *_sahi_lines(results["sahi"], results["sahi_version"]),
        "- **budget N** (the sweep): the same weights exported with N windows per frame, split "
        "across the scales in the ratio of the default budget (largest remainder), run as "
        "patchdrivenet is. Budget 0 is global only; a budget equal to the default is the "
        "patchdrivenet row.",
        "",
        "Latency is per frame from the decoded RGB frame to the detections: for the "
        "PatchDriveNet graphs the copy into the model's planar input, the model and the state "
        "update; for SAHI its whole `get_sliced_prediction` call (slicing, the Python loop "
        "over slices, merging), with the pure model time summed over the slices in its own "
        "column. One untimed warm-up frame per method. GFLOPs: PyTorch's FlopCounterMode, one "
        "multiply-add = 2 FLOPs. AP: COCO AP@[.5:.95] (faster-coco-eval, maxDets 300); "
        "AP_small: objects under 32x32 px; recall at IoU 0.5 and score 0.3 by longer side.",
        "",
    ]


def _summary(rows: dict[str, Any]) -> str:
    """One set in a sentence: PatchDriveNet's speed-up and AP_small share against SAHI (its
    faster setting for speed, its better one for AP_small) and against dense tiling."""
    pdn = rows[PDN]
    sahi_ms = min(rows[m]["latency_ms_p50"] for m in SAHI_SETTINGS)
    sahi_ap = max(rows[m]["AP_small"] for m in SAHI_SETTINGS)
    dense = rows[DENSE_TILED]
    return (
        f"PatchDriveNet: {sahi_ms / pdn['latency_ms_p50']:.1f}x faster than SAHI with "
        f"{pdn['AP_small'] / max(sahi_ap, 1e-9):.2f}x its AP_small; "
        f"{dense['latency_ms_p50'] / pdn['latency_ms_p50']:.1f}x faster than dense tiling "
        f"with {pdn['AP_small'] / max(dense['AP_small'], 1e-9):.2f}x its AP_small."
    )


def _method_table(data: dict[str, Any]) -> list[str]:
    """One set's table of the fixed methods."""
    lines = [
        "| method | GFLOP | p50 ms | p99 ms | model only p50 / p99 ms | peak RSS MiB | AP | "
        "AP_small | recall <16 px | recall 16-32 px |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for method, row in data["methods"].items():
        pure = (
            f"{row['inference_ms_p50']:.0f} / {row['inference_ms_p99']:.0f} "
            f"({row['slices']} slices)"
            if method in SAHI_SETTINGS
            else "same"
        )
        lines.append(
            f"| {method} | {row['gflops']:.1f} | {row['latency_ms_p50']:.1f} | "
            f"{row['latency_ms_p99']:.1f} | {pure} | {row['peak_rss_mb']:.0f} | "
            f"{row['AP']:.3f} | {row['AP_small']:.3f} | {row['recall_0-16px']:.3f} | "
            f"{row['recall_16-32px']:.3f} |"
        )
    return [*lines, "", _summary(data["methods"]), ""]


def _budget_table(data: dict[str, Any], sweep: dict[str, Any]) -> list[str]:
    """One set's budget sweep, each budget against SAHI."""
    lines = [
        "| budget | windows per scale | GFLOP | p50 ms | p99 ms | AP | AP_small | "
        "AP_small / SAHI's | SAHI's latency / this |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, point in zip(data["budgets"], sweep["points"], strict=True):
        default = " (default)" if row["patches"] == data["default_patches"] else ""
        lines.append(
            f"| {row['budget']}{default} | {','.join(map(str, row['patches']))} | "
            f"{row['gflops']:.1f} | {row['latency_ms_p50']:.1f} | {row['latency_ms_p99']:.1f} | "
            f"{row['AP']:.3f} | {row['AP_small']:.3f} | {point['ap_share']:.2f} | "
            f"{point['speedup']:.1f} |"
        )
    return [*lines, ""]


def budget_advice(results: dict[str, Any]) -> list[str]:
    """What the 8K sweep says: the budget that meets the target (or that none does, with the
    best ratios) and the 8K default budget the curve suggests."""
    sweep = results.get("sweeps", {}).get("8K")
    if sweep is None:
        return ["No 8K sweep in this run, so no 8K budget is suggested.", ""]
    data = results["sets"]["8K"]
    default = sum(data["default_patches"])
    goal = f">= {AP_SMALL_SHARE:g}x SAHI's AP_small at >= {SPEEDUP_8K:g}x lower latency"
    if sweep["met"]:
        names = ", ".join(str(p["budget"]) for p in sweep["met"])
        lines = [f"At 8K, budgets reaching {goal}: {names}."]
    else:
        lines = [f"At 8K, no budget of the sweep reaches {goal}."]
        fast, accurate = sweep["best_share_when_fast"], sweep["best_speedup_when_accurate"]
        if fast:
            lines.append(
                f"The best AP_small share at >= {SPEEDUP_8K:g}x lower latency is "
                f"{fast['ap_share']:.2f}x (budget {fast['budget']}, {fast['speedup']:.1f}x)."
            )
        if accurate:
            lines.append(
                f"The best speed-up at >= {AP_SMALL_SHARE:g}x SAHI's AP_small is "
                f"{accurate['speedup']:.1f}x (budget {accurate['budget']})."
            )
    suggested = sweep["suggested"]
    if suggested is None:
        lines.append(f"No budget is {SPEEDUP_8K:g}x faster than SAHI, so none is suggested.")
    else:
        lines.append(
            f"Suggested 8K default budget: {suggested['budget']} windows (the smallest budget "
            f"that meets the target, else the best AP_small among budgets >= {SPEEDUP_8K:g}x "
            f"faster than SAHI); today's default is {default} "
            f"({','.join(map(str, data['default_patches']))} per scale, "
            f"{results['default_budget_source']}; "
            "`pdn-export --height 4320 --width 7680 --patches K1,K2` exports 8K with another)."
        )
    return [" ".join(lines), ""]


def _targets(checks: list[dict[str, Any]]) -> list[str]:
    """The targets table and a line naming what was missed."""
    lines = ["## Targets", ""]
    if not checks:
        return [*lines, "No 4K or 8K set in this run, so no target applies.", ""]
    lines += ["| target | measured | met |", "|---|---|---|"]
    for check in checks:
        lines.append(
            f"| {check['name']} | {check['measured']} | {'met' if check['met'] else 'missed'} |"
        )
    missed = [c for c in checks if not c["met"]]
    lines.append("")
    if missed:
        lines.append(
            "**Missed:** "
            + "; ".join(f"{c['name']} (measured {c['measured']})" for c in missed)
            + "."
        )
    else:
        lines.append("All targets met.")
    return [*lines, ""]


def report(results: dict[str, Any], command: str) -> str:
    """benchmarks.md."""
    lines = [
        "# Benchmarks: PatchDriveNet vs global only, dense tiled and SAHI",
        "",
        f"Produced by `{command}` on {results['machine']}, ONNX Runtime "
        f"{results['onnxruntime']} on the CPU with {results['threads']} threads, weights "
        f"`{results['weights']}`, 1-minute load average {results['load_average_at_start']:.2f} "
        f"when it started; the whole run took {results['wall_s'] / 60:.0f} min. All methods "
        "ran on the same held-out frames, one after the other, "
        "each in a fresh process (peak resident memory = its VmHWM, which includes decoding "
        "the JPEG frames one at a time).",
        "",
        *_reproduce(results, command),
        *_methods(results),
    ]
    for name, data in results["sets"].items():
        lines += [
            f"## {name} ({data['width']}x{data['height']}, {data['frames']} frames, "
            f"{data['objects']} objects, `{data['data']}`)",
            "",
            *_method_table(data),
        ]
        if name in results.get("sweeps", {}):
            lines += [f"Budget sweep at {name}:", "", *_budget_table(data, results["sweeps"][name])]
    lines += [
        "## Choosing a budget",
        "",
        f"![latency against AP_small, budget sweep]({LATENCY_AP_PNG})",
        "",
        *budget_advice(results),
        *_targets(results["targets"]),
        f"![cost against resolution]({COST_PNG})",
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], folder: Path) -> None:
    """LATENCY_AP_PNG (median latency against AP_small: the budget sweep as a curve beside
    the fixed methods, one panel per set) and COST_PNG (GFLOP and median latency against
    resolution)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = results["sets"]
    fig, axes = plt.subplots(1, len(sets), figsize=(5.2 * len(sets), 4.2), squeeze=False)
    for ax, (name, data) in zip(axes[0], sets.items(), strict=True):
        sweep = data["budgets"]
        if sweep:
            xs = [row["latency_ms_p50"] for row in sweep]
            ys = [max(row["AP_small"], 0.0) for row in sweep]
            ax.plot(xs, ys, "o-", color=COLORS[PDN], label="patchdrivenet, budget sweep")
            for row, x, y in zip(sweep, xs, ys, strict=True):
                ax.annotate(
                    str(row["budget"]),
                    (x, y),
                    textcoords="offset points",
                    xytext=(4, 4),
                    fontsize=7,
                )
        for method, row in data["methods"].items():
            ax.scatter(
                row["latency_ms_p50"],
                max(row["AP_small"], 0.0),
                color=COLORS[method],
                marker="*" if method == PDN else "s",
                s=90 if method == PDN else 50,
                zorder=3,
                label=f"{method} (default budget)" if method == PDN else method,
            )
        ax.set_xscale("log")
        ax.set_xlabel("median latency per frame (ms, log scale)")
        ax.set_ylabel("AP_small")
        ax.set_title(f"{name}: latency against AP_small (labels: windows per frame)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(folder / LATENCY_AP_PNG, dpi=100)
    plt.close(fig)

    pixels = [data["width"] * data["height"] / 1e6 for data in sets.values()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in (
        (axes[0], "gflops", "GFLOP per frame"),
        (axes[1], "latency_ms_p50", "median latency (ms)"),
    ):
        for method in METHODS:
            values = [data["methods"][method][key] for data in sets.values()]
            ax.plot(pixels, values, "o-", color=COLORS[method], label=method)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.minorticks_off()
        ax.set_xticks(pixels, list(sets))
        ax.set_xlabel("frame size")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(folder / COST_PNG, dpi=100)
    plt.close(fig)
