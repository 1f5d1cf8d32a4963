"""The exceptions symgraph raises on purpose: one vocabulary for the core and every backend."""

from __future__ import annotations

__all__ = [
    "ExecutorError",
    "ExecutorFallbackWarning",
    "GraphError",
    "GuardError",
    "InputError",
    "MissingGraphError",
    "SaveError",
    "SpecError",
    "SymgraphError",
    "TraceError",
]


class SymgraphError(Exception):
    """Base class of every error symgraph raises on purpose.

    Example:
        >>> import symgraph
        >>> issubclass(symgraph.GraphError, symgraph.SymgraphError)
        True
    """


class GraphError(SymgraphError, ValueError):
    """The graph cannot become a model: a missing input, a cycle, a bad output.

    Example:
        >>> import symgraph
        >>> a, b = symgraph.CustomInput(1), symgraph.CustomInput(2)
        >>> try:
        ...     symgraph.SymbolicModel(a, a + b)
        ... except symgraph.GraphError as e:
        ...     print("missing input" in str(e))
        True
    """


class MissingGraphError(GraphError, AttributeError):
    """The graph a model was built from is gone, or was never copied with the model.

    Models hold their graph weakly, so that they do not keep every example value
    alive. It is an ``AttributeError`` too, so tools that probe attributes with
    ``hasattr`` (``torch.jit.trace`` does) skip ``inputs`` and ``outputs``.

    Example:
        >>> import pickle, symgraph
        >>> x = symgraph.CustomInput(2)
        >>> clone = pickle.loads(pickle.dumps(symgraph.SymbolicModel(x, x + 1)))
        >>> hasattr(clone, "inputs"), clone(4)
        (False, 5)
    """


class TraceError(SymgraphError, TypeError):
    """A Python protocol that cannot be recorded was used on a symbolic value.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(3)
        >>> try:
        ...     bool(x)
        ... except symgraph.TraceError:
        ...     print("cannot branch on a symbolic value")
        cannot branch on a symbolic value
    """


class InputError(SymgraphError, ValueError):
    """A value passed to a model does not fit the input it was given for.

    Every backend's input checks raise it, before any step runs; the message
    names the input and what it expects.

    Example:
        >>> import symgraph
        >>> issubclass(symgraph.InputError, ValueError)
        True
    """


class GuardError(SymgraphError, ValueError):
    """A call broke an assumption the recording made from the example value.

    Where the example decided something that the replay cannot decide again (the
    length a loop was unrolled to, say), the model checks it at every call. The
    message names the step, the line of user code that recorded it, and how to
    record the decision instead.

    Example:
        >>> import symgraph
        >>> xs = symgraph.CustomInput([1, 2])
        >>> a, b = xs
        >>> model = symgraph.SymbolicModel(xs, a + b)
        >>> try:
        ...     model([1, 2, 3])
        ... except symgraph.GuardError as e:
        ...     print("needs exactly 2" in str(e))
        True
    """


class ExecutorError(SymgraphError, RuntimeError):
    """An executor cannot run a model: unknown, not installed, or unable to run this plan.

    symgraph never falls back to another executor on its own; pass
    ``executor_options={"fallback": "codegen"}`` to ask for that.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(1)
        >>> try:
        ...     symgraph.SymbolicModel(x, x + 1, executor="no-such-engine")
        ... except symgraph.ExecutorError as e:
        ...     print(str(e).split(";")[0])
        unknown executor 'no-such-engine'
    """


class SpecError(SymgraphError, ValueError):
    """A saved model's spec or files are malformed, or name something loading may not run.

    The message says where in the spec the problem is (``steps[3].args[0]``).

    Example:
        >>> import symgraph
        >>> try:
        ...     symgraph.SymbolicModel.from_spec({"format": "symgraph.model", "version": 99})
        ... except symgraph.SpecError as e:
        ...     print(str(e).split(";")[0])
        spec: version 99 is newer than this symgraph reads (1)
    """


class SaveError(SymgraphError, TypeError):
    """A model cannot be saved in the symgraph format: it holds something the format cannot name.

    Lambdas, local functions and layers whose constructor arguments cannot be
    read back are refused; the message names the step or layer, and says what
    to do (pickle stores them).

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput(2)
        >>> try:
        ...     symgraph.SymbolicModel(x, symgraph.add_to_graph(lambda v: v + 1, x)).to_spec()
        ... except symgraph.SaveError as e:
        ...     print(str(e).split(":")[0])
        cannot save this model in the symgraph format
    """


class ExecutorFallbackWarning(UserWarning):
    """A model runs on its fallback executor because the one asked for cannot run.

    Issued once per model build, only when the user asked for a fallback.

    Example:
        >>> import symgraph
        >>> issubclass(symgraph.ExecutorFallbackWarning, UserWarning)
        True
    """


# Raised to users, so shown under the name they import them by.
for _name in __all__:
    globals()[_name].__module__ = "symgraph"
