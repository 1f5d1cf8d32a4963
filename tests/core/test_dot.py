"""``to_dot``: Graphviz DOT text of a model, read back by a small DOT parser.

Imports no numpy, torch, networkx or matplotlib: it runs in the ``SYMGRAPH_NO_BACKENDS=1`` tier.
"""

from __future__ import annotations

import copy
import operator
import pickle
import re
from typing import Any

import pytest

import symgraph
from symgraph._text import escape

# The tokens of the DOT language that to_dot writes: identifiers, numbers, quoted
# strings (where \" is the only escape of the language itself) and punctuation.
_TOKEN = re.compile(r'\s*(?:(->)|([A-Za-z_][A-Za-z0-9_]*)|(-?[0-9.]+)|("(?:[^"\\]|\\.)*")|([{}\[\]=;,]))', re.S)


def tokens(text: str) -> list[tuple[str, str]]:
    """DOT text as (kind, value) tokens; fails on anything that is not DOT."""
    out = []
    position = 0
    while text[position:].strip():
        match = _TOKEN.match(text, position)
        assert match is not None, f"not DOT at {text[position : position + 40]!r}"
        kinds = ("arrow", "id", "number", "string", "punct")
        kind = next(k for k, v in zip(kinds, match.groups(), strict=True) if v is not None)
        out.append((kind, match.group(match.lastindex or 0)))
        position = match.end()
    return out


def label_lines(quoted: str) -> list[str]:
    """The lines of a DOT label, as Graphviz shows them: \\n breaks a line, \\\\ is a backslash."""
    lines, current, i = [], "", 1
    body = quoted[1:-1]
    while i <= len(body):
        ch = body[i - 1]
        if ch == "\\":
            nxt = body[i]
            if nxt == "n":
                lines.append(current)
                current = ""
            else:
                assert nxt in '\\"', f'a label escape other than \\n, \\\\ or \\" in {quoted!r}'
                current += nxt
            i += 2
        else:
            current += ch
            i += 1
    return [*lines, current]


def parse_dot(text: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """Nodes (id -> attributes) and edges of a ``digraph`` in the subset that to_dot writes."""
    toks = tokens(text)
    assert toks[:3] == [("id", "digraph"), ("id", "symgraph"), ("punct", "{")] and toks[-1] == ("punct", "}")
    nodes: dict[str, dict[str, str]] = {}
    edges: list[tuple[str, str]] = []
    i = 3
    while i < len(toks) - 1:
        kind, value = toks[i]
        assert kind == "id", f"a statement starts with {value!r}"
        if toks[i + 1] == ("arrow", "->"):
            assert toks[i + 2][0] == "id" and toks[i + 3] == ("punct", ";")
            edges.append((value, toks[i + 2][1]))
            i += 4
            continue
        if toks[i + 1] == ("punct", "="):  # a graph attribute: rankdir=TB;
            assert toks[i + 3] == ("punct", ";")
            nodes.setdefault("graph", {})[value] = toks[i + 2][1]
            i += 4
            continue
        assert toks[i + 1] == ("punct", "["), f"after {value!r}: {toks[i + 1]}"
        attrs: dict[str, str] = {}
        i += 2
        while toks[i] != ("punct", "]"):
            key, eq, val = toks[i], toks[i + 1], toks[i + 2]
            assert key[0] == "id" and eq == ("punct", "=") and key[1] not in attrs
            attrs[key[1]] = val[1]
            i += 3
            if toks[i] == ("punct", ","):
                i += 1
        assert toks[i + 1] == ("punct", ";")
        i += 2
        assert value not in nodes, f"node {value} twice"
        nodes[value] = attrs
    return nodes, edges


def model_nodes(dot: str) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    nodes, edges = parse_dot(dot)
    return {k: v for k, v in nodes.items() if k not in ("graph", "node")}, edges


def expected_edges(model: Any) -> list[tuple[str, str]]:
    """From the plan itself (these models have no guard steps): each step reads its argument slots."""
    plan = model.plan
    n_in = len(plan.inputs)
    return [(f"n{s + 1}", f"n{n_in + j + 1}") for j, step in enumerate(plan.steps) for s in dict.fromkeys(step.args)]


def test_exact_text_of_a_tiny_model() -> None:
    x = symgraph.CustomInput(3)
    y = symgraph.add_to_graph(abs, x, custom_name="size")
    model = symgraph.SymbolicModel({"count": x}, {"out": y + x})
    assert model.to_dot() == "\n".join(
        [
            "digraph symgraph {",
            "  rankdir=TB;",
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
            '  n1 [label="count\\nInput\\nint", fillcolor="#d9ead3", color="#38761d", penwidth=2];',
            '  n2 [label="size\\nwrap(abs)\\nint", fillcolor="#e3ebf7", color="#4a6a9a"];',
            '  n3 [label="AddOpLayer_1\\nint\\noutput [\'out\']", fillcolor="#fce5cd", color="#b45f06", '
            "penwidth=2, peripheries=2];",
            "  n1 -> n2;",
            "  n2 -> n3;",  # y + x: the parents in the order the step reads them
            "  n1 -> n3;",
            "}",
        ]
    )
    assert "rankdir=LR;" in model.to_dot(rotate=True)


HOSTILE = [
    'say "hi"',
    "back\\slash",
    "ends with \\",
    '\\"; n9 [label="forged"]; n1 -> n9; //',
    "two\nlines",
    "tab\there\r",
    "<b>html</b>",
    "<",
    "a > b",
    "{record|shape}",
    "\\N \\G \\l \\E",
    "cost $",
    "$x$",
    "a$b$c",
    "\x1b[31mred\x00",
    "\u2028sep\ud800",
    "é ü 漢字",
    "-> n1",
    "}",
]


def test_hostile_names_stay_labels() -> None:
    x = symgraph.CustomInput(1)
    y = x
    for name in HOSTILE:
        y = symgraph.add_to_graph(operator.add, y, 1, custom_name=name)
    model = symgraph.SymbolicModel(x, y)
    nodes, edges = model_nodes(model.to_dot())
    assert list(nodes) == [f"n{i}" for i in range(1, len(HOSTILE) + 2)]
    assert edges == expected_edges(model) == [(f"n{i}", f"n{i + 1}") for i in range(1, len(HOSTILE) + 1)]
    for i, name in enumerate(HOSTILE, start=2):
        # Escaped as the summary escapes it (control characters shown, not acted on), then kept verbatim.
        assert label_lines(nodes[f"n{i}"]["label"]) == [escape(name, 60), "wrap(add)", "int"]
        assert "\n" not in nodes[f"n{i}"]["label"]


def test_hostile_input_keys_and_output_roles() -> None:
    a, b = symgraph.CustomInput("p"), symgraph.CustomInput("q")
    joined = a + b
    keys = {'k"ey': a, "new\nline\\": b}
    model = symgraph.SymbolicModel(keys, [joined, a])
    nodes, edges = model_nodes(model.to_dot())
    labels = {k: label_lines(v["label"]) for k, v in nodes.items()}
    assert labels == {
        "n1": ['k"ey', "Input", "str", "output [1]"],
        "n2": ["new\\nline\\", "Input", "str"],
        "n3": ["AddOpLayer_1", "str", "output [0]"],
    }
    # a is an input and an output: drawn as an output; b is an input only.
    assert nodes["n1"]["fillcolor"] == nodes["n3"]["fillcolor"] == '"#fce5cd"'
    assert nodes["n2"]["fillcolor"] == '"#d9ead3"' and "peripheries" not in nodes["n2"]
    assert edges == expected_edges(model) == [("n1", "n3"), ("n2", "n3")]


def test_guards_get_no_node_and_readers_read_what_they_check() -> None:
    x = symgraph.CustomInput([4, 5])
    first, second = x
    model = symgraph.SymbolicModel(x, first * second)
    nodes, edges = model_nodes(model.to_dot())
    # The rows of the summary: the guard checking the length has none.
    summary: list[str] = []
    model.summary(print_fn=summary.append)
    rows = [line.split()[1] for line in summary[0].splitlines()[3:-1]]
    assert [label_lines(v["label"])[0] for v in nodes.values()] == rows
    assert "Elements" not in " ".join(rows)
    assert len(nodes) == len(model.plan.inputs) + len(model.plan.steps) - 1
    by_name = {label_lines(v["label"])[0]: k for k, v in nodes.items()}
    unpack = [k for name, k in by_name.items() if name.startswith("UnpackLayer")]
    assert sorted(edges) == sorted(
        [(by_name["Input_1"], u) for u in unpack] + [(u, by_name["MulOpLayer_1"]) for u in unpack]
    )


def test_a_model_without_its_graph_gives_the_same_text() -> None:
    x = symgraph.CustomInput([1, 2, 3])
    model = symgraph.SymbolicModel(x, symgraph.add_to_graph(sum, x, custom_name='total "sum"') * 2)
    expected = model.to_dot()
    for clone in (
        pickle.loads(pickle.dumps(model)),
        copy.deepcopy(model),
        symgraph.SymbolicModel.from_spec(model.to_spec()),
    ):
        with pytest.raises(symgraph.MissingGraphError):
            clone.inputs  # noqa: B018 - the graph is gone
        assert clone.to_dot() == expected


def test_outputs_in_a_dict_or_list_say_where_they_are() -> None:
    # The oracle: what the model returns, looked up by the label's own key.
    x = symgraph.CustomInput(3)
    mean, spread = x + 1, x * 2
    keys = {'mean "μ"\n': mean, "spread": spread, "again": mean}
    model = symgraph.SymbolicModel(x, keys)
    nodes, _ = model_nodes(model.to_dot())
    labels = {label_lines(v["label"])[0]: label_lines(v["label"]) for v in nodes.values()}
    returned = model(5)
    assert labels["LambdaOpLayer_1"][-1] == "output ['mean \"μ\"\\n'], ['again']"
    assert labels["LambdaOpLayer_2"][-1] == "output ['spread']"
    assert returned['mean "μ"\n'] == returned["again"] == 6 and returned["spread"] == 10
    assert labels["Input_1"] == ["Input_1", "int"]
    # One output that is the whole result needs no place.
    assert label_lines(model_nodes(symgraph.SymbolicModel(x, mean).to_dot())[0]["n2"]["label"]) == [
        "LambdaOpLayer_1",
        "int",
    ]
    text = symgraph.add_to_graph(str, x, custom_name="text")
    listed = symgraph.SymbolicModel(x, [text, mean])
    places = {label_lines(v["label"])[0]: label_lines(v["label"])[-1] for v in model_nodes(listed.to_dot())[0].values()}
    assert listed(7) == ["7", 8]
    assert places == {"Input_1": "int", "text": "output [0]", "LambdaOpLayer_1": "output [1]"}
