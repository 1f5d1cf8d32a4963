"""What a new user meets first: the package's metadata, a plugin without its library, ``python -m symgraph``."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import symgraph

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# Run in a fresh interpreter: makes `library` unimportable, then imports `plugin`.
_BLOCKED_IMPORT = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] == {library!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
try:
    import {plugin}
except ImportError as exc:
    print(type(exc).__name__, "|", exc.name, "|", exc)
"""


@pytest.mark.parametrize(
    ("plugin", "library", "extra", "named"),
    [("symgraph_torch", "torch", "torch", "PyTorch"), ("symgraph_numpy", "numpy", "numpy", "numpy")],
)
def test_a_plugin_without_its_library_names_the_extra_to_install(plugin, library, extra, named):
    code = _BLOCKED_IMPORT.format(library=library, plugin=plugin)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    kind, name, message = (part.strip() for part in out.split("|"))
    assert (kind, name) == ("ImportError", library)
    assert message == (
        f"{plugin} needs {named}, which is not installed here; install the extra: pip install 'symgraph-py[{extra}]'"
    )


def test_python_m_symgraph_lists_every_plugin_and_whether_it_loads():
    pytest.importorskip("torch")
    pytest.importorskip("numpy")
    done = subprocess.run([sys.executable, "-m", "symgraph"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"symgraph {symgraph.__version__} ")
    assert f"torch {metadata.version('torch')}," in lines[2]
    for name, value in (
        ("torch", "symgraph_torch._backend:BACKEND"),
        ("numpy", "symgraph_numpy._backend:BACKEND"),
        ("compile", "symgraph_torch._executors:COMPILE"),
        ("cuda_graphs", "symgraph_torch._cuda_graphs:CUDA_GRAPHS"),
    ):
        [line] = [line for line in lines if line.split()[:2] == [name, value]]
        assert line.endswith("loads")
    assert lines[-1] == "built-in executors: codegen, interpreter, dask"


def test_python_m_symgraph_says_which_plugin_fails_to_load(tmp_path):
    # A broken plugin: an entry point naming a module that raises on import.
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[symgraph.executors]\nbroken = broken_plugin:EXECUTOR\n")
    env = {"PYTHONPATH": str(tmp_path), "PATH": ""}
    done = subprocess.run([sys.executable, "-m", "symgraph"], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 1
    [line] = [line for line in done.stdout.splitlines() if line.split()[:1] == ["broken"]]
    assert line.endswith("FAILS to load: RuntimeError: this plugin is broken on purpose")
    assert "[broken-plugin 1.0]" in line


def test_the_metadata_says_what_is_true():
    assert PYPROJECT["requires-python"] == ">=3.11"  # BaseException.add_note is 3.11
    assert hasattr(BaseException, "add_note")
    assert PYPROJECT["license"] == "MIT" and PYPROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in PYPROJECT["classifiers"])
    # Without numpy, importing torch warns that NumPy failed to initialise.
    assert any(requirement.startswith("numpy") for requirement in PYPROJECT["optional-dependencies"]["torch"])
    # The name `symgraph` on the package index is an unrelated project's.
    assert PYPROJECT["name"] == "symgraph-py"
    assert set(PYPROJECT["optional-dependencies"]) == {"torch", "numpy", "dask", "draw", "all"}
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(PYPROJECT["urls"])


_PIP_INSTALL = re.compile(r"pip install (\S+)")


def test_every_install_line_in_the_docs_names_this_distribution_and_its_extras():
    extras = set(PYPROJECT["optional-dependencies"])
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    seen = []
    for page in pages:
        for target in _PIP_INSTALL.findall(page.read_text()):
            target = target.strip("\"'`,.):;")
            name, _, rest = target.partition("[")
            if name and not name.startswith("symgraph"):  # another package: torch, a peer, a plugin
                continue
            # From a clone (`.`) or, once released, by the distribution's own name.
            assert name in ("", "symgraph-py"), f"{page.name}: pip install {target}"
            assert set(filter(None, rest.rstrip("]").split(","))) <= extras, f"{page.name}: pip install {target}"
            seen.append(target)
    assert "[torch]" in seen and "symgraph-py[torch]" in seen and "[numpy]" in seen


def test_a_default_benchmark_run_leaves_tracked_files_alone(tmp_path, monkeypatch):
    from benchmarks import _harness

    def unavailable(quick: bool) -> _harness.Case:
        raise _harness.CaseUnavailableError("nothing to measure in this test")

    tracked = subprocess.run(
        ["git", "ls-files", "benchmarks/results"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    defaults = [str(p.relative_to(ROOT)) for p in (_harness.DEFAULT_JSON, _harness.DEFAULT_PLOT)]
    published = [str(p.relative_to(ROOT)) for p in (_harness.PUBLISHED_JSON, _harness.PUBLISHED_PLOT)]
    assert set(published) <= set(tracked) and not set(defaults) & set(tracked)
    ignored = subprocess.run(["git", "check-ignore", *defaults], capture_output=True, text=True, cwd=ROOT).stdout
    assert ignored.split() == defaults

    args = _harness.parser("bench", None, ["nothing"], save_by_default=True).parse_args([])
    assert (args.json, args.plot) == tuple(str(p) for p in (_harness.DEFAULT_JSON, _harness.DEFAULT_PLOT))
    # --publish writes the tracked files (moved to tmp_path here, to leave the real ones alone).
    monkeypatch.setattr(_harness, "PUBLISHED_JSON", tmp_path / "latest.json")
    monkeypatch.setattr(_harness, "PUBLISHED_PLOT", tmp_path / "latest.png")
    assert _harness.main({"nothing": unavailable}, "bench", None, ["--publish"], save_by_default=True) == 0
    assert (tmp_path / "latest.json").exists()
