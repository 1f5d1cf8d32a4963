"""Shared checks of the reliability tier.

The hostile-input tests check three things about every model they build, besides
its answers: the generated source holds nothing the user wrote, the summary shows
user text without letting it drive the terminal or forge rows, and code smuggled
in through a name never runs (it would create a sentinel file in the test's
working directory). The checks are fixtures, since ``--import-mode=importlib``
leaves conftest modules unimportable by name.
"""

from __future__ import annotations

import ast
import builtins
import io
import keyword
import re
import sys
import tokenize
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import symgraph
from symgraph.plugin import OPERATORS

# Names the generated source may hold besides pool constants (c<k>), variables
# (v<k>) and the function's own name: the builtins the default emitters write,
# and those the operator table's templates call (``abs({0})``).
SOURCE_BUILTINS = frozenset(
    {"getattr", "slice"} | {name for spec in OPERATORS.values() for name in re.findall(r"[A-Za-z_]\w*", spec.template)}
)
assert all(hasattr(builtins, name) for name in SOURCE_BUILTINS), SOURCE_BUILTINS
_OWN_NAME = re.compile(r"(?:[vc](?:0|[1-9][0-9]*)|replay)\Z")
# Unicode categories that must never reach a summary raw: control characters,
# line and paragraph separators (they end lines), and lone surrogates (they cannot
# be encoded, so printing the summary would raise).
_BANNED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` that a terminal or a line splitter would act on, escaped for messages."""
    return [f"U+{ord(ch):04X}" for ch in text if unicodedata.category(ch) in _BANNED_CATEGORIES]


def assert_clean_text(text: object, what: str) -> None:
    """``text`` is an exact str with no raw control character, separator or surrogate."""
    assert type(text) is str, f"{what}: expected an exact str, got {type(text).__name__}"
    bad = raw_controls(text)
    assert not bad, f"{what} holds raw control characters {bad[:10]}: {text[:300]!a}"


def assert_clean_source(source: str) -> None:
    """The generated source holds only names the library made and no user text.

    Every identifier is ``replay``, a variable ``v<k>``, a pool constant ``c<k>``,
    a builtin the emitters write, or a keyword; the only literals are
    non-negative decimal ints, ``None`` and the bools; there are no strings and
    no comments.
    """
    assert type(source) is str
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for tok in tokens:
        where = f"token {tok.string!r} at {tok.start} of\n{source[:2000]}"
        if tok.type == tokenize.NAME:
            ok = (
                _OWN_NAME.match(tok.string) is not None
                or tok.string in SOURCE_BUILTINS
                or keyword.iskeyword(tok.string)
            )
            assert ok, f"unexpected name: {where}"
        elif tok.type == tokenize.NUMBER:
            assert tok.string.isdigit() and tok.string.isascii(), f"unexpected number literal: {where}"
        else:
            allowed = {
                tokenize.OP,
                tokenize.NEWLINE,
                tokenize.NL,
                tokenize.INDENT,
                tokenize.DEDENT,
                tokenize.ENDMARKER,
            }
            assert tok.type in allowed, f"unexpected {tokenize.tok_name[tok.type]}: {where}"
    tree = ast.parse(source)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.FunctionDef) and tree.body[0].name == "replay"
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant):
            assert node.value is None or type(node.value) in (int, bool), f"literal {node.value!r} in\n{source}"
        assert not isinstance(node, (ast.JoinedStr, ast.Lambda, ast.Import, ast.ImportFrom, ast.Attribute)), (
            f"{type(node).__name__} in generated source:\n{source}"
        )


def summary_lines(model: Any) -> list[str]:
    """The model's summary, split into lines, after checking it is clean.

    The summary comes as one exact str, with no raw control character; it has
    exactly one line per row (inputs and steps) between its rules, and each row
    begins with its own index, so no name can forge or hide a row.
    """
    printed: list[object] = []
    model.summary(print_fn=printed.append)
    assert len(printed) == 1, f"summary() called print_fn {len(printed)} times"
    text = printed[0]
    assert type(text) is str
    lines = text.split("\n")
    for i, line in enumerate(lines):
        assert_clean_text(line, f"summary line {i}")
    plan = model.plan
    n_rows = len(plan.inputs) + len(plan.steps)
    rules = [i for i, line in enumerate(lines) if line and set(line) == {"="}]
    assert len(rules) == 2, f"expected 2 '=' rules in the summary, found {len(rules)}:\n{text[:3000]}"
    rows = lines[rules[0] + 1 : rules[1]]
    assert len(rows) == n_rows, f"{n_rows} rows expected, {len(rows)} lines found:\n{text[:3000]}"
    outputs = plan.output_slots()
    for i, row in enumerate(rows):
        index = f"{i + 1}{'*' if i in outputs else ''}"
        assert row.split(" ", 1)[0] == index, f"row {i + 1} begins {row[:40]!r}"
    return rows


def assert_clean_networkx(model: Any) -> None:
    """``to_networkx`` numbers nodes like the summary rows, and their text attributes are clean."""
    try:
        import networkx  # noqa: F401
    except ImportError:
        return
    graph = symgraph.to_networkx(model)
    plan = model.plan
    assert sorted(graph.nodes) == list(range(1, len(plan.inputs) + len(plan.steps) + 1))
    for n, data in graph.nodes(data=True):
        assert_clean_text(data["name"], f"to_networkx node {n} name")
        assert_clean_text(data["output"], f"to_networkx node {n} output")


class Checks:
    """The checks above, handed to tests by the ``checks`` fixture."""

    text = staticmethod(assert_clean_text)
    source = staticmethod(assert_clean_source)
    summary = staticmethod(summary_lines)
    networkx = staticmethod(assert_clean_networkx)
    controls = staticmethod(raw_controls)

    def model(self, model: Any) -> list[str]:
        """Source, summary and networkx checks of one model; returns the summary rows."""
        assert_clean_source(model.source)
        rows = summary_lines(model)
        assert_clean_networkx(model)
        return rows


@pytest.fixture
def checks() -> Checks:
    """The cleanliness checks of generated source, summaries and networkx exports."""
    return Checks()


@pytest.fixture
def sentinel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A file that hostile payloads try to create, relative to the working directory.

    The test runs in ``tmp_path``; the file must not exist when it ends.
    """
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "SENTINEL"
    yield path
    assert not path.exists(), "a hostile payload ran: the SENTINEL file was created"


@pytest.fixture
def canary(tmp_path: Path) -> Path:
    """A file that an attack would create: it must never exist."""
    return tmp_path / "CANARY"


@pytest.fixture
def canary_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A module on sys.path that creates a file when it is imported: an attacker's module beside the model."""
    name = f"redteam_canary_{uuid.uuid4().hex}"
    folder = tmp_path / "on_sys_path"
    folder.mkdir()
    imported = tmp_path / "IMPORTED"
    (folder / f"{name}.py").write_text(f"open({str(imported)!r}, 'w').close()\nvalue = 1\n")
    monkeypatch.syspath_prepend(str(folder))
    try:
        yield name, imported
    finally:
        sys.modules.pop(name, None)
