"""The documentation runs: every ```python block of README.md and docs/*.md, and the demo.

Blocks of one file run in order in one shared namespace, with the working directory
set to a fresh temporary folder, so a page reads like one session. Blocks fenced as
```text, ```console, ```toml or anything else are shown, not run. Pages state their
expected results with ``assert``, so a change in behaviour fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
DEMO = ROOT / "examples" / "demo.py"

# Libraries of the optional extras. A page that needs one that cannot be imported
# (not installed, or blocked by the core tier) is skipped rather than failed.
OPTIONAL = frozenset({"networkx", "matplotlib", "torch", "numpy", "symgraph_torch", "symgraph_numpy"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text, as (line number of the first code line, code).

    Example:
        >>> python_blocks("intro\\n```python\\nx = 1\\n```\\n```text\\nnot run\\n```\\n")
        [(3, 'x = 1\\n')]
    """
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, indent = match["fence"], match["indent"]
        language = match["info"].strip().split(" ")[0].lower()
        start = i + 1
        end = start
        while end < len(lines) and not lines[end].strip().startswith(fence):
            end += 1
        if end == len(lines):
            raise ValueError(f"unclosed code fence opened on line {i + 1}")
        if language in ("python", "py"):
            body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start:end]]
            blocks.append((start + 1, "\n".join(body) + "\n"))
        i = end + 1
    return blocks


def test_pages_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/guide.md", "docs/plugins.md"} <= names


def test_fence_parser_skips_other_languages() -> None:
    text = "```console\n$ make demo\n```\n\n```python\nassert True\n```\n```text\nout\n```\n"
    assert python_blocks(text) == [(6, "assert True\n")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if page.name not in ("index.md", "benchmarks.md"):  # pages of commands and figures only
        assert blocks, f"{page.name} has no ```python blocks"
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for line, code in blocks:
        # Pad so that tracebacks point at the right line of the Markdown file, and do not
        # inherit this module's __future__ imports: blocks run as a user's script would.
        compiled = compile("\n" * (line - 1) + code, str(page), "exec", dont_inherit=True)
        try:
            exec(compiled, namespace)
        except ImportError as exc:
            missing = _missing_optional(exc)
            if missing is None:
                raise
            pytest.skip(f"{page.name} line {line} needs {missing}, which cannot be imported here")


def _missing_optional(exc: BaseException | None) -> str | None:
    """The optional library whose absence caused ``exc`` (possibly re-raised), if any."""
    while exc is not None:
        name = getattr(exc, "name", None)
        if isinstance(exc, ModuleNotFoundError) and name is not None and name.partition(".")[0] in OPTIONAL:
            return str(name)
        exc = exc.__cause__ or exc.__context__
    return None


def test_demo_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for label in ("Summary", "Generated source", "Replay on fresh data", "Reference interpreter"):
        assert label in out, f"the demo output lacks the section {label!r}:\n{out}"
    assert "def replay(" in out
    assert "interpreter agrees" in out
