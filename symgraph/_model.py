"""Models: replay the recorded operations between chosen inputs and outputs."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from symgraph._codegen import generate
from symgraph._errors import MissingGraphError
from symgraph._executors import DEFAULT_EXECUTOR, Executor, build_runner, evaluation_plan, options_dict
from symgraph._failures import note_failed_step
from symgraph._graph import WeakGraph
from symgraph._interpreter import interpret
from symgraph._pickling import check_picklable
from symgraph._plan import Plan, build_plan
from symgraph._summary import format_summary
from symgraph._symbolic import SymbolicData
from symgraph._text import describe, escape

__all__ = ["ExecutorChoice", "Program", "SymbolicModel", "extend_outputs"]


def extend_outputs(outputs: Any, output: Any, key: str | None = None) -> Any:
    """A model's output structure with one more output, as ``add_output`` builds it.

    Args:
        outputs: The current outputs: one value, a list or tuple, or a dict.
        output: The value to add.
        key: The new entry's key; required for dict outputs, refused otherwise.

    Returns:
        A dict with the new key, a list or tuple one longer, or the pair
        ``(outputs, output)`` for a single output.

    Raises:
        TypeError: ``key`` is missing for dict outputs, or given for others.
        ValueError: ``key`` is already an output.

    Example:
        >>> extend_outputs([1, 2], 3), extend_outputs("a", "b"), extend_outputs({"x": 1}, 2, key="y")
        ([1, 2, 3], ('a', 'b'), {'x': 1, 'y': 2})
    """
    if isinstance(outputs, dict):
        if key is None:
            raise TypeError("this model returns a dict; pass add_output(value, key=...)")
        if key in outputs:
            raise ValueError(f"the model already has an output named {key!r}")
        return {**outputs, key: output}
    if key is not None:
        raise TypeError("key= is only for models whose outputs are a dict")
    if isinstance(outputs, (list, tuple)):
        return type(outputs)([*outputs, output])
    return (outputs, output)


class Program:
    """A plan made runnable: the executor's runner plus argument binding and input checks.

    Backends that need their own model class (an ``nn.Module``, say) wrap a
    ``Program`` rather than re-implementing binding and execution.

    Args:
        plan: The plan to run.
        executor: An executor name or :class:`~symgraph.plugin.Executor`.
        options: The executor's options; ``"fallback"`` names an executor to use,
            with a warning, when this one cannot run.
        host: The model, passed on to the executor.

    Attributes:
        executor: The executor in use (the fallback, if one was used).
        runner: The executor's runner: ``runner(*values)``.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import Program, build_plan
        >>> a, b = symgraph.CustomInput(1), symgraph.CustomInput(2)
        >>> program = Program(build_plan({"a": a, "b": b}, a - b)[0])
        >>> program.runner(*program.bind((), {"a": 10, "b": 3}))
        7
    """

    __slots__ = ("checks", "executor", "n_positional", "plan", "runner")

    def __init__(
        self,
        plan: Plan,
        executor: str | Executor = DEFAULT_EXECUTOR,
        options: Mapping[str, Any] | None = None,
        host: Any = None,
    ) -> None:
        if not isinstance(plan, Plan):
            raise TypeError(f"Program() needs a Plan, got {type(plan).__name__}")
        self.plan = plan
        self.executor, self.runner = build_runner(executor, options, plan, host)
        self.checks = tuple((i, spec.check) for i, spec in enumerate(plan.inputs) if spec.check is not None)
        # Calls go through bind(); this lets the common case skip every other check.
        self.n_positional = len(plan.inputs) if plan.input_keys is None else -1

    def _names(self) -> str:
        keys = self.plan.input_keys
        if keys is not None:
            return ", ".join(describe(k) for k in keys)
        return ", ".join(escape(s.name) for s in self.plan.inputs)

    def bind(self, args: Sequence[Any], kwargs: dict[str, Any]) -> Sequence[Any]:
        """Match call arguments to input slots.

        Raises:
            TypeError: wrong number of inputs, or missing or unexpected keys.
        """
        if not kwargs and len(args) == self.n_positional:
            return args
        keys = self.plan.input_keys
        n = len(self.plan.inputs)
        if keys is None:
            if kwargs:
                raise TypeError(
                    f"this model takes its {n} input(s) ({self._names()}) by position; "
                    f"got keyword argument(s) {', '.join(map(describe, kwargs))}"
                )
            if len(args) != n:
                raise TypeError(f"this model takes {n} input(s) ({self._names()}), got {len(args)}")
            return args
        if args:
            raise TypeError(
                f"this model takes its inputs by keyword ({self._names()}); got {len(args)} positional argument(s)"
            )
        missing = [k for k in keys if k not in kwargs]
        if missing:
            raise TypeError(f"missing input(s) {', '.join(map(describe, missing))}; this model takes {self._names()}")
        if len(kwargs) != n:
            extra = [k for k in kwargs if k not in keys]
            raise TypeError(f"unexpected input(s) {', '.join(map(describe, extra))}; this model takes {self._names()}")
        return [kwargs[k] for k in keys]

    def check(self, values: Sequence[Any]) -> None:
        """Run the backends' input validators."""
        for i, check in self.checks:
            check(values[i])

    def interpret_call(self, args: Sequence[Any], kwargs: dict[str, Any], *, check: bool, host: Any = None) -> Any:
        """Bind, optionally check, and run through the reference interpreter (models' ``interpret``).

        ``host`` is the model, whose constants the interpreter reads as its
        generated code does (see :class:`~symgraph.plugin.EvaluationHost`).
        """
        values = self.bind(args, kwargs)
        if check:
            self.check(values)
        return interpret(evaluation_plan(host, self.plan), values)


class ExecutorChoice:
    """What every model offers about its executor; backends' model classes mix it in.

    A model keeps the executor it was asked for and its options in
    ``_executor_choice``, and its :class:`Program` in ``_program``. Programs are
    made by :meth:`_program_for`, which a backend overrides to pass itself as
    the executor's host; :meth:`_switch` makes one for a new choice and
    :meth:`_rebuild` one for a new plan.

    Example:
        >>> import symgraph
        >>> from symgraph.plugin import ExecutorChoice
        >>> issubclass(symgraph.SymbolicModel, ExecutorChoice)
        True
    """

    _program: Program
    _executor_choice: tuple[str | Executor, dict[str, Any]]

    def _program_for(self, plan: Plan, executor: str | Executor, options: Mapping[str, Any]) -> Program:
        return Program(plan, executor, options)

    def _switch(self, plan: Plan, executor: str | Executor, options: Mapping[str, Any] | None) -> None:
        # Built first, assigned after: a choice that cannot run leaves the model as it was.
        checked = options_dict(options)
        program = self._program_for(plan, executor, checked)
        self._program, self._executor_choice = program, (executor, checked)

    def _rebuild(self, plan: Plan) -> Program:
        executor, options = self._executor_choice
        return self._program_for(plan, executor, options)

    @property
    def executor(self) -> str:
        """The name of the executor that runs the model (the fallback's, if one was used).

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(1)
            >>> symgraph.SymbolicModel(x, x + 1).executor
            'codegen'
        """
        return self._program.executor.name

    @property
    def executor_options(self) -> dict[str, Any]:
        """A copy of the options the executor was asked for with."""
        return dict(self._executor_choice[1])

    def set_executor(self, executor: str | Executor, **options: Any) -> None:
        """Run the model on another executor from now on.

        The new executor is built first; if that fails, the model keeps running
        as before.

        Args:
            executor: A name or an :class:`~symgraph.plugin.Executor`.
            **options: The executor's options.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([1, 2])
            >>> model = symgraph.SymbolicModel(x, x * 2)
            >>> model.set_executor("interpreter")
            >>> model.executor, model([3])
            ('interpreter', [3, 3])
        """
        self._switch(self._program.plan, executor, options)

    # -- the symgraph format ----------------------------------------------------------
    def to_spec(self) -> dict[str, Any]:
        """The model as a spec: a dict of JSON values that :meth:`from_spec` builds it back from.

        Functions and classes are named by import path; arrays and tensors are
        ``{"$constant": key}`` entries, whose values :meth:`spec_constants` gives
        (``docs/spec-format.md`` describes the format).

        Raises:
            SaveError: the model holds what the format cannot store (a lambda,
                a layer whose arguments cannot be read back); the message names it.

        Example:
            >>> import json, symgraph
            >>> x = symgraph.CustomInput(2)
            >>> model = symgraph.SymbolicModel(x, x * 3)
            >>> spec = model.to_spec()
            >>> symgraph.SymbolicModel.from_spec(json.loads(json.dumps(spec)))(5)
            15
        """
        from symgraph._spec import model_to_spec

        return model_to_spec(self)[0]

    def spec_constants(self) -> dict[str, Any]:
        """The values of the ``{"$constant": key}`` entries of :meth:`to_spec`, by key.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(2)
            >>> symgraph.SymbolicModel(x, x * 3).spec_constants()
            {}
        """
        from symgraph._spec import model_to_spec

        return model_to_spec(self)[1]

    @classmethod
    def from_spec(
        cls,
        spec: Mapping[str, Any],
        constants: Mapping[str, Any] | None = None,
        *,
        allow: Any = (),
        executor: str | None = None,
    ) -> Any:
        """Build a model from a spec, as :meth:`to_spec` gives or a person writes it.

        Loading treats the spec as untrusted: it is checked against the schema,
        and it may only name the functions and classes of numpy, torch,
        ``math``, ``operator``, safe builtins, and ``allow``.

        Args:
            spec: The spec.
            constants: The values of its ``$constant`` entries, by key.
            allow: More functions, classes or modules the spec may name.
            executor: The executor to run on, instead of the spec's. A spec may
                choose only ``"codegen"`` or ``"interpreter"`` by itself; plugin
                executors (``"compile"``), which compile or capture, are chosen here.

        Raises:
            SpecError: the spec is malformed, is for another model class, or
                names something not permitted; the message says where.

        Example:
            >>> import symgraph
            >>> spec = {
            ...     "format": "symgraph.model", "version": 1, "model": "symgraph",
            ...     "inputs": [{"name": "x"}], "input_keys": None,
            ...     "steps": [{"name": "y", "op": "call", "func": {"$object": "builtins:sorted"},
            ...                "args": [{"$ref": "x"}], "kwargs": {"reverse": True}}],
            ...     "outputs": {"$ref": "y"},
            ...     "options": {"check_inputs": True, "executor": "codegen", "executor_options": {}},
            ... }
            >>> symgraph.SymbolicModel.from_spec(spec)([2, 3, 1])
            [3, 2, 1]
        """
        from symgraph._spec import spec_to_model
        from symgraph._spec_codecs import model_codec_for_type

        return spec_to_model(spec, constants, allow, kind=model_codec_for_type(cls).kind, executor=executor)

    # -- pictures --------------------------------------------------------------------------
    def plot(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        rotate: bool = False,
        figsize: tuple[float, float] | None = None,
        font_size: float = 9.0,
        dpi: float = 100,
    ) -> Any:
        """Draw the model's layers from its inputs to its outputs; save the picture to ``path`` if given.

        Each layer is a box with its name, its class (where the name does not say
        it) and its output's shape or type; inputs and outputs have colours of
        their own, which a legend names. Layers sit one level after their deepest
        parent, a skip connection runs in a lane beside the chain it skips, and a
        deep model is folded into columns. The picture is sized for its text, so
        no label overlaps another. It is made from the plan, as :meth:`summary`
        is, so a loaded or unpickled model draws too.

        Args:
            path: Where to save the picture; its suffix chooses the format
                (``.png``, ``.svg``, ``.pdf``).
            rotate: Levels run left to right instead of downwards.
            figsize: Width and height in inches; the drawing is scaled to fit.
                By default, the size the text needs.
            font_size: Text height in points.
            dpi: Resolution of a saved raster picture.

        Returns:
            The ``matplotlib.figure.Figure``, made without pyplot (no window opens).

        Raises:
            ImportError: matplotlib is missing (``pip install 'symgraph-py[draw]'``).

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput("a,b")
            >>> figure = symgraph.SymbolicModel(x, x.split(",")).plot()
            >>> [t.get_text() for t in figure.axes[0].texts if t.get_gid() == "symgraph-title"]
            ['Input_1', 'GetAttr_1', 'wrap(split)_1']
        """
        from symgraph._drawing import plot_plan

        return plot_plan(self._program.plan, path, rotate=rotate, figsize=figsize, font_size=font_size, dpi=dpi)

    def to_dot(self, *, rotate: bool = False) -> str:
        r"""The drawing of :meth:`plot` as Graphviz DOT text, for ``dot -Tsvg`` and other Graphviz tools.

        Needs no library. Names are escaped: a quote, backslash or newline in a
        custom name stays text and cannot change the DOT.

        Args:
            rotate: Levels run left to right (``rankdir=LR``) instead of downwards.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(2.0)
            >>> print(symgraph.SymbolicModel(x, -x).to_dot())
            digraph symgraph {
              rankdir=TB;
              node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];
              n1 [label="Input_1\nfloat", fillcolor="#d9ead3", color="#38761d", penwidth=2];
              n2 [label="NegOpLayer_1\nfloat", fillcolor="#fce5cd", color="#b45f06", penwidth=2, peripheries=2];
              n1 -> n2;
            }
        """
        from symgraph._drawing import plan_dot

        return plan_dot(self._program.plan, rotate=rotate)

    def executor_stats(self) -> dict[str, Any]:
        """What the executor reports about its work; ``{"executor": name}`` from one that reports nothing.

        The ``cuda_graphs`` executor reports graphs captured and held,
        replays, eager calls with the reason for each fallback, and its pool's memory.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(1)
            >>> symgraph.SymbolicModel(x, x + 1).executor_stats()
            {'executor': 'codegen'}
        """
        stats = getattr(self._program.runner, "executor_stats", None)
        return {"executor": self.executor} if stats is None else dict(stats())


class SymbolicModel(ExecutorChoice):
    """A callable that replays the operations recorded between inputs and outputs.

    Only the nodes on a path from an input to an output run; anything else in
    the graph is ignored. By default replay runs straight-line Python generated
    and compiled once, when the model is built (see :attr:`source`); another
    executor can run it instead (see :func:`symgraph.available_executors`).

    The model holds its graph weakly: :attr:`inputs`, :attr:`outputs` and
    :meth:`add_output` work while the symbolic values are still referenced
    elsewhere, and the model never keeps the graph's example values alive.

    Args:
        inputs: A symbolic value, a list or tuple of them, or a dict of them. A
            dict makes the model take keyword arguments named by its keys. Any
            node can serve as an input, not only a ``CustomInput``.
        outputs: A symbolic value, a list or tuple, or a dict of them; the model
            returns the same structure.
        check_inputs: Run the backends' input checks (shapes, ranks) on every
            call. Generic Python values have no checks.
        executor: How the model runs: ``"codegen"`` (the default),
            ``"interpreter"``, ``"dask"``, a plugin's executor name, or an
            :class:`~symgraph.plugin.Executor` object.
        executor_options: Options for the executor. ``"fallback"`` names an
            executor to use, with a warning, when this one cannot run.

    Raises:
        GraphError: an output depends on a value that is not among ``inputs``
            (the message names it), or the graph has a cycle.
        TypeError: ``inputs`` or ``outputs`` are not symbolic values, or an
            executor option is unknown.
        ExecutorError: the executor cannot run this model.

    Example:
        >>> import symgraph
        >>> prices = symgraph.CustomInput({"apple": 3, "pear": 5})
        >>> count = symgraph.CustomInput(2)
        >>> total = symgraph.add_to_graph(sum, prices.values()) * count
        >>> model = symgraph.SymbolicModel({"prices": prices, "count": count}, {"total": total})
        >>> model(prices={"fig": 4}, count=3)
        {'total': 12}
    """

    def __init__(
        self,
        inputs: Any,
        outputs: Any,
        *,
        check_inputs: bool = True,
        executor: str | Executor = DEFAULT_EXECUTOR,
        executor_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._switch(build_plan(inputs, outputs)[0], executor, executor_options)
        self.check_inputs = check_inputs
        self._graph: WeakGraph | None = WeakGraph(inputs, outputs)

    # -- calling -------------------------------------------------------------------
    # ``self`` is positional-only: a dict input may be named "self".
    def __call__(self, /, *args: Any, **kwargs: Any) -> Any:
        program = self._program
        values = program.bind(args, kwargs)
        if self.check_inputs and program.checks:
            program.check(values)
        try:
            return program.runner(*values)
        except Exception as exc:
            note_failed_step(exc)
            raise

    def interpret(self, /, *args: Any, **kwargs: Any) -> Any:
        """Run the model through the slow reference interpreter, whatever its executor.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput("ab")
            >>> model = symgraph.SymbolicModel(x, x.upper() * 2)
            >>> model.interpret("hi") == model("hi") == "HIHI"
            True
        """
        return self._program.interpret_call(args, kwargs, check=self.check_inputs)

    # -- structure -----------------------------------------------------------------
    def _graph_or_raise(self, what: str) -> WeakGraph:
        if self._graph is None:
            raise MissingGraphError(f"{what}: this model was unpickled, copied or loaded and holds no graph")
        return self._graph

    @property
    def inputs(self) -> Any:
        """The symbolic inputs, in the structure they were given.

        Raises:
            MissingGraphError: the graph is gone, or the model was unpickled.
        """
        return self._graph_or_raise("inputs").inputs("inputs")

    @property
    def outputs(self) -> Any:
        """The symbolic outputs, in the structure they were given.

        Raises:
            MissingGraphError: the graph is gone, or the model was unpickled.
        """
        return self._graph_or_raise("outputs").outputs("outputs")

    @property
    def plan(self) -> Plan:
        """The flat plan the model runs."""
        return self._program.plan

    @property
    def source(self) -> str:
        """The Python source that code generation makes for this model.

        It is what the default ``codegen`` executor runs; other executors may run
        the plan another way.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([3, 1, 2])
            >>> first, *rest = x
            >>> print(symgraph.SymbolicModel(x, first * 10 + rest[1]).source, end="")
            def replay(v0):
                v0 = c0(v0)
                v1 = v0[0]
                v1 = v1 * 10
                v0 = v0[2]
                v0 = v1 + v0
                return v0
        """
        return generate(self._program.plan).source

    def add_output(self, output: SymbolicData, key: str | None = None) -> None:
        """Add an output; the model is rebuilt, or left as it was if that fails.

        Args:
            output: A symbolic value reachable from the model's inputs.
            key: Required when the outputs are a dict; the new entry's key.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput(3)
            >>> half = x / 2
            >>> model = symgraph.SymbolicModel(x, half + 1)
            >>> model.add_output(half)
            >>> model(10)
            (6.0, 5.0)
        """
        graph = self._graph_or_raise("add_output")
        inputs, outputs = graph.inputs("add_output"), graph.outputs("add_output")
        new = extend_outputs(outputs, output, key)
        program = self._rebuild(build_plan(inputs, new)[0])
        self._graph, self._program = WeakGraph(inputs, new), program

    def summary(self, print_fn: Callable[[str], Any] = print, *, show_params: bool | None = None) -> None:
        """Print a Keras-like table of the model's layers.

        Columns: index (``*`` marks outputs), layer name, output type (or shape, for
        backends that know shapes), parameter count when a backend counts
        parameters, and the indices of each layer's parents.

        Args:
            print_fn: Receives the table as one string.
            show_params: Force the parameter column on or off.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput("a,b")
            >>> symgraph.SymbolicModel(x, x.split(","), check_inputs=False).summary()
            ___________________________________________________________
                 Layer           Output                       Parent
            ===========================================================
            1    Input_1         str
            2    GetAttr_1       builtin_function_or_method   1
            3*   wrap(split)_1   list                         2
            ===========================================================
        """
        print_fn(format_summary(self._program.plan, show_params=show_params))

    # -- copying -------------------------------------------------------------------
    def __copy__(self) -> SymbolicModel:
        # A shallow copy shares the graph link and the runner; deep copies and
        # pickles keep only the plan and the executor choice.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        # The plan holds everything needed to run; the graph (and its example
        # values) stays behind.
        check_picklable(self._program.plan)
        return self._state()

    def _state(self) -> dict[str, Any]:
        executor, options = self._executor_choice
        return {
            "plan": self._program.plan,
            "check_inputs": self.check_inputs,
            "executor": executor,
            "executor_options": options,
        }

    def __deepcopy__(self, memo: dict[int, Any]) -> SymbolicModel:
        # Deep copies keep lambdas by reference, so they skip the pickle check.
        clone = object.__new__(type(self))
        memo[id(self)] = clone
        clone.__setstate__(copy.deepcopy(self._state(), memo))
        return clone

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.check_inputs = state["check_inputs"]
        self._graph = None
        self._switch(state["plan"], state["executor"], state["executor_options"])

    def __repr__(self) -> str:
        plan = self._program.plan
        return f"<SymbolicModel: {len(plan.inputs)} input(s), {len(plan.steps)} step(s), executor {self.executor!r}>"


def _encode_core(model: SymbolicModel, ctx: Any) -> tuple[Plan, dict[str, Any]]:
    return model.plan, {}


def _decode_core(section: dict[str, Any], ctx: Any, path: str) -> Callable[[Plan, dict[str, Any]], SymbolicModel]:
    from symgraph._spec_values import object_fields

    object_fields(section, path, set())

    def build(plan: Plan, options: dict[str, Any]) -> SymbolicModel:
        model = object.__new__(SymbolicModel)
        model.__setstate__({"plan": plan, **options})
        return model

    return build


def _register() -> None:
    from symgraph._spec_codecs import ModelCodec, register_model_codec

    register_model_codec(ModelCodec("symgraph", SymbolicModel, _encode_core, _decode_core))


_register()
