"""``model.plot``: the layered picture of a model of plain Python objects, and its layout.

The checks of a picture (:func:`check_picture`) are shared with the torch tests.
matplotlib and networkx are optional: without them these tests skip, and in the
``SYMGRAPH_NO_BACKENDS=1`` tier they do.
"""

from __future__ import annotations

import itertools
import operator
import pickle
import random
from pathlib import Path
from typing import Any

import pytest

import symgraph
from symgraph._drawing import layout_boxes
from symgraph._text import escape

DPI = 100


def _matplotlib() -> Any:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    return matplotlib


def titles(figure: Any) -> list[str]:
    return [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-title"]


def summary_names(model: Any) -> list[str]:
    """The layer names in the model's printed summary: the oracle of what the picture must name."""
    printed: list[str] = []
    model.summary(print_fn=printed.append)
    lines = printed[0].splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=")]
    header = lines[rules[0] - 1]
    start, end = header.index("Layer"), header.index("Output")
    return [line[start:end].strip() for line in lines[rules[0] + 1 : rules[1]]]


def check_picture(figure: Any, path: Path, names: list[str], *, min_font_px: float = 10.0) -> Any:
    """Save ``figure`` to ``path`` and check that a person can read it; returns the image.

    One box per name with that title; no two texts or boxes overlap, each text
    sits inside a box (or the legend), no arrow runs through a box, the text is at
    least ``min_font_px`` pixels high at the saved DPI, and the PNG read back is a
    picture with much text in it rather than a blank or a blot.
    """
    from matplotlib.image import imread

    figure.savefig(path, dpi=DPI)
    axes = figure.axes[-1]
    assert titles(figure) == names
    boxes = [p for p in axes.patches if (p.get_gid() or "").startswith("symgraph-box-")]
    assert [b.get_gid() for b in boxes] == [f"symgraph-box-{k}" for k in range(len(names))]

    renderer = figure.canvas.get_renderer()
    box_extents = [b.get_window_extent(renderer) for b in boxes]
    legend = [p.get_window_extent(renderer) for p in axes.patches if p.get_gid() == "symgraph-legend"]
    texts = [t for t in axes.texts if t.get_gid() in ("symgraph-title", "symgraph-line")]
    assert len(texts) >= len(names)
    text_extents = [t.get_window_extent(renderer) for t in texts]
    for t in texts:
        assert t.get_fontsize() * DPI / 72 >= min_font_px, f"{t.get_text()!r} is too small to read"
    for a, b in itertools.combinations(box_extents, 2):
        assert not a.overlaps(b), f"boxes overlap: {a} {b}"
    for (ta, a), (tb, b) in itertools.combinations(zip(texts, text_extents, strict=True), 2):
        assert not a.overlaps(b), f"texts overlap: {ta.get_text()!r} {tb.get_text()!r}"
    for t, e in zip(texts, text_extents, strict=True):
        assert any(
            box.x0 <= e.x0 and e.x1 <= box.x1 and box.y0 <= e.y0 and e.y1 <= box.y1 for box in box_extents + legend
        ), f"{t.get_text()!r} sticks out of its box"
    # No arrow passes through a box: points along every segment lie outside each
    # box shrunk by two pixels (arrows start and end on a box's border).
    inner = [(b.x0 + 2, b.y0 + 2, b.x1 - 2, b.y1 - 2) for b in box_extents]
    edges = [p for p in axes.patches if p.get_gid() == "symgraph-edge"]
    assert edges or len(names) == 1
    for edge in edges:
        polylines = edge.get_path().to_polygons(closed_only=False)
        segments = [pair for line in polylines for pair in itertools.pairwise(axes.transData.transform(line))]
        for (x0, y0), (x1, y1) in segments:
            for f in (i / 16 for i in range(17)):
                x, y = x0 + f * (x1 - x0), y0 + f * (y1 - y0)
                hit = [k for k, (a, b, c, d) in enumerate(inner) if a < x < c and b < y < d]
                assert not hit, f"an arrow runs through the box of {names[hit[0]]!r}"

    image = imread(path)
    height, width = image.shape[:2]
    assert 100 <= height <= 8000 and 100 <= width <= 8000
    inches = figure.get_size_inches()
    assert abs(width - inches[0] * DPI) <= 1 and abs(height - inches[1] * DPI) <= 1
    luminance = image[..., :3] @ [0.299, 0.587, 0.114]
    white = (luminance > 0.98).mean()
    assert 0.3 < white < 0.97, f"{white:.0%} of the picture is white"
    assert len({tuple(px) for px in (image[::3, ::3, :3] * 255).astype(int).reshape(-1, 3).tolist()}) > 20
    dark = int((luminance < 0.35).sum())
    assert dark > 60 * len(names), f"only {dark} dark pixels for {len(names)} boxes: where is the text?"
    return image


def test_plain_objects_with_names_matplotlib_reads_as_mathtext(tmp_path: Path) -> None:
    _matplotlib()
    names = ["cost $", "$x$", "a$b$c", "$\\frac{", "\\$", "50$", "$", "two\nlines", "\x1b[31mred", "{braces}"]
    x = symgraph.CustomInput(1)
    y = x
    for name in names:
        y = symgraph.add_to_graph(operator.add, y, 1, custom_name=name)
    model = symgraph.SymbolicModel(x, y)
    figure = model.plot(tmp_path / "dollars.png")
    assert (tmp_path / "dollars.png").stat().st_size > 0
    # Drawn as plain text, each on one line, with control characters shown as escapes.
    expected = ["Input_1", *(escape(n) for n in names)]
    assert summary_names(model) == expected
    check_picture(figure, tmp_path / "check.png", expected)
    lines = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-line"]
    assert lines == ["int", *(["wrap(add)", "int"] * len(names))]
    # Other formats take the same text (SVG and PDF write it out as they go).
    for suffix in ("svg", "pdf"):
        model.plot(tmp_path / f"dollars.{suffix}")
        assert (tmp_path / f"dollars.{suffix}").stat().st_size > 1000


def test_loaded_model_draws_the_same_picture(tmp_path: Path) -> None:
    _matplotlib()
    prices = symgraph.CustomInput({"apple": 3, "pear": 5})
    count = symgraph.CustomInput(2)
    total = symgraph.add_to_graph(sum, prices.values(), custom_name="subtotal") * count
    model = symgraph.SymbolicModel({"prices": prices, "count": count}, {"total": total, "count": count})
    restored = pickle.loads(pickle.dumps(model))
    expected = summary_names(model)
    assert summary_names(restored) == expected and expected[:2] == ["prices", "count"]
    a = check_picture(model.plot(), tmp_path / "a.png", expected)
    b = check_picture(restored.plot(), tmp_path / "b.png", expected)
    assert a.shape == b.shape and (a == b).all()
    # Inputs, inner layers and outputs differ in colour; count is both: an output.
    figure = model.plot()
    colours = [p.get_facecolor() for p in figure.axes[0].patches if (p.get_gid() or "").startswith("symgraph-box-")]
    roles = ["input", "output", "layer", "layer", "layer", "output"]
    assert len(colours) == len(roles)
    by_role: dict[str, set[Any]] = {}
    for role, colour in zip(roles, colours, strict=True):
        by_role.setdefault(role, set()).add(tuple(colour))
    assert all(len(c) == 1 for c in by_role.values()) and len(set().union(*by_role.values())) == 3
    legend = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-legend"]
    assert legend == ["input", "layer", "output"]


def test_figsize_scales_the_text_with_the_drawing(tmp_path: Path) -> None:
    _matplotlib()
    x = symgraph.CustomInput("a b c")
    words = x.split()
    model = symgraph.SymbolicModel(x, [w.upper() for w in words])
    natural = model.plot()
    width, height = natural.get_size_inches()
    small = model.plot(figsize=(width / 2, height / 2))
    assert tuple(small.get_size_inches()) == (width / 2, height / 2)
    sizes = {t.get_fontsize() for t in small.axes[0].texts if t.get_gid() == "symgraph-title"}
    assert sizes == {9.0 / 2}
    check_picture(small, tmp_path / "small.png", summary_names(model), min_font_px=6)
    with pytest.raises(ValueError, match="figsize"):
        model.plot(figsize=(0, 3))
    with pytest.raises(ValueError, match="font_size"):
        model.plot(font_size=0)


def _random_parents(seed: int, n: int) -> list[tuple[int, ...]]:
    rng = random.Random(seed)
    parents: list[tuple[int, ...]] = [()] * rng.randint(1, 3)
    while len(parents) < n:
        k = len(parents)
        parents.append(tuple(sorted(set(rng.sample(range(k), rng.randint(1, min(3, k)))))))
    return parents


@pytest.mark.parametrize("seed", range(25))
def test_levels_are_networkx_topological_generations_and_lanes_never_collide(seed: int) -> None:
    nx = pytest.importorskip("networkx")
    parents = _random_parents(seed, 5 + seed * 3)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(parents)))
    graph.add_edges_from((p, k) for k, ps in enumerate(parents) for p in ps)
    generations = {k: g for g, members in enumerate(nx.topological_generations(graph)) for k in members}
    for columns in (1, 3):
        layout = layout_boxes(parents, columns)
        assert list(layout.level) == [generations[k] for k in range(len(parents))]
        last = [
            max((layout.level[c] for c, ps in enumerate(parents) if k in ps), default=-1) for k in range(len(parents))
        ]
        for k in range(len(parents)):
            # A value is carried through exactly the levels between it and its last reader.
            assert sorted(layout.carried[k]) == list(range(layout.level[k] + 1, last[k]))
        for g in range(max(layout.level) + 1):
            lanes = [layout.lane[k] for k in range(len(parents)) if layout.level[k] == g]
            lanes += [c[g] for c in layout.carried if g in c]
            assert len(lanes) == len(set(lanes)), f"two things share a lane at level {g}"
        assert list(layout.starts) == sorted(set(layout.starts)) and layout.starts[0] == 0


def test_a_deep_chain_is_folded_where_fewest_values_cross(tmp_path: Path) -> None:
    _matplotlib()
    x = symgraph.CustomInput(0)
    y = x
    for i in range(40):
        skip = y
        y = y + 1
        y = y * 2
        if i % 2:
            y = symgraph.add_to_graph(operator.add, y, skip, custom_name=f"merge {i}")
    model = symgraph.SymbolicModel(x, y)
    figure = model.plot()
    markers = [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-marker"]
    # Folded into columns; each cut falls where one value crosses: one letter, drawn twice.
    assert len(markers) >= 4 and len(markers) % 2 == 0
    assert sorted(markers) == sorted(m for m in set(markers) for _ in range(2))
    width, height = figure.get_size_inches()
    assert 0.5 < height / width < 3
    check_picture(figure, tmp_path / "deep.png", summary_names(model))
    # Across levels (rotate=True), the same, sideways.
    check_picture(model.plot(rotate=True), tmp_path / "deep_rotated.png", summary_names(model))
