"""The figure of docs/benchmarks.md: ``python -m benchmarks.plot`` draws the committed results."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"

pytest.importorskip("matplotlib")


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG image, read from its IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_plot_draws_the_committed_results(tmp_path: Path) -> None:
    output = tmp_path / "figure" / "benchmarks.png"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.plot", "--results", str(RESULTS), "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Wrote {output}" in result.stdout
    data = output.read_bytes()
    width, height = png_size(data)
    # One bar per target, each about 40 px high at 100 dpi: a figure of every target, not an empty one.
    targets = json.loads(RESULTS.read_text(encoding="utf-8"))["targets"]
    assert width == 1100
    assert height > 40 * len(targets)
    assert len(data) > 20_000


def test_plot_sorts_targets_by_unit() -> None:
    from benchmarks.plot import panels

    targets = json.loads(RESULTS.read_text(encoding="utf-8"))["targets"]
    groups = {title: group for title, _, group in panels(targets)}
    # Every target is drawn once, and each panel's bars share a unit.
    assert sorted(id(t) for group in groups.values() for t in group) == sorted(id(t) for t in targets)
    for title, group in groups.items():
        in_ns = {"added_ns" in t for t in group}
        assert len(in_ns) == 1, title
        assert in_ns == {"Cost" in title}


def test_plot_refuses_results_without_targets(tmp_path: Path) -> None:
    from benchmarks.plot import draw

    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    results["targets"] = []
    with pytest.raises(ValueError, match="no targets"):
        draw(results, tmp_path / "empty.png")
    assert not (tmp_path / "empty.png").exists()
