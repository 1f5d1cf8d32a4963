"""The built distributions, installed as a user would install them.

The wheel and the sdist are built from a copy of this checkout, then each is
installed into fresh virtual environments with only the ``torch`` extra and with
only the ``numpy`` extra, and a small model runs in each against eager code. The
environments are made two at a time, since most of the time goes to unpacking
torch.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import venv
import zipfile
from concurrent.futures import ThreadPoolExecutor
from email.parser import Parser
from pathlib import Path

import pytest

pytest.importorskip("build", reason="the build package comes with requirements-dev.txt")
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "symgraph_py"
# The machines this project runs on keep the CPU build of torch here (see the Makefile).
FIND_LINKS = ["--find-links", "/opt/wheels"] if Path("/opt/wheels").is_dir() else []
# What a checkout holds that is not part of it.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".hypothesis", ".benchmarks"
)

TORCH_PROGRAM = textwrap.dedent(
    """
    import importlib.util
    import torch
    from torch import nn
    import symgraph_torch as st

    x = st.Input((3,))
    layer = nn.Linear(3, 2)
    model = st.SymbolicModel(x, torch.relu(layer(x)) * 2)
    data = torch.randn(5, 3)
    assert torch.equal(model(data), torch.relu(layer(data)) * 2)

    import numpy as np
    import symgraph_numpy as snp  # the torch extra brings numpy

    rows = snp.Input((None, 2))
    assert snp.SymbolicModel(rows, rows.sum(axis=1))(np.ones((4, 2))).tolist() == [2.0] * 4
    assert importlib.util.find_spec("dask") is None  # the dask extra was not asked for
    print("torch ok")
    """
)

NUMPY_PROGRAM = textwrap.dedent(
    """
    import importlib.util
    import numpy as np
    import symgraph_numpy as snp

    rows = snp.Input((None, 3))
    model = snp.SymbolicModel(rows, (rows - rows.mean(axis=0)).max(axis=1))
    data = np.arange(12.0).reshape(4, 3) ** 2
    np.testing.assert_array_equal(model(data), (data - data.mean(axis=0)).max(axis=1))
    assert importlib.util.find_spec("torch") is None
    try:
        import symgraph_torch
    except ImportError as exc:
        assert exc.name == "torch", exc.name
        print(exc)
    else:
        raise AssertionError("symgraph_torch imported without torch")
    """
)


def _run(args: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel and the sdist, built without network from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("dist")
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    # Built as pip would build them, the wheel from the sdist, so that a file the
    # sdist lacks fails the wheel.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp / "out"), str(source)])
    [wheel] = (tmp / "out").glob("*.whl")
    [sdist] = (tmp / "out").glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist, "source": source}


@pytest.fixture(scope="module")
def environments(built: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    """A fresh virtual environment per (artifact, extra), with only that extra installed."""
    tmp = tmp_path_factory.mktemp("venvs")
    constraints = str(ROOT / "constraints.txt")

    def make(kind: str, extra: str) -> Path:
        home = tmp / f"{kind}-{extra}"
        venv.create(home, with_pip=True)
        python = home / "bin" / "python"
        target = f"{built[kind]}[{extra}]"
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                *FIND_LINKS,
                "-c",
                constraints,
                target,
            ]
        )
        return python

    keys = [(kind, extra) for kind in ("wheel", "sdist") for extra in ("torch", "numpy")]
    with ThreadPoolExecutor(max_workers=2) as pool:
        pythons = list(pool.map(lambda key: make(*key), keys))
    return dict(zip(keys, pythons, strict=True))


def test_the_wheel_metadata_is_the_published_one(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        [name] = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        meta = Parser().parsestr(wheel.read(name).decode())
        files = wheel.namelist()
    assert meta["Name"] == "symgraph-py"
    assert meta["License-Expression"] == "MIT" and meta["Requires-Python"] == ">=3.11"
    # Only what users install; the development tools live in requirements files.
    assert sorted(meta.get_all("Provides-Extra")) == ["all", "dask", "draw", "numpy", "torch"]
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    torch_requirements = [r for r in meta.get_all("Requires-Dist") if 'extra == "torch"' in r]
    assert any(r.startswith("numpy") for r in torch_requirements)
    # The three import packages, typed; no tests or examples inside the wheel.
    packages = {n.split("/")[0] for n in files if not n.startswith(f"{DISTRIBUTION}-")}
    assert packages == {"symgraph", "symgraph_torch", "symgraph_numpy"}
    assert {f"{p}/py.typed" for p in packages} <= set(files)
    assert any(n.endswith("/licenses/LICENSE") for n in files)


def test_the_sdist_carries_what_its_tests_need(built, tmp_path):
    with tarfile.open(built["sdist"]) as sdist:
        sdist.extractall(tmp_path, filter="data")
    [unpacked] = tmp_path.iterdir()
    source = built["source"]
    needed = [
        p.relative_to(source)
        for top in ("tests", "docs", "examples")
        for p in (source / top).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    needed += [Path(n) for n in ("README.md", "LICENSE", "conftest.py", "constraints.txt", "pyproject.toml")]
    missing = [str(n) for n in needed if not (unpacked / n).is_file()]
    assert not missing, f"the sdist lacks {missing}"
    # The unpacked sdist collects the same tests, doctests and docs pages as the
    # checkout it was built from: nothing a test imports or reads is left out.
    assert _collected(unpacked) == _collected(source)


def _collected(where: Path) -> list[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    args = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=where, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ids = [line for line in done.stdout.splitlines() if "::" in line]
    assert len(ids) > 1000, done.stdout[-500:]
    return ids


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_only_the_torch_extra_runs_a_torch_model(environments, kind):
    python = environments[kind, "torch"]
    # -W error: with the torch extra, numpy is there and `import torch` warns of nothing.
    assert _run([str(python), "-W", "error", "-c", TORCH_PROGRAM], cwd=Path(python).parent).strip() == "torch ok"
    report = _run([str(python), "-m", "symgraph"], cwd=Path(python).parent)
    assert "symgraph_torch._backend:BACKEND  [symgraph-py 0.1.0]  loads" in report


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_only_the_numpy_extra_runs_a_pipeline_and_names_the_torch_extra(environments, kind):
    python = environments[kind, "numpy"]
    message = _run([str(python), "-W", "error", "-c", NUMPY_PROGRAM], cwd=Path(python).parent).strip()
    assert message == (
        "symgraph_torch needs PyTorch, which is not installed here; install the extra: pip install 'symgraph-py[torch]'"
    )
    # The torch backend's entry point is declared whatever the extras; without torch
    # it is reported as unavailable, which is not a failure.
    done = subprocess.run([str(python), "-m", "symgraph"], capture_output=True, text=True, cwd=Path(python).parent)
    assert done.returncode == 0, done.stdout + done.stderr
    [torch_line] = [line for line in done.stdout.splitlines() if line.split()[:1] == ["torch"]]
    assert "unavailable, torch is not installed: ImportError: symgraph_torch needs PyTorch" in torch_line
    assert "symgraph_numpy._backend:BACKEND  [symgraph-py 0.1.0]  loads" in done.stdout
