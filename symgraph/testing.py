"""The backend conformance suite: the contract every symgraph backend meets, as tests to inherit.

symgraph's own backends (generic Python values, numpy, torch) are checked by
this suite, and a third-party backend can be too, the way pandas' extension
arrays inherit ``pandas.tests.extension.base``: subclass
:class:`BackendConformance` in a test module, name the subclass ``Test...`` so
that pytest collects it, and fill in the hooks. pytest then runs every
``test_*`` method against the backend: recorded programs of operators,
indexing, slicing, unpacking and wrapped calls replay as the eager code runs,
on every executor; models pickle and copy; summaries and input checks use the
backend's hooks; the plugin loads lazily through its entry point.

A third-party backend's ``tests/test_mybackend.py`` (``mylib`` is the library,
``symgraph_mylib`` the plugin declaring ``mylib = "symgraph_mylib:BACKEND"`` in
the ``symgraph.backends`` entry-point group):

    import mylib

    from symgraph.testing import BackendConformance


    class TestMyBackend(BackendConformance):
        plugin_module = "symgraph_mylib"  # checked to load only when a value is wrapped

        def make_value(self, rng):
            return mylib.array([rng.uniform(-5, 5) for _ in range(4)])

        def equal(self, actual, expected):
            return bool(mylib.array_equal(actual, expected))

        def reduce(self, value):
            return mylib.sum(value)

        def expected_symbolic_class(self):
            from symgraph_mylib import SymbolicMyArray

            return SymbolicMyArray

        def make_unfit_value(self, rng):  # optional: only backends with input checks
            return mylib.zeros((2, 2))

``pytest tests/test_mybackend.py`` then runs the suite. The module needs pytest
(it uses ``pytest.raises`` and ``pytest.skip``) but imports no backend library.

Stability: :class:`BackendConformance`, its hooks and its attributes follow
symgraph's versioning, as :mod:`symgraph.plugin` does: semantic versioning from
1.0 on; before 1.0 a minor release may change them, and the changelog says how.
The checks themselves are the contract and grow with it: a release may add
``test_*`` methods or make existing ones stricter, so a backend that passed may
fail a new check of behaviour symgraph always promised. A subclass that must
opt out of one check overrides that method (with a ``pytest.skip`` saying why).
Names starting with ``_`` may change in any release.

Example:
    The checks a subclass inherits; a check that takes an ``executor`` runs
    once per executor:

    >>> for name in sorted(dir(BackendConformance)):
    ...     if name.startswith("test_"):
    ...         print(name)
    test_add_output
    test_deepcopy
    test_executor_equals_eager
    test_failed_steps_leave_no_node
    test_input_checks_reject_unfit_values
    test_inputs_by_keyword
    test_output_structures
    test_pickled_models_replay_the_same
    test_replay_equals_eager_and_interpreter
    test_saved_models_replay_the_same
    test_summary_uses_the_backend_description
    test_the_plugin_loads_lazily_through_its_entry_point
    test_values_get_the_backend_class

    A subclass is an ordinary class, so its hooks and checks can also be
    called directly (:class:`BackendConformance` shows a complete one):

    >>> import random
    >>> from symgraph.plugin import symbolic_class_for
    >>> class TestSets(BackendConformance):
    ...     def make_value(self, rng):
    ...         return set(rng.sample(range(10), 3))
    ...     def expected_symbolic_class(self):
    ...         return symbolic_class_for(set)
    >>> sorted(TestSets().make_value(random.Random(0)))
    [0, 6, 9]
    >>> TestSets().test_failed_steps_leave_no_node()
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import pickle
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

try:
    import pytest
except ImportError as _exc:  # pragma: no cover - pytest is what runs this module
    raise ImportError("symgraph.testing needs pytest: pip install pytest") from _exc

from symgraph import CustomInput, ExecutorError, InputError, SymbolicData, SymbolicModel, add_to_graph, load, save
from symgraph.plugin import ENTRY_POINT_GROUP, available_executors, backend_for, describe_value

__all__ = ["EAGER_BINARY", "EAGER_UNARY", "BackendConformance", "models_on_each_executor"]

EAGER_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
    "divmod": lambda a, b: divmod(a, b),
    "@": lambda a, b: a @ b,
    "&": lambda a, b: a & b,
    "|": lambda a, b: a | b,
    "^": lambda a, b: a ^ b,
    "<<": lambda a, b: a << b,
    ">>": lambda a, b: a >> b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
"""Every binary operator of the table, spelled out as Python code rather than taken from it.

The oracle for tests of how a backend records and replays operators.
"""
EAGER_UNARY: dict[str, Callable[[Any], Any]] = {
    "neg": lambda a: -a,
    "pos": lambda a: +a,
    "invert": lambda a: ~a,
    "abs": lambda a: abs(a),
}
"""The unary operators, likewise."""

# Executors every backend runs on, whatever it is; dask joins them when it is installed.
_CORE_EXECUTORS = frozenset({"codegen", "interpreter"})


def models_on_each_executor(
    inputs: Any, outputs: Any, executors: Sequence[str] = ("codegen", "interpreter")
) -> list[SymbolicModel]:
    """One model per executor, for a test that checks each against eager code.

    Example:
        >>> import symgraph
        >>> x = symgraph.CustomInput([1, 2])
        >>> [m([5]) for m in models_on_each_executor(x, x * 2)]
        [[5, 5], [5, 5]]
    """
    return [SymbolicModel(inputs, outputs, executor=name) for name in executors]


_DRAWS = 5  # random draws per replay check


def _call(func: Callable[..., Any], *args: Any) -> Any:
    return func(*args)


def _program(x: Any, y: Any, reduce: Callable[[Any], Any], call: Callable[..., Any]) -> dict[str, Any]:
    """The same operations on symbolic values (``call=add_to_graph``) or on real ones (``call=_call``)."""
    first, *_ = x
    return {
        "sum": x + y,
        "sub": x - y,
        "mul": x * y,
        "scaled": x * 2,
        "rscaled": 3 * y,
        "neg": -x,
        "abs": abs(y),
        "index": x[0],
        "slice": x[1:],
        "first": first,
        "chain": (x + y * 3) - x,
        "wrapped": call(reduce, x * y),
    }


def _dask_importable() -> bool:
    try:
        return importlib.util.find_spec("dask") is not None
    except (ImportError, ValueError):  # blocked, or a broken installation
        return False


# Runs in a fresh interpreter: importing the library and symgraph (symgraph.testing
# too) must not load the plugin; wrapping a value must, through its entry point.
_LAZY_LOAD_CHECK = """
import base64, importlib, pickle, sys
from importlib import metadata
plugin, library = sys.argv[1], sys.argv[2]
importlib.import_module(library)
import symgraph, symgraph.plugin, symgraph.testing
report = {"after_import": plugin in sys.modules}
first, second = pickle.loads(base64.b64decode(sys.stdin.read()))
report["after_unpickling"] = plugin in sys.modules
x = symgraph.CustomInput(first)
report["after_wrapping"] = plugin in sys.modules
report["handle_class"] = f"{type(x).__module__}.{type(x).__qualname__}"
eps = [ep for ep in metadata.entry_points(group=symgraph.plugin.ENTRY_POINT_GROUP) if ep.name == library]
report["entry_points"] = [ep.value for ep in eps]
report["backend_is_entry_point"] = bool(eps) and symgraph.plugin.backend_for(type(first)) is eps[0].load()
report["replayed"] = symgraph.SymbolicModel(x, x * 2 + 1)(second)
sys.stdout.write(base64.b64encode(pickle.dumps(report)).decode())
"""


def _refuse_pickle(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("symgraph.load unpickled something; it must read no pickle")


class BackendConformance:
    """Base class of a backend's conformance tests: subclass it as ``Test...`` and fill in the hooks.

    Every ``test_*`` method checks one part of the contract against values from
    :meth:`make_value`. The replay checks record one program on two inputs
    ``x`` and ``y``: ``x + y``, ``x - y``, ``x * y``, ``x * 2``, ``3 * y``,
    ``-x``, ``abs(y)``, ``x[0]``, ``x[1:]``, the first element unpacked with
    ``first, *_ = x``, ``(x + y * 3) - x`` and ``add_to_graph(self.reduce, x * y)``;
    values must support all of these. The program's results are compared with
    the same code run eagerly, through :meth:`assert_equal`.

    Required hooks: :meth:`make_value`, :meth:`reduce`,
    :meth:`expected_symbolic_class`. Optional: :meth:`equal` or
    :meth:`assert_equal` (``==`` by default), :meth:`make_unfit_value` (for
    backends with input checks), :meth:`executor_names` or :attr:`executors`,
    :attr:`plugin_module`, :attr:`required_modules`.

    Models pickle their plan, and the plan holds the recorded call of
    :meth:`reduce` (a bound method of the suite) and the backend's input checks,
    so define the subclass, and check classes, at a module's top level.

    Attributes:
        plugin_module: The plugin's module (``"symgraph_numpy"``), which must
            stay unimported until a value is wrapped and then load through the
            ``symgraph.backends`` entry point named after the values' library.
            ``None`` (the default) skips that check, for backends registered at
            runtime and for generic Python values. The check pickles
            :meth:`make_value`'s values to a fresh interpreter.
        required_modules: Modules the suite needs; the class's tests are skipped
            when one cannot be imported (for optional libraries).
        executors: The executors to check replay on; ``None`` (the default)
            means every name in :func:`symgraph.available_executors`. ``codegen``
            and ``interpreter`` must run, and ``dask`` when dask is installed;
            another executor that refuses the program with
            :class:`~symgraph.ExecutorError` is skipped, naming its reason.

    Example:
        A pure-Python value type that passes the whole suite:

        >>> import operator
        >>> from symgraph.plugin import symbolic_class_for
        >>> class Vec(tuple):
        ...     def _zip(self, other, fn):
        ...         others = other if isinstance(other, tuple) else (other,) * len(self)
        ...         return Vec(map(fn, self, others))
        ...     def __add__(self, other): return self._zip(other, operator.add)
        ...     def __sub__(self, other): return self._zip(other, operator.sub)
        ...     def __mul__(self, other): return self._zip(other, operator.mul)
        ...     __radd__, __rmul__ = __add__, __mul__
        ...     def __neg__(self): return Vec(-a for a in self)
        ...     def __abs__(self): return Vec(map(abs, self))
        >>> class TestVec(BackendConformance):
        ...     def make_value(self, rng):
        ...         return Vec(rng.randint(-9, 9) for _ in range(4))
        ...     def reduce(self, value):
        ...         return sum(value)
        ...     def expected_symbolic_class(self):
        ...         return symbolic_class_for(Vec)
        >>> suite = TestVec()
        >>> suite.test_replay_equals_eager_and_interpreter()
        >>> suite.test_executor_equals_eager("interpreter")
        >>> suite.test_add_output()

        In a test module, pytest collects ``TestVec`` and runs every check, once
        per executor where a check takes one.
    """

    plugin_module: ClassVar[str | None] = None
    required_modules: ClassVar[tuple[str, ...]] = ()
    executors: ClassVar[tuple[str, ...] | None] = None

    # -- hooks -----------------------------------------------------------------------
    def make_value(self, rng: random.Random) -> Any:
        """An example value of the backend, drawn from ``rng``. Required.

        Every call must return a value of the same kind and shape (for arrays, a
        1-D float array of 4 elements, say), with at least 2 elements, that
        supports the operations listed in the class's description.

        Args:
            rng: The random source; the suite seeds it, so draws repeat.

        Example:
            >>> import random
            >>> class TestLists(BackendConformance):
            ...     def make_value(self, rng):
            ...         return [rng.randint(0, 9) for _ in range(3)]
            >>> TestLists().make_value(random.Random(0))
            [6, 6, 0]
        """
        raise NotImplementedError(f"{type(self).__name__} must implement make_value(rng)")

    def reduce(self, value: Any) -> Any:
        """A reduction of one value, such as its sum; the program records it with ``add_to_graph``. Required.

        It is recorded as a bound method of the suite, which must pickle (define
        the suite class at a module's top level); ``reduce = staticmethod(f)``
        records a module-level function ``f`` instead.

        Example:
            >>> class TestLists(BackendConformance):
            ...     def reduce(self, value):
            ...         return sum(value)
            >>> TestLists().reduce([1, 2, 3])
            6
        """
        raise NotImplementedError(f"{type(self).__name__} must implement reduce(value)")

    def expected_symbolic_class(self) -> type[SymbolicData]:
        """The :class:`~symgraph.SymbolicData` subclass that must wrap the backend's values. Required.

        Where the backend's library is optional, import the plugin inside this
        method rather than at the test module's top level: the class is then
        skipped through :attr:`required_modules` instead of failing to import.

        Example:
            >>> from symgraph.plugin import symbolic_class_for
            >>> class TestSets(BackendConformance):
            ...     def expected_symbolic_class(self):
            ...         return symbolic_class_for(set)
            >>> TestSets().expected_symbolic_class().__name__
            'SymbolicData[set]'
        """
        raise NotImplementedError(f"{type(self).__name__} must implement expected_symbolic_class()")

    def equal(self, actual: Any, expected: Any) -> bool:
        """Whether a replayed result equals the eager one; ``==`` by default.

        Results include the values themselves, their elements (``x[0]``), slices
        and the results of :meth:`reduce`. Override it, or :meth:`assert_equal`
        for more detailed failure messages.

        Example:
            >>> BackendConformance().equal([1.0, 2.0], [1.0, 2.0])
            True
        """
        return bool(actual == expected)

    def assert_equal(self, actual: Any, expected: Any) -> None:
        """Raise :class:`AssertionError` unless :meth:`equal` holds.

        Raises:
            AssertionError: ``actual`` differs from ``expected``.

        Example:
            >>> BackendConformance().assert_equal([1], [2])
            Traceback (most recent call last):
            ...
            AssertionError: [1] != [2]
        """
        if not self.equal(actual, expected):
            raise AssertionError(f"{actual!r} != {expected!r}")

    def make_unfit_value(self, rng: random.Random) -> Any:
        """A value of the backend's kind that its input checks reject, or ``None`` (the default) for no checks.

        A model recorded on :meth:`make_value`'s value must raise
        :class:`symgraph.InputError` naming the input when called with it; a
        value of another shape is typical. With ``check_inputs=False`` the model
        must compute ``value * 2`` on it as the eager code does.

        Example:
            >>> import random
            >>> class TestLists(BackendConformance):
            ...     def make_unfit_value(self, rng):
            ...         return [[1.0], [2.0]]
            >>> BackendConformance().make_unfit_value(random.Random(0)) is None
            True
            >>> TestLists().make_unfit_value(random.Random(0))
            [[1.0], [2.0]]
        """
        return None

    def executor_names(self) -> tuple[str, ...]:
        """The executors to check replay on: :attr:`executors`, or every available one.

        It is read when pytest collects the tests. Override it to choose at that
        moment, or set :attr:`executors` to narrow the list.

        Example:
            >>> class TestFast(BackendConformance):
            ...     executors = ("codegen",)
            >>> TestFast().executor_names()
            ('codegen',)
            >>> {"codegen", "interpreter"} <= set(BackendConformance().executor_names())
            True
        """
        return tuple(self.executors) if self.executors is not None else available_executors()

    # -- pytest machinery ------------------------------------------------------------
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        """Parametrize the tests that take an ``executor`` with :meth:`executor_names`.

        pytest calls this hook of a test class while collecting its tests.

        Example:
            >>> class Metafunc:
            ...     fixturenames = ["executor"]
            ...     def parametrize(self, name, values, ids):
            ...         print(name, values)
            >>> class TestFast(BackendConformance):
            ...     executors = ("codegen", "interpreter")
            >>> TestFast().pytest_generate_tests(Metafunc())
            executor ('codegen', 'interpreter')
        """
        if "executor" in metafunc.fixturenames:
            names = self.executor_names()
            metafunc.parametrize("executor", names, ids=list(names))

    @pytest.fixture(autouse=True)
    def _symgraph_required_modules(self) -> None:
        for name in self.required_modules:
            pytest.importorskip(name)

    # -- helpers ---------------------------------------------------------------------
    def _two_inputs(self, rng: random.Random) -> tuple[SymbolicData, SymbolicData]:
        return CustomInput(self.make_value(rng)), CustomInput(self.make_value(rng))

    def _check_equal(self, actual: Any, expected: Any, where: str) -> None:
        try:
            self.assert_equal(actual, expected)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from exc

    def _check_program(self, actual: Any, expected: dict[str, Any], where: str) -> None:
        if not isinstance(actual, dict) or list(actual) != list(expected):
            raise AssertionError(f"{where}: expected a dict with keys {list(expected)}, got {actual!r}")
        for key in expected:
            self._check_equal(actual[key], expected[key], f"{where}, output {key!r}")

    def _check_sequence(self, actual: Any, expected: list[Any] | tuple[Any, ...], where: str) -> None:
        if type(actual) is not type(expected) or len(actual) != len(expected):
            raise AssertionError(
                f"{where}: expected a {type(expected).__name__} of {len(expected)} outputs, got {actual!r}"
            )
        for i, (got, want) in enumerate(zip(actual, expected, strict=True)):
            self._check_equal(got, want, f"{where}, output {i}")

    # -- the checks ------------------------------------------------------------------
    def test_values_get_the_backend_class(self) -> None:
        """Inputs and the results of operations on them are of :meth:`expected_symbolic_class`.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput({1, 2})
            >>> type(x).__name__, type(x | {3}).__name__
            ('SymbolicData[set]', 'SymbolicData[set]')
        """
        rng = random.Random(0)
        cls = self.expected_symbolic_class()
        x = CustomInput(self.make_value(rng))
        assert type(x) is cls, f"CustomInput() made a {type(x).__qualname__}, expected {cls.__qualname__}"
        assert isinstance(x + x, cls), f"x + x is a {type(x + x).__qualname__}, expected a {cls.__qualname__}"

    def test_replay_equals_eager_and_interpreter(self) -> None:
        """The program replays (default executor) and interprets as the eager code computes, on new values.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([1, 2])
            >>> model = symgraph.SymbolicModel(x, x[1:] * 2)
            >>> model([5, 6, 7]) == model.interpret([5, 6, 7]) == [6, 7] * 2
            True
        """
        rng = random.Random(1)
        x, y = self._two_inputs(rng)
        model = SymbolicModel((x, y), _program(x, y, self.reduce, add_to_graph))
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            expected = _program(a, b, self.reduce, _call)
            self._check_program(model(a, b), expected, f"replay, draw {draw}")
            self._check_program(model.interpret(a, b), expected, f"interpreter, draw {draw}")

    def test_executor_equals_eager(self, executor: str) -> None:
        """The program runs on ``executor`` as the eager code computes; pytest passes each of :meth:`executor_names`.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([1, 2])
            >>> symgraph.SymbolicModel(x, x + [3], executor="interpreter")([0])
            [0, 3]
        """
        rng = random.Random(5)
        x, y = self._two_inputs(rng)
        outputs = _program(x, y, self.reduce, add_to_graph)
        try:
            model = SymbolicModel((x, y), outputs, executor=executor)
        except ExecutorError as exc:
            if executor in _CORE_EXECUTORS or (executor == "dask" and _dask_importable()):
                raise
            pytest.skip(f"executor {executor!r} cannot run this backend's program: {exc}")
        assert model.executor == executor, f"the model runs on {model.executor!r}, not on {executor!r}"
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            self._check_program(model(a, b), _program(a, b, self.reduce, _call), f"{executor}, draw {draw}")

    def test_inputs_by_keyword(self) -> None:
        """A model with dict inputs takes them by keyword, in any order, and replays as eager code computes.

        Example:
            >>> import symgraph
            >>> a, b = symgraph.CustomInput([1]), symgraph.CustomInput([2])
            >>> symgraph.SymbolicModel({"a": a, "b": b}, a + b)(b=[4], a=[3])
            [3, 4]
        """
        rng = random.Random(6)
        x, y = self._two_inputs(rng)
        model = SymbolicModel({"x": x, "y": y}, _program(x, y, self.reduce, add_to_graph))
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            expected = _program(a, b, self.reduce, _call)
            self._check_program(model(x=a, y=b), expected, f"keyword replay, draw {draw}")
            self._check_program(model(y=b, x=a), expected, f"keyword replay in another order, draw {draw}")
            self._check_program(model.interpret(x=a, y=b), expected, f"keyword interpreter, draw {draw}")

    def test_output_structures(self) -> None:
        """Outputs given as one value, a tuple, a list or a dict come back in that structure.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([1])
            >>> symgraph.SymbolicModel(x, [x, x * 2])([0]), symgraph.SymbolicModel(x, {"n": x})([0])
            ([[0], [0, 0]], {'n': [0]})
        """
        rng = random.Random(7)
        x, y = self._two_inputs(rng)
        single = SymbolicModel((x, y), x - y)
        as_tuple = SymbolicModel((x, y), (x + y, x * 2))
        as_list = SymbolicModel((x, y), [abs(y), -x, x[0]])
        as_dict = SymbolicModel((x, y), {"mul": x * y, "wrapped": add_to_graph(self.reduce, x)})
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            self._check_equal(single(a, b), a - b, f"single output, draw {draw}")
            self._check_sequence(as_tuple(a, b), (a + b, a * 2), f"tuple outputs, draw {draw}")
            self._check_sequence(as_list(a, b), [abs(b), -a, a[0]], f"list outputs, draw {draw}")
            self._check_program(as_dict(a, b), {"mul": a * b, "wrapped": self.reduce(a)}, f"dict outputs, draw {draw}")

    def test_add_output(self) -> None:
        """``add_output`` extends a single output to a pair, a tuple or list by one, a dict by a key.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([1])
            >>> model = symgraph.SymbolicModel(x, [x])
            >>> model.add_output(x * 2)
            >>> model([0])
            [[0], [0, 0]]
        """
        rng = random.Random(8)
        x, y = self._two_inputs(rng)
        single = SymbolicModel((x, y), x - y)
        single.add_output(x + y)
        as_tuple = SymbolicModel((x, y), (x * y,))
        as_tuple.add_output(-y)
        as_list = SymbolicModel((x, y), [x])
        as_list.add_output(abs(x))
        as_dict = SymbolicModel({"x": x, "y": y}, {"sum": x + y})
        as_dict.add_output(add_to_graph(self.reduce, y), key="wrapped")
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            self._check_sequence(single(a, b), (a - b, a + b), f"single output plus one, draw {draw}")
            self._check_sequence(as_tuple(a, b), (a * b, -b), f"tuple outputs plus one, draw {draw}")
            self._check_sequence(as_list(a, b), [a, abs(a)], f"list outputs plus one, draw {draw}")
            expected = {"sum": a + b, "wrapped": self.reduce(b)}
            self._check_program(as_dict(x=a, y=b), expected, f"dict outputs plus one, draw {draw}")

    def test_pickled_models_replay_the_same(self) -> None:
        """Models survive ``pickle`` and replay as before, on the default executor and on the interpreter.

        Example:
            >>> import pickle
            >>> import symgraph
            >>> x = symgraph.CustomInput([1])
            >>> pickle.loads(pickle.dumps(symgraph.SymbolicModel(x, x * 3)))([2])
            [2, 2, 2]
        """
        rng = random.Random(2)
        x, y = self._two_inputs(rng)
        model = SymbolicModel({"x": x, "y": y}, {"out": add_to_graph(self.reduce, x * y - x)})
        clone = pickle.loads(pickle.dumps(model))
        a, b = self.make_value(rng), self.make_value(rng)
        self._check_equal(clone(x=a, y=b)["out"], self.reduce(a * b - a), "pickled model")
        program = SymbolicModel((x, y), _program(x, y, self.reduce, add_to_graph))
        interpreted = SymbolicModel((x, y), _program(x, y, self.reduce, add_to_graph), executor="interpreter")
        clones = pickle.loads(pickle.dumps((program, interpreted)))
        assert clones[1].executor == "interpreter", f"the unpickled model runs on {clones[1].executor!r}"
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            expected = _program(a, b, self.reduce, _call)
            self._check_program(clones[0](a, b), expected, f"pickled program, draw {draw}")
            self._check_program(clones[1](a, b), expected, f"pickled interpreted program, draw {draw}")

    def test_saved_models_replay_the_same(self, tmp_path: Any) -> None:
        """Models saved with ``symgraph.save`` load with ``symgraph.load``, without pickle, and replay the same.

        The backend's input checks must survive too: a backend that has them
        registers a check codec (:func:`symgraph.plugin.register_check_codec`).

        Example:
            >>> import tempfile, symgraph
            >>> x = symgraph.CustomInput([1])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     symgraph.load(symgraph.save(symgraph.SymbolicModel(x, x * 3), f"{tmp}/m.zip"))([2])
            [2, 2, 2]
        """
        rng = random.Random(11)
        x, y = self._two_inputs(rng)
        model = SymbolicModel({"x": x, "y": y}, {"sum": x + y, "mixed": x * y - x, "neg": -y, "first": x[0]})
        real_loads = pickle.loads
        pickle.loads = _refuse_pickle
        try:
            loaded = [load(save(model, tmp_path / name)) for name in ("model", "model.zip")]
        finally:
            pickle.loads = real_loads
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            for where, clone in zip(("directory", "zip"), loaded, strict=True):
                out = clone(x=a, y=b)
                self._check_equal(out["sum"], a + b, f"saved to a {where}, draw {draw}")
                self._check_equal(out["mixed"], a * b - a, f"saved to a {where}, draw {draw}")
                self._check_equal(out["neg"], -b, f"saved to a {where}, draw {draw}")
                self._check_equal(out["first"], a[0], f"saved to a {where}, draw {draw}")
        unfit = self.make_unfit_value(rng)
        if unfit is not None:
            for clone in loaded:
                with pytest.raises(InputError):
                    clone(x=unfit, y=self.make_value(rng))

    def test_deepcopy(self) -> None:
        """``copy.deepcopy`` and ``copy.copy`` of a model replay as the model does.

        Example:
            >>> import copy
            >>> import symgraph
            >>> x = symgraph.CustomInput([1])
            >>> copy.deepcopy(symgraph.SymbolicModel(x, x + [0]))([5])
            [5, 0]
        """
        rng = random.Random(9)
        x, y = self._two_inputs(rng)
        model = SymbolicModel({"x": x, "y": y}, _program(x, y, self.reduce, add_to_graph))
        deep, shallow = copy.deepcopy(model), copy.copy(model)
        assert deep is not model and shallow is not model, "copies of a model must be new objects"
        for draw in range(_DRAWS):
            a, b = self.make_value(rng), self.make_value(rng)
            expected = _program(a, b, self.reduce, _call)
            self._check_program(deep(x=a, y=b), expected, f"deep copy, draw {draw}")
            self._check_program(shallow(x=a, y=b), expected, f"shallow copy, draw {draw}")
            self._check_program(model(x=a, y=b), expected, f"the copied model, draw {draw}")

    def test_summary_uses_the_backend_description(self) -> None:
        """The summary describes inputs with the backend's :meth:`~symgraph.plugin.Backend.describe`.

        Example:
            >>> import symgraph
            >>> from symgraph.plugin import describe_value
            >>> describe_value({1, 2})
            'set'
        """
        rng = random.Random(3)
        value = self.make_value(rng)
        x = CustomInput(value)
        model = SymbolicModel(x, x * 2)
        lines: list[str] = []
        model.summary(print_fn=lines.append)
        description = describe_value(value)
        assert description in lines[0], f"the summary does not show {description!r}:\n{lines[0]}"
        backend = backend_for(type(value))
        expected = backend.describe(value) if backend is not None else type(value).__name__
        assert description == expected, f"describe_value() gives {description!r}, the backend {expected!r}"

    def test_failed_steps_leave_no_node(self) -> None:
        """An operation the value refuses raises its own error and records nothing.

        Example:
            >>> import symgraph
            >>> x = symgraph.CustomInput([1])
            >>> try:
            ...     x + "text"
            ... except TypeError as exc:
            ...     print("refused:", exc)
            refused: can only concatenate list (not "str") to list
            >>> x.children
            ()
        """
        rng = random.Random(4)
        x = CustomInput(self.make_value(rng))
        with pytest.raises(Exception):  # noqa: B017 - each backend raises its own error type
            x + "not addable"
        with pytest.raises(AttributeError):
            x.no_such_attribute  # noqa: B018
        assert x.children == (), f"failed steps left nodes behind: {x.children}"

    def test_input_checks_reject_unfit_values(self) -> None:
        """Models raise :class:`~symgraph.InputError` naming the input for :meth:`make_unfit_value`'s value.

        The check holds for replay, the interpreter, pickled and copied models;
        ``check_inputs=False`` turns it off. Skipped for backends without checks.

        Example:
            >>> import symgraph
            >>> issubclass(symgraph.InputError, ValueError)
            True
        """
        rng = random.Random(10)
        unfit = self.make_unfit_value(rng)
        if unfit is None:
            pytest.skip("make_unfit_value() returns None: this backend has no input checks")
        value = self.make_value(rng)
        x = CustomInput(value, custom_name="checked_input")
        model = SymbolicModel(x, x * 2)
        for where, checked in (
            ("replay", model),
            ("pickled model", pickle.loads(pickle.dumps(model))),
            ("deep copy", copy.deepcopy(model)),
        ):
            with pytest.raises(InputError, match="checked_input"):
                checked(unfit)
            self._check_equal(checked(value), value * 2, f"{where} of a fitting value")
        with pytest.raises(InputError, match="checked_input"):
            model.interpret(unfit)
        unchecked = SymbolicModel(x, x * 2, check_inputs=False)
        self._check_equal(unchecked(unfit), unfit * 2, "check_inputs=False")

    def test_the_plugin_loads_lazily_through_its_entry_point(self) -> None:
        """In a fresh interpreter, :attr:`plugin_module` loads only when a value is wrapped, through its entry point.

        Skipped when :attr:`plugin_module` is ``None``.

        Example:
            >>> from symgraph.plugin import ENTRY_POINT_GROUP
            >>> ENTRY_POINT_GROUP
            'symgraph.backends'
        """
        plugin = self.plugin_module
        if plugin is None:
            pytest.skip("plugin_module is None: no plugin to load through an entry point")
        rng = random.Random(0)
        first, second = self.make_value(rng), self.make_value(rng)
        library = (type(first).__module__ or "").partition(".")[0]
        data = base64.b64encode(pickle.dumps((first, second))).decode()
        run = subprocess.run(
            [sys.executable, "-c", _LAZY_LOAD_CHECK, plugin, library],
            input=data,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert run.returncode == 0, f"the lazy-loading check failed in a fresh interpreter:\n{run.stderr}"
        report = pickle.loads(base64.b64decode(run.stdout))
        assert not report["after_import"], f"importing {library} and symgraph imported {plugin} already"
        assert not report["after_unpickling"], f"unpickling {library} values imported {plugin} already"
        assert report["after_wrapping"], f"wrapping a {library} value did not import {plugin}"
        assert report["entry_points"], f"no {ENTRY_POINT_GROUP!r} entry point is named {library!r}"
        assert all(value.partition(":")[0].split(".")[0] == plugin.split(".")[0] for value in report["entry_points"]), (
            f"the {library!r} entry point names {report['entry_points']}, not {plugin}"
        )
        assert report["backend_is_entry_point"], f"the backend for {library} values is not the entry point's"
        cls = self.expected_symbolic_class()
        expected_class = f"{cls.__module__}.{cls.__qualname__}"
        assert report["handle_class"] == expected_class, f"wrapped as {report['handle_class']}, not {expected_class}"
        self._check_equal(report["replayed"], second * 2 + 1, "replay in the fresh interpreter")
