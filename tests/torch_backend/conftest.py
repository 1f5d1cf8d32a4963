"""Shared helpers of the torch tier."""

from __future__ import annotations

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
