"""The documentation runs: every ```python block of README.md and docs/**/*.md, and the demo.

Blocks of one file run in order in one shared namespace, with the working directory
set to a fresh temporary folder, so a page reads like one session. Blocks fenced as
```text, ```console, ```toml or anything else are shown, not run. Pages state their
expected results with ``assert``, so a change in behaviour fails here; a ```text
block right after a ```python block shows that block's output, and is compared
with what it prints. A page leaves no files behind, neither in its working
directory nor in the repository.

The site (mkdocs.yml) lists every page, and links between pages stay inside
docs/, so that they work both on GitHub and on the site.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted([ROOT / "README.md", *DOCS.glob("**/*.md")])
DEMO = ROOT / "examples" / "demo.py"
# Pages of commands, figures or generated API reference: no code of their own to run.
NO_CODE = frozenset({"docs/index.md", "docs/benchmarks.md"}) | {
    p.relative_to(ROOT).as_posix() for p in DOCS.glob("reference/*.md")
}
# What running code may add to the checkout: caches of Python and the tools, ignored by git.
CACHES = frozenset(
    {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".benchmarks"}
)

# Libraries of the optional extras. A page that needs one that cannot be imported
# (not installed, or blocked by the core tier) is skipped rather than failed.
OPTIONAL = frozenset({"networkx", "matplotlib", "torch", "numpy", "symgraph_torch", "symgraph_numpy"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)$")


def fenced_blocks(text: str) -> list[tuple[str, int, str, bool]]:
    r"""Every fenced block: (language, line of its first code line, code, follows a block directly).

    A block *follows directly* when only blank lines stand between it and the
    previous block's closing fence.

    Example:
        >>> fenced_blocks("```python\nprint(1)\n```\n\n```text\n1\n```\nprose\n```text\nx\n```\n")
        [('python', 2, 'print(1)\n', False), ('text', 6, '1\n', True), ('text', 10, 'x\n', False)]
    """
    blocks: list[tuple[str, int, str, bool]] = []
    lines = text.splitlines()
    i = 0
    last_end = -2
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
        body = [line[len(indent) :] if line.startswith(indent) else line for line in lines[start:end]]
        adjacent = last_end >= 0 and all(not line.strip() for line in lines[last_end + 1 : i])
        blocks.append((language, start + 1, "\n".join(body) + "\n", adjacent))
        last_end = end
        i = end + 1
    return blocks


def python_blocks(text: str) -> list[tuple[int, str]]:
    r"""The ```python blocks of a Markdown text, as (line number of the first code line, code).

    Example:
        >>> python_blocks("intro\n```python\nx = 1\n```\n```text\nnot run\n```\n")
        [(3, 'x = 1\n')]
    """
    return [(line, code) for language, line, code, _ in fenced_blocks(text) if language in ("python", "py")]


def runnable_blocks(text: str) -> list[tuple[int, str, str | None]]:
    r"""The ```python blocks, each with the output it claims: a ```text block that follows it directly.

    Example:
        >>> runnable_blocks("```python\nprint(1)\n```\n```text\n1\n```\n")
        [(2, 'print(1)\n', '1\n')]
    """
    blocks = fenced_blocks(text)
    out: list[tuple[int, str, str | None]] = []
    for k, (language, line, code, _) in enumerate(blocks):
        if language not in ("python", "py"):
            continue
        following = blocks[k + 1] if k + 1 < len(blocks) else None
        claimed = following[2] if following is not None and following[0] == "text" and following[3] else None
        out.append((line, code, claimed))
    return out


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def test_pages_exist() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/guide.md", "docs/plugins.md"} <= names


def nav_pages(nav: object) -> list[str]:
    """The pages of an mkdocs ``nav``, in order, whatever the nesting of its sections.

    Example:
        >>> nav_pages([{"Home": "index.md"}, {"Guides": [{"A": "a.md"}, "b.md"]}])
        ['index.md', 'a.md', 'b.md']
    """
    pages: list[str] = []
    stack = [nav]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            pages.append(item)
        elif isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(item.values())))
        else:
            raise TypeError(f"mkdocs.yml: a nav entry is a page, a section or a list, not {item!r}")
    return pages


def test_site_lists_every_page() -> None:
    # safe_load: mkdocs.yml keeps to plain YAML (no !!python tags), which this also checks.
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    listed = nav_pages(config["nav"])
    assert len(listed) == len(set(listed)), f"mkdocs.yml lists a page twice: {sorted(listed)}"
    missing = sorted(page for page in listed if not (DOCS / page).is_file())
    assert not missing, f"mkdocs.yml lists pages that docs/ lacks: {missing}"
    unlisted = sorted({p.relative_to(DOCS).as_posix() for p in DOCS.glob("**/*.md")} - set(listed))
    assert not unlisted, f"docs/ has pages that the nav of mkdocs.yml leaves out: {unlisted}"


def test_home_page_links_every_page() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    linked = {target.partition("#")[0] for target in relative_links((DOCS / "index.md").read_text(encoding="utf-8"))}
    unlinked = [page for page in nav_pages(config["nav"]) if page != "index.md" and page not in linked]
    assert not unlinked, f"docs/index.md, the site's home, does not link to {unlinked}"


_LINK = re.compile(r"!?\[(?:[^\]`]|`[^`]*`)*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`[^`\n]*`")


def relative_links(text: str) -> list[str]:
    r"""The targets of the Markdown links and images of ``text`` that point at files, outside code.

    Example:
        >>> relative_links("[a](guide.md#x) ![p](images/p.png) [w](https://x.org) `[c](no.md)`\n```\n[d](no.md)\n```\n")
        ['guide.md#x', 'images/p.png']
    """
    lines = text.splitlines()
    inside: set[int] = set()  # indices of the lines of fenced blocks, fences included
    for _, line, code, _ in fenced_blocks(text):
        inside.update(range(line - 2, line + code.count("\n")))
    kept = "\n".join(_CODE_SPAN.sub("", ln) for i, ln in enumerate(lines) if i not in inside)
    targets = [m["target"] for m in _LINK.finditer(kept)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^#", t)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_resolve(page: Path) -> None:
    # A docs page links only within docs/, which the site holds; the rest of the
    # repository is linked by its GitHub URL. README.md, not on the site, links anywhere.
    home = DOCS if page.is_relative_to(DOCS) else ROOT
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = (page.parent / target.partition("#")[0]).resolve()
        assert path.is_relative_to(home), f"{page.name} links out of {home.name}/ to {target}: use the GitHub URL"
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_fence_parser_skips_other_languages() -> None:
    text = "```console\n$ make demo\n```\n\n```python\nassert True\n```\n```text\nout\n```\n"
    assert python_blocks(text) == [(6, "assert True\n")]


def checkout_files(root: Path = ROOT) -> set[str]:
    """Every file and folder under ``root``, as relative POSIX paths, except caches (:data:`CACHES`).

    Example:
        >>> "tests/test_docs.py" in checkout_files() and not any(".git/" in p for p in checkout_files())
        True
    """
    found: set[str] = set()
    folders = [root]
    while folders:
        folder = folders.pop()
        for entry in folder.iterdir():
            if entry.name in CACHES or entry.name.endswith(".egg-info"):
                continue
            found.add(entry.relative_to(root).as_posix())
            if entry.is_dir() and not entry.is_symlink():
                folders.append(entry)
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_code_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = page.relative_to(ROOT).as_posix()
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if name not in NO_CODE:
        assert blocks, f"{name} has no ```python blocks"
    monkeypatch.chdir(tmp_path)
    before = checkout_files()
    run_page(page, name)
    # Doc code cleans up after itself (tempfile.TemporaryDirectory), since readers run it where they stand.
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert not left, f"{name} leaves files in the working directory: {left}"
    added = sorted(checkout_files() - before)
    assert not added, f"{name} leaves files in the repository: {added}"


def run_page(page: Path, name: str) -> None:
    """Run the ```python blocks of ``page`` in order in one namespace, checking the output they show."""
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for line, code, claimed in runnable_blocks(page.read_text(encoding="utf-8")):
        # Pad so that tracebacks point at the right line of the Markdown file, and do not
        # inherit this module's __future__ imports: blocks run as a user's script would.
        compiled = compile("\n" * (line - 1) + code, str(page), "exec", dont_inherit=True)
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compiled, namespace)
        except ImportError as exc:
            missing = _missing_optional(exc)
            if missing is None:
                raise
            pytest.skip(f"{name} line {line} needs {missing}, which cannot be imported here")
        if claimed is not None:
            # A ```text block right after a block is what that block prints.
            assert _lines(printed.getvalue()) == _lines(claimed), f"{name}: the output shown after line {line}"


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
