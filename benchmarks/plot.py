"""The benchmark targets at a glance: the figure of docs/benchmarks.md, drawn from a results file.

Run: ``.venv/bin/python -m benchmarks.plot`` (reads ``benchmarks/results/latest.json``,
writes ``docs/images/benchmarks.png``), or with ``--results`` and ``--output``.

One horizontal bar per target of the run, measured against its limit, in three
panels by unit: time ratios to the baseline (forward passes, replays, the
executors' costs), nanoseconds that symgraph_torch's hook adds to a plain
``nn.Module`` call, and how build time grows with graph size. Each bar is green
when its target passed and red when it missed, the limit is a black tick, and
torch targets show their floor (the same network as straight-line functional
calls) as a hollow dot. Nothing is measured here: the figure is only as new as
the results file, whose ``--publish`` run the page describes.
"""

from __future__ import annotations

import argparse
import io
import json
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
DEFAULT_OUTPUT = ROOT / "docs" / "images" / "benchmarks.png"

PASS_COLOUR = "#4c9a52"
FAIL_COLOUR = "#c8453c"


def panels(targets: list[dict[str, Any]]) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """The targets grouped by unit: (title, x-axis label, targets) per panel, empty panels left out.

    Example:
        >>> [(title[:20], len(ts)) for title, _, ts in panels([
        ...     {"case": "mlp", "ratio": 0.6, "limit": 0.7},
        ...     {"case": "module_call", "added_ns": -3.0, "limit": 50.0},
        ...     {"case": "build_scaling", "ratio": 10.5, "limit": 11.0}])]
        [('Time against the bas', 1), ('Cost of the nn.Modul', 1), ('Build time against g', 1)]
    """
    added = [t for t in targets if "added_ns" in t]
    growth = [t for t in targets if "added_ns" not in t and t["case"] == "build_scaling"]
    ratios = [t for t in targets if t not in added and t not in growth]
    groups = [
        ("Time against the baseline (lower is faster)", "time ratio: the first named / the second", ratios),
        (
            "Cost of the nn.Module call hook of import symgraph_torch",
            "ns added per plain nn.Module call (below zero: within noise)",
            added,
        ),
        ("Build time against graph size (linear growth: 10x)", "build time / build time at a tenth the size", growth),
    ]
    return [(title, label, group) for title, label, group in groups if group]


def compared(target: dict[str, Any]) -> str:
    """What a target compares with what, as ``variant / baseline`` (``-`` for a difference in ns).

    Example:
        >>> compared({"variant": "symgraph", "baseline": "direct", "ratio": 0.9})
        'symgraph / direct'
    """
    sign = " - " if "added_ns" in target else " / "
    return f"{target['variant']}{sign}{target['baseline']}"


def label(target: dict[str, Any], comparison: bool = True) -> str:
    """A target's name: its case and row, and below them what it compares (unless ``comparison`` is false).

    Example:
        >>> print(label({"case": "mlp", "row": "12 blocks, eval", "variant": "symgraph",
        ...              "baseline": "hand-written nn.Module"}))
        mlp: 12 blocks, eval
        symgraph / hand-written nn.Module
    """
    name = f"{target['case']}: {target['row']}"
    if not comparison:
        return name
    return name + "\n" + textwrap.fill(compared(target), 46, break_long_words=False)


def value(target: dict[str, Any]) -> float:
    """What a target measured, in its panel's unit: a ratio, or nanoseconds added per call."""
    return float(target["added_ns"] if "added_ns" in target else target["ratio"])


def value_text(target: dict[str, Any]) -> str:
    """The measured value, the limit and the verdict, as printed beside a bar.

    Example:
        >>> value_text({"ratio": 0.65266, "limit": 0.62, "verdict": "FAIL"})
        '0.653x (limit 0.62x) FAIL'
        >>> value_text({"added_ns": -33.05, "limit": 50.0, "verdict": "PASS"})
        '-33 ns (limit +50 ns) PASS'
    """
    if "added_ns" in target:
        return f"{target['added_ns']:.0f} ns (limit +{target['limit']:g} ns) {target['verdict']}"
    return f"{target['ratio']:.3f}x (limit {target['limit']:g}x) {target['verdict']}"


def caption(results: dict[str, Any]) -> str:
    """The figure's title: when, on what, and how many targets passed.

    Example:
        >>> print(caption({"environment": {"date_utc": "2026-12-02T21:19:44+00:00", "git_commit": "1f74300",
        ...                "python": "3.11.7", "torch": "2.13.0+cpu", "cpu_count": 2, "torch_threads": 1},
        ...                "settings": {"quick": False}, "targets": [{"verdict": "PASS"}, {"verdict": "FAIL"}]}))
        symgraph benchmark targets: 1 of 2 passed
        run of 2026-12-02, commit 1f74300; Python 3.11.7, torch 2.13.0+cpu on 1 thread, 2 CPU cores
    """
    env = results["environment"]
    targets = results["targets"]
    passed = sum(t["verdict"] == "PASS" for t in targets)
    kind = "quick run" if results["settings"].get("quick") else "run"
    dirty = " (uncommitted changes)" if env.get("git_dirty") else ""
    machine = [f"Python {env['python']}"]
    if env.get("torch"):
        machine.append(f"torch {env['torch']} on {env.get('torch_threads', '?')} thread")
    machine.append(f"{env.get('cpu_count', '?')} CPU cores" + (f", {env['gpu']}" if env.get("gpu") else ""))
    return (
        f"symgraph benchmark targets: {passed} of {len(targets)} passed\n"
        f"{kind} of {env['date_utc'][:10]}, commit {env.get('git_commit', '?')}{dirty}; {', '.join(machine)}"
    )


def draw(results: dict[str, Any], output: Path) -> None:
    """Draw the targets of ``results`` (a results file's JSON) into the PNG file ``output``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = panels(results["targets"])
    if not groups:
        raise ValueError("the results have no targets to draw")
    heights = [len(group) + 1.6 for _, _, group in groups]
    fig, axes = plt.subplots(
        len(groups),
        1,
        figsize=(11, 0.5 * sum(heights) + 1.2),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, (title, xlabel, group) in zip(axes[:, 0], groups, strict=True):
        ys = list(range(len(group)))[::-1]  # the first target on top
        values = [value(t) for t in group]
        limits = [float(t["limit"]) for t in group]
        colours = [PASS_COLOUR if t["verdict"] == "PASS" else FAIL_COLOUR for t in group]
        floors = [(y, t["floor_to_baseline"]) for y, t in zip(ys, group, strict=True) if "floor_to_baseline" in t]
        lowest = min([0.0, *values])
        highest = max([*values, *limits, *(f for _, f in floors)])
        ax.barh(ys, values, height=0.62, color=colours)
        ax.scatter(limits, ys, marker="|", s=500, linewidths=2.5, color="black", zorder=3)
        if floors:
            ax.scatter(
                [f for _, f in floors],
                [y for y, _ in floors],
                marker="o",
                s=45,
                facecolors="white",
                edgecolors="black",
                zorder=4,
            )
        span = highest - lowest
        for y, v, t in zip(ys, values, group, strict=True):
            right = max(v, float(t["limit"]), float(t.get("floor_to_baseline", 0.0)), 0.0)
            ax.text(right + 0.02 * span, y, value_text(t), va="center", fontsize=9)
        if "ns" in xlabel:
            ax.axvline(0.0, color="black", linewidth=0.8)
        elif "Build" in title:
            ax.axvline(10.0, color="grey", linewidth=0.8, linestyle="dotted")
        else:
            ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="dotted")
        # Room on the right for the value labels.
        ax.set_xlim(min(lowest * 1.15, 0.0), highest + 0.42 * span)
        ax.set_ylim(-0.7, len(group) - 0.3)
        ax.set_yticks(ys)
        # A comparison that every bar of the panel shares is said once, under the axis.
        shared = len({compared(t) for t in group}) == 1
        ax.set_yticklabels([label(t, comparison=not shared) for t in group], fontsize=8.5)
        ax.set_xlabel(f"{xlabel}\n{compared(group[0])}" if shared else xlabel, fontsize=9)
        ax.set_title(title, fontsize=11, loc="left")
        ax.tick_params(axis="x", labelsize=9)
        ax.grid(axis="x", linewidth=0.3)
        ax.set_axisbelow(True)
    legend = [
        Patch(color=PASS_COLOUR, label="target met"),
        Patch(color=FAIL_COLOUR, label="target missed"),
        Line2D([], [], marker="|", markersize=14, markeredgewidth=2.5, linestyle="none", color="black", label="limit"),
    ]
    if any("floor_to_baseline" in t for t in results["targets"]):
        legend.append(
            Line2D(
                [],
                [],
                marker="o",
                markersize=7,
                linestyle="none",
                markerfacecolor="white",
                markeredgecolor="black",
                label="floor: straight-line F.* calls",
            )
        )
    inch = 1.0 / fig.get_figheight()
    fig.suptitle(caption(results), x=0.01, y=1.0 - 0.12 * inch, ha="left", va="top", fontsize=10)
    fig.legend(handles=legend, loc="lower center", ncol=4, fontsize=9, frameon=False, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0.0, 0.45 * inch, 1.0, 1.0 - 0.3 * inch))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(small_png(buffer.getvalue()))


def small_png(data: bytes) -> bytes:
    """The PNG ``data`` with a 64-colour palette (a third of the size), or unchanged without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        return data
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as image:
        image.convert("RGB").quantize(colors=64).save(out, format="PNG", optimize=True)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="a results file of python -m benchmarks")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the PNG file to write")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    draw(results, args.output)
    print(f"Wrote {args.output} from {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
