"""Shared helpers of the torch tier."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest.importorskip("torch")


def summary_of(model) -> str:  # type: ignore[no-untyped-def]
    """The model's summary with trailing blanks stripped from each line."""
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    return "\n".join(line.rstrip() for line in lines[0].splitlines())


def table(text: str) -> str:
    """An expected table written in a test, normalised like :func:`summary_of`."""
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_watching_forward(call: Callable[..., Any], cls: type, *args: Any) -> tuple[Any, bool]:
    """``call(*args)``, and whether ``cls.forward`` ran during it (it does not on a fast path)."""
    code = cls.forward.__code__
    seen: list[bool] = []
    sys.setprofile(lambda frame, event, arg: seen.append(True) if event == "call" and frame.f_code is code else None)
    try:
        out = call(*args)
    finally:
        sys.setprofile(None)
    return out, bool(seen)


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pytorch_symbolic"


def load_example(name: str) -> ModuleType:
    """The pytorch-symbolic example module ``name``, loaded once from its file (examples/ is not a package)."""
    key = f"_pytorch_symbolic_example_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]
