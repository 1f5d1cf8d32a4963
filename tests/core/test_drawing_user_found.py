"""Faults in ``model.plot`` found by drawing models as a user would.

Each test names what looked wrong in the picture. The oracles are matplotlib's
own measurements of what it rendered (text extents at the saved resolution) and
the model's summary (the names the picture must show).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import symgraph
from tests.core.test_dot_plot import check_picture, summary_names


def _matplotlib() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


def _markers(figure: Any) -> list[tuple[str, float, float]]:
    axes = figure.axes[0]
    return [(t.get_text(), *t.get_position()) for t in axes.texts if t.get_gid() == "symgraph-marker"]


@pytest.mark.parametrize("rotate", [False, True])
def test_a_value_carried_through_a_whole_column_leaves_it_at_a_marker(rotate: bool) -> None:
    # The input is read every 50 steps of a 300-step chain, so its arrow passes
    # through whole columns. It used to end where it came in, at the top of
    # such a column: the line ran back up over itself and no marker showed
    # where it goes on.
    _matplotlib()
    x = symgraph.CustomInput(1.0)
    y = x
    for i in range(300):
        y = y + 1
        if i % 50 == 49:
            y = symgraph.add_to_graph(sum, [y, x], custom_name=f"skip {i}")
    model = symgraph.SymbolicModel(x, y)
    assert model(2.0) == 2.0 + 300 + 6 * 2.0  # the oracle: the same sums run eagerly
    figure = model.plot(rotate=rotate)
    markers = _markers(figure)
    # Every letter is drawn in pairs: once where the arrow leaves a column, once
    # where it comes into the next; a value crossing c cuts has 2 * c markers.
    by_letter: dict[str, list[tuple[float, float]]] = {}
    for letter, mx, my in markers:
        by_letter.setdefault(letter, []).append((mx, my))
    assert max(len(spots) for spots in by_letter.values()) >= 3, "the input crosses at least two cuts"
    for letter, spots in by_letter.items():
        assert len(spots) % 2 == 0, f"marker {letter} is drawn {len(spots)} times: one end has no partner"
        assert len(set(spots)) == len(spots), f"marker {letter} is drawn twice at one place"
    # No arrow runs backwards: along every edge, the main coordinate (down, or
    # right when rotated) never decreases by more than a rounding error.
    axes = figure.axes[0]
    for edge in (p for p in axes.patches if p.get_gid() == "symgraph-edge"):
        line = edge.get_path().to_polygons(closed_only=False)[0]  # the shaft; the head follows
        main = [pt[0] if rotate else pt[1] for pt in line]
        assert all(b >= a - 1e-6 for a, b in itertools.pairwise(main)), "an arrow runs back"


def test_bold_titles_fit_their_boxes_at_the_saved_resolution(tmp_path: Path) -> None:
    # Text was measured without font hinting; rendered at 100 dpi, a bold title
    # of wide letters came out several percent wider than measured, sticking
    # out of its box into the next one.
    _matplotlib()
    x = symgraph.CustomInput(3.0)
    wide = symgraph.add_to_graph(abs, x, custom_name="m" * 28 + "_wide_name_" + "M" * 9)
    near = symgraph.add_to_graph(abs, x, custom_name="m" * 24 + "_neighbour")
    narrow = symgraph.add_to_graph(abs, x, custom_name="i" * 50)
    model = symgraph.SymbolicModel(x, [wide, near, narrow])
    assert model(-2.0) == [2.0, 2.0, 2.0]
    check_picture(model.plot(), tmp_path / "wide_names.png", summary_names(model))


@pytest.mark.parametrize("dpi", [72, 100, 150])
def test_the_legend_note_fits_the_picture(dpi: int) -> None:
    # A narrow model folded into columns: the legend's note is the widest thing
    # in the picture, and its last letters were cut off at the right edge.
    _matplotlib()
    x = symgraph.CustomInput(1.0)
    y = x
    for _ in range(14):
        y = y + 1
    model = symgraph.SymbolicModel(x, y)
    assert model(0.0) == 14.0
    figure = model.plot(dpi=dpi)
    figure.set_dpi(dpi)
    renderer = figure.canvas.get_renderer()
    width = figure.get_size_inches()[0] * dpi
    texts = [t for t in figure.axes[0].texts if t.get_gid() == "symgraph-legend"]
    assert any("next column" in t.get_text() for t in texts), "the picture is folded and says so"
    for t in texts:
        extent = t.get_window_extent(renderer)
        assert extent.x0 >= 0 and extent.x1 <= width, f"{t.get_text()!r} runs off the picture at {dpi} dpi"
