"""A griffe extension for the documentation site: symgraph's docstrings as mkdocstrings reads them.

The docstrings are written for ``help()``, doctest and Sphinx-style readers:
Google sections, ``Example:`` headings over doctest lines, and roles such as
``:class:`SymbolicModel```. Two things in them would render badly on the site,
so they are rewritten (in griffe's copy only, never in the source):

* an ``Example:`` heading becomes ``Examples:``, the heading griffe's Google
  parser reads as an examples section, whose ``>>>`` lines are shown as code
  (under ``Example:`` they were prose, and ``x[0][1]`` a Markdown link);
* a role becomes a code span: ``:class:`~symgraph.SymbolicModel``` reads
  ``SymbolicModel``, the way Sphinx shows it.

mkdocs.yml loads this file by its path, relative to the repository root, the
directory mkdocs runs in.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`(?P<tilde>~?)(?P<target>[^`]+)`")
_EXAMPLE_HEADING = re.compile(r"^(?P<indent>[ \t]*)Example:[ \t]*$", re.MULTILINE)


def _code_span(match: re.Match[str]) -> str:
    target = match["target"]
    if match["tilde"]:
        target = target.rsplit(".", 1)[-1]
    return f"`{target}`"


def rewrite(text: str) -> str:
    r"""The docstring ``text`` with its example headings and roles rewritten for mkdocstrings.

    Example:
        >>> rewrite("See :class:`~symgraph.SymbolicModel` and :func:`add_to_graph`.\n\nExample:\n    >>> 1\n    1")
        'See `SymbolicModel` and `add_to_graph`.\n\nExamples:\n    >>> 1\n    1'
    """
    return _EXAMPLE_HEADING.sub(r"\g<indent>Examples:", _ROLE.sub(_code_span, text))


class SymgraphDocstrings(griffe.Extension):
    """Rewrites the docstrings of every object of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and everything defined in it (aliases point at their targets)."""
        stack: list[griffe.Object] = [pkg]
        while stack:
            obj = stack.pop()
            if obj.docstring is not None:
                obj.docstring.value = rewrite(obj.docstring.value)
            stack.extend(member for member in obj.members.values() if not member.is_alias)
