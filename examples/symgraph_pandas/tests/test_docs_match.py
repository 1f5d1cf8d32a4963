"""The walkthrough in docs/plugins.md shows the package's code: the same definitions, less docstrings."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"
MODULES = ("_handle", "_checks", "_backend", "_saving")
SECTION = "## Walkthrough: a plugin for pandas"


def _strip_docstrings(tree):
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and body:
            first = body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _definitions(source):
    found = {}
    for node in _strip_docstrings(ast.parse(source)).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            found[node.name] = ast.dump(node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            if isinstance(target, ast.Name):
                found[target.id] = ast.dump(node.value)
    return found


def _page_code():
    text = PAGE.read_text()
    section = text[text.index(SECTION) : text.index("## Checklist")]
    return "\n".join(re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL))


@pytest.mark.parametrize("module", MODULES)
def test_every_definition_of_the_package_is_on_the_page_unchanged(module):
    source = Path(importlib.import_module(f"symgraph_pandas.{module}").__file__).read_text()
    package, page = _definitions(source), _definitions(_page_code())
    assert package, module
    for name, dump in package.items():
        if name == "__all__":
            continue
        assert name in page, f"{module}.{name} is not on the page"
        assert page[name] == dump, f"{module}.{name} differs between the page and the package"


def test_the_check_notices_a_difference():
    changed = _page_code().replace('"integer"', '"int"', 1)
    source = Path(importlib.import_module("symgraph_pandas._checks").__file__).read_text()
    assert _definitions(changed)["dtype_kind"] != _definitions(source)["dtype_kind"]


def test_the_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    assert blocks
    namespace = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert list(tmp_path.iterdir()) == []
