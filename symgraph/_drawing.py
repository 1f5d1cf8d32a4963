"""Pictures of a model: a layered drawing with matplotlib, and Graphviz DOT text.

Both are made from the rows of the model's summary (:func:`symgraph._summary.layer_rows`),
which the plan holds, so they work for a model whose graph is gone: one that was
loaded, unpickled or copied. matplotlib is imported only when a picture is drawn.

The layout puts every layer one level after its deepest parent (the graph's
topological generations, inputs first). Within a level, layers sit in lanes: a
layer takes the lane of its leftmost parent where it is free, so a chain runs
straight down, and a value read several levels later is carried down a lane of
its own, so a skip connection runs beside the chain rather than behind it. A
graph much deeper than wide is cut, where the fewest values cross, into columns
set side by side; a value crossing a cut is drawn as a lettered marker at the
bottom of one column and at the top of the next.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from symgraph._ops import Operation
from symgraph._plan import Plan
from symgraph._summary import Row, layer_rows
from symgraph._text import escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Box", "Layout", "draw_boxes", "layout_boxes", "plan_boxes", "plan_dot", "plot_plan", "step_kind"]

#: Fill and border colours of inputs, inner layers and outputs (a layer that is
#: both an input and an output is drawn as an output).
FILL = {"input": "#d9ead3", "layer": "#e3ebf7", "output": "#fce5cd"}
BORDER = {"input": "#38761d", "layer": "#4a6a9a", "output": "#b45f06"}
#: Longest text drawn on one line; longer names are cut with "...".
LINE_LIMIT = 60


@dataclass(frozen=True, slots=True)
class Box:
    """One layer as drawn: a title, lines below it, and the boxes it reads.

    Attributes:
        title: The layer's name (escaped: one line of plain text).
        lines: Further lines: the layer's class, its output's shape or type.
        parents: Indices of the boxes it reads, all earlier in the list.
        role: ``"input"``, ``"layer"`` or ``"output"``.
    """

    title: str
    lines: tuple[str, ...]
    parents: tuple[int, ...]
    role: str


class _NoValues(Sequence[Any]):
    """Parent values for ``display_name`` when there are none: a plan holds no example values."""

    def __len__(self) -> int:
        return 0

    def __getitem__(self, index: Any) -> Any:
        raise LookupError("a plan holds no example values")


def step_kind(op: Operation | None) -> str:
    """What a layer is: ``Input``, the layer's class (``Conv2d``), or the operation's name.

    It is the base of the names layers get when the user gives none
    (``Conv2d_3``); an operation whose name depends on example values (a call of
    a function that is itself a symbolic value) is named by its class.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput([3, 1])
        >>> plan = symgraph.SymbolicModel(x, symgraph.add_to_graph(sorted, x) + [0]).plan
        >>> [step_kind(step.op) for step in plan.steps], step_kind(None)
        (['wrap(sorted)', 'LambdaOpLayer'], 'Input')
    """
    if op is None:
        return "Input"
    try:
        kind = op.display_name(_NoValues())
    except Exception:  # a name that needs example values: the class names it well enough
        kind = type(op).__name__
    return kind if isinstance(kind, str) else type(op).__name__


def _line(text: object, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a str, got {type(text).__name__}")
    return escape(text, LINE_LIMIT)


def plan_boxes(
    plan: Plan,
    kind_text: Callable[[Row], str] | None = None,
    node_text: Callable[[Row], str] | None = None,
    *,
    output_places: bool = True,
) -> list[Box]:
    """The boxes of a plan's drawing: one per row of its summary.

    A box shows the layer's name, its class where the name does not already
    say it (``stem_conv`` is a ``Conv2d``; ``Conv2d_3`` needs no second line),
    and its output's shape or type.

    Args:
        plan: The plan.
        kind_text: The class line of a row, instead of :func:`step_kind`'s; it is
            then always shown.
        node_text: The row's description line, instead of its description.
        output_places: Add a line saying where an output sits in the model's
            output, when that is a dict or a list (``output ['mean']``).

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> y = symgraph.add_to_graph(abs, x, custom_name="size")
        >>> for box in plan_boxes(symgraph.SymbolicModel(x, y * 2).plan):
        ...     print(box)
        Box(title='Input_1', lines=('int',), parents=(), role='input')
        Box(title='size', lines=('wrap(abs)', 'int'), parents=(0,), role='layer')
        Box(title='LambdaOpLayer_1', lines=('int',), parents=(1,), role='output')
    """
    boxes = []
    for row in layer_rows(plan):
        lines = []
        if kind_text is not None:
            lines.append(_line(kind_text(row), "edge_text_func's result"))
        else:
            kind = step_kind(row.op)
            if re.fullmatch(re.escape(kind) + r"_\d+", row.name) is None:
                lines.append(_line(kind, "a layer's kind"))
        lines.append(_line(row.description if node_text is None else node_text(row), "node_text_func's result"))
        if output_places and any(row.output_paths):  # an output inside a dict or a list: say where
            lines.append(_line("output " + ", ".join(row.output_paths), "an output's place"))
        role = "output" if row.is_output else "input" if row.op is None else "layer"
        # Rows are numbered from 1 without gaps, so a row's index is its number less one.
        boxes.append(Box(_line(row.name, "a layer's name"), tuple(lines), tuple(p - 1 for p in row.parents), role))
    return boxes


# -- layout ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the boxes go, in levels and lanes.

    Attributes:
        level: Per box, its topological generation: 0 for boxes that read
            nothing, else one more than its deepest parent.
        lane: Per box, its lane within its level (from 0).
        carried: Per box, the lane of each level its value is carried down
            before its last reader, by level.
        starts: The first level of each column; one column when the graph is
            not cut.
    """

    level: tuple[int, ...]
    lane: tuple[int, ...]
    carried: tuple[dict[int, int], ...]
    starts: tuple[int, ...]

    def column(self, level: int) -> int:
        """The column that holds ``level``."""
        return sum(1 for s in self.starts[1:] if s <= level)


def _free_lane(taken: set[int], wanted: int) -> int:
    # The nearest free lane, to the right first: the chains on the left stay put.
    for distance in range(len(taken) + 1):
        for lane in (wanted + distance, wanted - distance):
            if lane >= 0 and lane not in taken:
                return lane
    raise AssertionError("unreachable: one of len(taken) + 1 lanes is free")  # pragma: no cover


def layout_boxes(parents: Sequence[Sequence[int]], columns: int = 1) -> Layout:
    """Levels and lanes for boxes that read ``parents`` (earlier indices), cut into ``columns``.

    Iterative, one pass per level.

    Example:
        >>> layout = layout_boxes([(), (0,), (1,), (0, 2)])  # a chain and a skip
        >>> layout.level, layout.lane, layout.carried[0]
        ((0, 1, 2, 3), (0, 0, 0, 0), {1: 1, 2: 1})
    """
    n = len(parents)
    level = [0] * n
    last = [-1] * n  # the deepest level that reads each box
    for k, ps in enumerate(parents):
        if any(not 0 <= p < k for p in ps):
            raise ValueError(f"box {k} reads {list(ps)}: parents must be earlier boxes")
        level[k] = 1 + max((level[p] for p in ps), default=-1)
    for k, ps in enumerate(parents):
        for p in ps:
            last[p] = max(last[p], level[k])
    depth = 1 + max(level, default=-1)
    by_level: list[list[int]] = [[] for _ in range(depth)]
    alive: list[list[int]] = [[] for _ in range(depth)]  # values carried through a level
    for k in range(n):
        by_level[level[k]].append(k)
        for g in range(level[k] + 1, last[k]):
            alive[g].append(k)
    lane = [0] * n
    carried: list[dict[int, int]] = [{} for _ in range(n)]

    def lane_at(k: int, g: int) -> int:
        return lane[k] if g == level[k] else carried[k][g]

    for g in range(depth):
        taken: set[int] = set()
        # Layers first, each near its leftmost parent, then carried values; boxes
        # that read nothing (inputs) fill the lanes left free, in order.
        wants = [(min(lane_at(p, g - 1) for p in parents[k]), 0, k) for k in by_level[g] if parents[k]]
        wants += [(lane_at(k, g - 1), 1, k) for k in alive[g]]
        for wanted, carry, k in sorted(wants):
            chosen = _free_lane(taken, wanted)
            taken.add(chosen)
            if carry:
                carried[k][g] = chosen
            else:
                lane[k] = chosen
        for k in by_level[g]:
            if not parents[k]:
                lane[k] = _free_lane(taken, 0)
                taken.add(lane[k])
    crossing = [0] * (depth + 1)  # values read across the cut before each level
    for k in range(n):
        for g in range(level[k] + 1, last[k] + 1):
            crossing[g] += 1
    starts = [0]
    columns = max(1, min(columns, depth))
    for c in range(1, columns):
        ideal = round(c * depth / columns)
        reach = max(1, depth // (2 * columns))  # half a column's depth: room to find a narrow cut
        candidates = range(max(starts[-1] + 1, ideal - reach), min(depth - 1, ideal + reach) + 1)
        if candidates:
            starts.append(min(candidates, key=lambda g: (crossing[g], abs(g - ideal))))
    return Layout(tuple(level), tuple(lane), tuple(carried), tuple(starts))


# -- drawing --------------------------------------------------------------------------------------


def _import_matplotlib() -> Any:
    try:
        import matplotlib
        import matplotlib.figure  # loaded for the caller
    except ImportError as exc:
        raise ImportError(
            "drawing a model needs matplotlib: pip install 'symgraph-py[draw]'", name="matplotlib"
        ) from exc
    return matplotlib


@dataclass
class _Sizes:
    """Every length of a drawing in points, derived from the font size."""

    font: float
    line: float
    pad_x: float
    pad_y: float
    level_gap: float
    lane_gap: float
    carry: float
    column_gap: float
    band: float
    margin: float

    @classmethod
    def of(cls, font: float) -> _Sizes:
        return cls(
            font=font,
            line=font * 1.3,
            pad_x=font * 0.7,
            pad_y=font * 0.45,
            level_gap=font * 2.2,
            lane_gap=font * 1.2,
            carry=font * 1.6,
            column_gap=font * 3.5,
            band=font * 2.6,
            margin=font * 1.2,
        )


def _marker_name(k: int) -> str:
    name = ""
    k += 1
    while k:
        k, rest = divmod(k - 1, 26)
        name = chr(ord("A") + rest) + name
    return name


def draw_boxes(
    boxes: Sequence[Box],
    figure: Figure | None = None,
    *,
    figsize: tuple[float, float] | None = None,
    rotate: bool = False,
    font_size: float = 9.0,
    fill: dict[str, str] | None = None,
    edge_color: str = "#555555",
) -> Figure:
    """Draw ``boxes`` into ``figure`` (a new one without pyplot when ``None``); return it.

    The figure is sized so that the text, ``font_size`` points high, never
    overlaps: a box is as wide as its longest line, a level as deep as its
    tallest box. With ``figsize``, the drawing is scaled to fit that size,
    text included.

    Args:
        boxes: What to draw, parents before children (see :func:`plan_boxes`).
        figure: The figure to draw into; its size is changed.
        figsize: Width and height in inches, instead of the size the drawing needs.
        rotate: Levels run left to right instead of downwards.
        font_size: Text height in points.
        fill: Colours of the ``"input"``, ``"layer"`` and ``"output"`` boxes, to
            replace some of the defaults.
        edge_color: Colour of the arrows.

    Raises:
        ImportError: matplotlib is missing.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> figure = draw_boxes(plan_boxes(symgraph.SymbolicModel(x, x + 1).plan))
        >>> sorted(t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-title")
        ['Input_1', 'LambdaOpLayer_1']
    """
    matplotlib = _import_matplotlib()
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
    from matplotlib.path import Path
    from matplotlib.textpath import TextToPath

    if not isinstance(font_size, (int, float)) or not 1 <= font_size <= 100:
        raise ValueError(f"font_size must be a number of points from 1 to 100, got {font_size!r}")
    colours = {**FILL, **(fill or {})}
    size = _Sizes.of(float(font_size))
    measure = TextToPath()
    plain = FontProperties(size=size.font)
    bold = FontProperties(size=size.font, weight="bold")

    # A raster picture hints glyphs to whole pixels, so its text can come out
    # wider than the outlines measure (some 7% wider, at 100 dpi): a text is as
    # wide as the widest of its outline and its renderings at the usual resolutions.
    resolutions = {72.0, 100.0, 150.0, 200.0, 300.0}
    if figure is not None:
        resolutions.add(float(figure.dpi))
    raster_type: Any = RendererAgg  # matplotlib leaves it untyped
    rasters = [raster_type(1, 1, dpi) for dpi in sorted(resolutions)]

    def width(text: str, prop: Any) -> float:
        widest = measure.get_text_width_height_descent(text, prop, ismath=False)[0]
        for raster in rasters:
            widest = max(widest, raster.get_text_width_height_descent(text, prop, ismath=False)[0] * 72 / raster.dpi)
        return float(widest)

    # Box sizes: along the levels ("main") and across them ("cross").
    extent = []
    for box in boxes:
        w = max([width(box.title, bold), *(width(t, plain) for t in box.lines)]) + 2 * size.pad_x
        h = size.line * (1 + len(box.lines)) + 2 * size.pad_y
        extent.append((h, w) if not rotate else (w, h))

    parents = [box.parents for box in boxes]
    one = layout_boxes(parents)
    depth = 1 + max(one.level, default=-1)
    columns = 1
    if depth > 12:
        # As many columns as bring the picture nearest to square.
        main = sum(max(extent[k][0] for k in range(len(boxes)) if one.level[k] == g) for g in range(depth))
        main += depth * size.level_gap
        lanes = 1 + max([*one.lane, *(lane for c in one.carried for lane in c.values())], default=0)
        cross = lanes * (max((e[1] for e in extent), default=0.0) + size.lane_gap)
        columns = max(1, min(depth // 6, round(math.sqrt(main / max(cross, 1.0)))))
    layout = layout_boxes(parents, columns) if columns > 1 else one
    level, lane = layout.level, layout.lane
    starts = (*layout.starts, depth)

    # Level depths (main) and, per column, lane widths (cross).
    level_size = [0.0] * depth
    for k, (m, _) in enumerate(extent):
        level_size[level[k]] = max(level_size[level[k]], m)
    lane_size: list[dict[int, float]] = [{} for _ in layout.starts]
    for k, (_, c) in enumerate(extent):
        sizes = lane_size[layout.column(level[k])]
        sizes[lane[k]] = max(sizes.get(lane[k], 0.0), c)
    for k in range(len(boxes)):
        for g, carried_lane in layout.carried[k].items():
            sizes = lane_size[layout.column(g)]
            sizes[carried_lane] = max(sizes.get(carried_lane, 0.0), size.carry)

    # Positions: main runs down (or right), columns sit side by side across it;
    # the legend takes a band across the top of the picture.
    legend = size.band + size.margin
    main_origin, cross_origin = (legend, 0.0) if not rotate else (0.0, legend)
    level_start = [0.0] * depth
    column_end = []  # per column, where its band of markers for values going out ends
    for c in range(len(layout.starts)):
        position = main_origin + size.margin + size.band  # after the band of markers for values coming in
        for g in range(starts[c], starts[c + 1]):
            level_start[g] = position
            position += level_size[g] + size.level_gap
        column_end.append(position - size.level_gap + size.band)
    lane_centre: list[dict[int, float]] = []
    position = cross_origin + size.margin
    for sizes in lane_size:
        centres = {}
        for ln in sorted(sizes):
            centres[ln] = position + sizes[ln] / 2
            position += sizes[ln] + size.lane_gap
        lane_centre.append(centres)
        position += size.column_gap - size.lane_gap
    total_cross = position - size.column_gap + size.lane_gap + size.margin
    total_main = max(column_end, default=main_origin) + size.margin
    legend_labels = ["input", "layer", "output"]
    legend_note = "A, B, ...: the arrow goes on in the next column" if len(layout.starts) > 1 else ""
    legend_width = sum(width(t, plain) + 2 * size.pad_x + size.lane_gap for t in legend_labels)
    # Margins on both sides, and the gap before the note.
    legend_width += 2 * size.margin + (width(legend_note, plain) + size.margin if legend_note else 0.0)
    width_pt, height_pt = (total_cross, total_main) if not rotate else (total_main, total_cross)
    width_pt = max(width_pt, legend_width)

    def centre(k: int) -> tuple[float, float]:
        g = level[k]
        return level_start[g] + level_size[g] / 2, lane_centre[layout.column(g)][lane[k]]

    def carried_at(k: int, g: int) -> float:
        return lane_centre[layout.column(g)][layout.carried[k][g]]

    if figure is None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        figure = matplotlib.figure.Figure()
        FigureCanvasAgg(figure)  # drawn off-screen, whatever pyplot's backend is
    if figsize is None:
        figure.set_size_inches(width_pt / 72, height_pt / 72)
        scale = 1.0
    else:
        if len(figsize) != 2 or not all(isinstance(v, (int, float)) and v > 0 for v in figsize):
            raise ValueError(f"figsize must be (width, height) in inches, both positive; got {figsize!r}")
        figure.set_size_inches(*figsize)
        scale = min(figsize[0] * 72 / width_pt, figsize[1] * 72 / height_pt)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.set_xlim(0, width_pt)
    axes.set_ylim(height_pt, 0)  # y grows downwards, as the levels do
    axes.set_aspect("equal")
    axes.set_axis_off()

    def xy(main: float, cross: float) -> tuple[float, float]:
        return (cross, main) if not rotate else (main, cross)

    def text(x: float, y: float, value: str, gid: str, **style: Any) -> None:
        # parse_math=False: a "$" in a name is a dollar sign, not the start of mathtext.
        style = {"ha": "center", "fontsize": size.font * scale, **style}
        axes.text(x, y, value, va="center", parse_math=False, gid=gid, **style)

    def rectangle(x: float, y: float, w: float, h: float, role: str, gid: str) -> None:
        axes.add_patch(
            FancyBboxPatch(
                (x - w / 2, y - h / 2),
                w,
                h,
                boxstyle=f"round,pad=0,rounding_size={size.font * 0.4}",
                facecolor=colours[role],
                edgecolor=BORDER[role],
                linewidth=(1.8 if role != "layer" else 0.9) * scale,
                gid=gid,
                zorder=2,
            )
        )

    # Boxes and their text, the title in bold.
    for k, box in enumerate(boxes):
        x, y = xy(*centre(k))
        w, h = extent[k] if rotate else extent[k][::-1]
        rectangle(x, y, w, h, box.role, f"symgraph-box-{k}")
        top = y - h / 2 + size.pad_y + size.line / 2
        text(x, top, box.title, "symgraph-title", fontweight="bold", zorder=3)
        for i, line in enumerate(box.lines, start=1):
            text(x, top + i * size.line, line, "symgraph-line", zorder=3)

    # The legend, across the top.
    x = size.margin
    y = size.margin + size.band / 2
    for role in legend_labels:
        w = width(role, plain) + 2 * size.pad_x
        rectangle(x + w / 2, y, w, size.line + size.pad_y, role, "symgraph-legend")
        text(x + w / 2, y, role, "symgraph-legend")
        x += w + size.lane_gap
    if legend_note:
        text(x + size.margin, y, legend_note, "symgraph-legend", ha="left")

    # Arrows: a value runs from its box down the lanes it is carried in and
    # branches off to each reader; crossing a cut, it leaves its column at a
    # lettered marker and comes back at the same letter in the next.
    radius = size.font * 0.65
    # Keyed by value, column and end: a value carried through a whole column has
    # a marker where it comes in and another where it leaves.
    markers: dict[tuple[int, int, str], tuple[float, float, str]] = {}
    letters: dict[int, str] = {}
    pieces: list[tuple[int, int, list[tuple[float, float]], bool]] = []
    for k, ps in enumerate(parents):
        for p in ps:
            points = [(centre(p)[0] + extent[p][0] / 2, centre(p)[1])]
            column = layout.column(level[p])
            for g in range(level[p] + 1, level[k] + 1):
                if layout.column(g) != column:
                    letter = letters.setdefault(p, _marker_name(len(letters)))
                    out = markers.setdefault(
                        (p, column, "out"), (column_end[column] - size.band / 2, points[-1][1], letter)
                    )
                    pieces.append((p, k, [*points, (out[0] - radius, out[1])], False))
                    column = layout.column(g)
                    across = carried_at(p, g) if g in layout.carried[p] else centre(k)[1]
                    into = markers.setdefault((p, column, "in"), (level_start[g] - size.band / 2, across, letter))
                    points = [(into[0] + radius, into[1])]
                if g < level[k]:
                    points += [(level_start[g], carried_at(p, g)), (level_start[g] + level_size[g], carried_at(p, g))]
            pieces.append((p, k, points, True))

    # The arrows that reach one box are spread across its near side, in the order they come from.
    ends: dict[tuple[int, int], float] = {}
    for p, k, points, last in pieces:
        if last:
            ends[(p, k)] = points[-1][1]
    for k, ps in enumerate(parents):
        order = sorted(ps, key=lambda p: ends[(p, k)])
        for i, p in enumerate(order):
            offset = 0.0 if len(order) == 1 else extent[k][1] * 0.5 * (i / (len(order) - 1) - 0.5)
            ends[(p, k)] = centre(k)[1] + offset
    for p, k, points, last in pieces:
        if last:
            # The last stretch runs straight into the box, so the arrow's head
            # points at it and does not cut into it, however steep the approach; it
            # starts no higher than the arrow's last point (a marker just above the box).
            start = centre(k)[0] - extent[k][0] / 2
            approach = max(start - size.font * 0.8, points[-1][0])
            points = [*points, (approach, ends[(p, k)]), (start, ends[(p, k)])]
        axes.add_patch(
            FancyArrowPatch(
                path=Path([xy(*pt) for pt in points]),
                arrowstyle="-|>" if last else "-",
                mutation_scale=size.font * scale,
                color=edge_color,
                linewidth=0.9 * scale,
                gid="symgraph-edge",
                zorder=1,
            )
        )
    for main, cross, letter in markers.values():
        x, y = xy(main, cross)
        axes.add_patch(Circle((x, y), radius, facecolor="white", edgecolor=edge_color, linewidth=0.9 * scale, zorder=2))
        text(x, y, letter, "symgraph-marker", fontsize=size.font * 0.8 * scale, zorder=3)
    return figure


def plot_plan(
    plan: Plan,
    path: str | os.PathLike[str] | None = None,
    *,
    rotate: bool = False,
    figsize: tuple[float, float] | None = None,
    font_size: float = 9.0,
    dpi: float = 100,
) -> Figure:
    """Draw a plan, save the picture to ``path`` if given, and return the figure.

    The figure is a ``matplotlib.figure.Figure`` made without pyplot: no window
    opens and nothing is left open.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> len(plot_plan(symgraph.SymbolicModel(x, x + 1).plan).axes)
        1
    """
    figure = draw_boxes(plan_boxes(plan), rotate=rotate, figsize=figsize, font_size=font_size)
    if path is not None:
        figure.savefig(os.fspath(path), dpi=dpi)
    return figure


# -- DOT --------------------------------------------------------------------------------------------


def _dot_text(text: str) -> str:
    # Inside a quoted DOT string only \" is an escape, but in a label \\ is a
    # backslash and \n, \l, \N ... are line breaks and names: every backslash of the
    # user's text is doubled, so none of them starts one.
    return text.replace("\\", "\\\\").replace('"', '\\"')


def plan_dot(plan: Plan, *, rotate: bool = False) -> str:
    r"""Graphviz DOT text of a plan's drawing (see :meth:`symgraph.SymbolicModel.to_dot`).

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> print(plan_dot(symgraph.SymbolicModel(x, x + 1).plan))
        digraph symgraph {
          rankdir=TB;
          node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];
          n1 [label="Input_1\nint", fillcolor="#d9ead3", color="#38761d", penwidth=2];
          n2 [label="LambdaOpLayer_1\nint", fillcolor="#fce5cd", color="#b45f06", penwidth=2, peripheries=2];
          n1 -> n2;
        }
    """
    lines = [
        "digraph symgraph {",
        f"  rankdir={'LR' if rotate else 'TB'};",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
    ]
    boxes = plan_boxes(plan)
    for k, box in enumerate(boxes):
        # Each line is escaped (no control character is left, so no real line
        # break), then quoted; "\n" between lines is DOT's own line break.
        label = "\\n".join(_dot_text(t) for t in (box.title, *box.lines))
        extra = "" if box.role == "layer" else ", penwidth=2" + (", peripheries=2" if box.role == "output" else "")
        lines.append(f'  n{k + 1} [label="{label}", fillcolor="{FILL[box.role]}", color="{BORDER[box.role]}"{extra}];')
    for k, box in enumerate(boxes):
        lines.extend(f"  n{p + 1} -> n{k + 1};" for p in box.parents)
    lines.append("}")
    return "\n".join(lines)
