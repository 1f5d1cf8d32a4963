"""Fast paths for the layers every network uses: a table from layer class to the code of its forward.

A call ``layer(x)`` goes through ``Module.__call__``, ``_call_impl`` and
``forward`` before reaching the one torch function that does the work, and
``forward`` reads the parameters and buffers through ``Module.__getattr__``.
For small layers that is most of the cost. The generated code instead asks, at
every call, whether anything could make the normal path behave differently:

* per layer: that the model still holds this very layer under its name, that
  it has no hooks of any of the four kinds, that it is not compiled
  (``layer.compile()``), that its class is unchanged (``parametrize`` swaps it)
  and that it has no instance-level ``forward``;
* once per model call, in the replay's prologue: that no global module hooks
  are set, that ``torch.jit.trace`` is not tracing, and, for every class with
  a fast path in the plan, that its ``forward``, ``__call__`` and
  ``_call_impl`` are still the ones there were. The last also covers
  ``torch.fx`` tracing, which replaces ``Module.__call__`` while it traces, so
  that the graph shows the layers as ``call_module`` nodes, as a hand-written
  model's.

Only when nothing does, it runs the forward's own body, written out in
:data:`FAST_PATHS`: the torch function the forward calls, looked up in
``torch.nn.functional`` at every call as the forward looks it up, with the
layer's settings read from the layer at every call (so ``layer.p = 0.2`` or
``layer.eval()`` after building is followed) and its tensors read from
``_parameters`` and ``_buffers`` (where ``.to()``, ``load_state_dict`` and
``torch.func.functional_call`` put them). Each entry is copied from the forward
of the torch release pinned in ``constraints.txt``, and
``tests/torch_backend/test_torch_fast_path_table.py`` compares every entry with
the layer's own call. Other torch releases may write a forward differently, so
a class has a fast path only where its ``forward``'s source, comments and
docstrings aside, is the one the entry was copied from (:func:`forward_fingerprint`);
elsewhere its layers are called normally.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional
from torch.nn.modules import module as torch_module

__all__ = [
    "FAST_PATHS",
    "GLOBAL_GUARD_PARTS",
    "LAYER_GUARD_PARTS",
    "FastPath",
    "batch_norm_forward",
    "fast_path_call",
    "global_guard",
    "has_fast_path",
]

# Guard parts left out of the generated code. Only tests set it, to show that
# each part matters: without it, some test gives the wrong answer.
_omitted: frozenset[str] = frozenset()

#: The per-layer guard, part by part, in the order they are tested.
LAYER_GUARD_PARTS = (
    "identity",
    "forward_hooks",
    "forward_pre_hooks",
    "backward_hooks",
    "backward_pre_hooks",
    "compiled",
    "class",
    "instance_forward",
)

#: The guard checked once per model call, part by part.
GLOBAL_GUARD_PARTS = (
    "global_forward_hooks",
    "global_forward_pre_hooks",
    "global_backward_hooks",
    "global_backward_pre_hooks",
    "jit_tracing",
    "class_forward",
    "class_call",
    "class_call_impl",
)

_GLOBAL_HOOKS = {
    "global_forward_hooks": "_global_forward_hooks",
    "global_forward_pre_hooks": "_global_forward_pre_hooks",
    "global_backward_hooks": "_global_backward_hooks",
    "global_backward_pre_hooks": "_global_backward_pre_hooks",
}
_CLASS_PARTS = {"class_forward": "forward", "class_call": "__call__", "class_call_impl": "_call_impl"}


def batch_norm_forward(
    layer: nn.modules.batchnorm._BatchNorm,
    x: torch.Tensor,
    params: dict[str, Any],
    buffers: dict[str, Any],
) -> torch.Tensor:
    """``_BatchNorm.forward``, with the tensors read from the layer's dicts.

    Statement for statement torch's own, so that training mode counts
    ``num_batches_tracked`` and updates the running statistics as the layer does.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> bn = nn.BatchNorm1d(3).eval()
        >>> x = torch.rand(4, 3)
        >>> torch.equal(batch_norm_forward(bn, x, bn._parameters, bn._buffers), bn(x))
        True
    """
    layer._check_input_dim(x)
    factor = 0.0 if layer.momentum is None else layer.momentum
    training = layer.training
    if training and layer.track_running_stats:
        tracked = buffers["num_batches_tracked"]
        if tracked is not None:
            tracked.add_(1)
            factor = 1.0 / float(tracked) if layer.momentum is None else layer.momentum
    mean, var = buffers["running_mean"], buffers["running_var"]
    bn_training = True if training else (mean is None and var is None)
    use_buffers = not training or layer.track_running_stats
    return functional.batch_norm(
        x,
        mean if use_buffers else None,
        var if use_buffers else None,
        params["weight"],
        params["bias"],
        bn_training,
        factor,
        layer.eps,
    )


@dataclasses.dataclass(frozen=True)
class FastPath:
    """How generated code runs one layer class's forward, without ``Module.__call__``.

    Attributes:
        template: The forward's body as one expression, with ``{x}`` the input,
            ``{layer}`` the layer, ``{params}`` and ``{buffers}`` its
            ``_parameters`` and ``_buffers``, ``{F}`` ``torch.nn.functional``,
            ``{torch}`` the torch module and ``{helper}`` :attr:`helper`. The
            attribute names in it are torch's, never the user's.
        forward: :func:`forward_fingerprint` of the forward the template was
            copied from; a torch whose forward differs gets no fast path for the class.
        helper: A function the template calls, for a forward longer than one expression.

    Example:
        >>> FAST_PATHS[nn.ReLU].template
        '{F}.relu({x}, inplace={layer}.inplace)'
    """

    template: str
    forward: str
    helper: Callable[..., Any] | None = None


_CONV = FastPath("{layer}._conv_forward({x}, {params}['weight'], {params}['bias'])", "387f923f73f7f818")
_BATCH_NORM = FastPath("{helper}({layer}, {x}, {params}, {buffers})", "210df11acd98666f", batch_norm_forward)
_MAX_POOL = (
    "({x}, {layer}.kernel_size, {layer}.stride, {layer}.padding, {layer}.dilation, "
    "ceil_mode={layer}.ceil_mode, return_indices={layer}.return_indices)"
)
_AVG_POOL = "({x}, {layer}.kernel_size, {layer}.stride, {layer}.padding, {layer}.ceil_mode, {layer}.count_include_pad"

#: The layer classes with a fast path, and how each is written.
FAST_PATHS: dict[type[nn.Module], FastPath] = {
    nn.Linear: FastPath("{F}.linear({x}, {params}['weight'], {params}['bias'])", "258df55a5909bb2b"),
    nn.Conv1d: _CONV,
    nn.Conv2d: _CONV,
    nn.Conv3d: _CONV,
    nn.BatchNorm1d: _BATCH_NORM,
    nn.BatchNorm2d: _BATCH_NORM,
    nn.LayerNorm: FastPath(
        "{F}.layer_norm({x}, {layer}.normalized_shape, {params}['weight'], {params}['bias'], {layer}.eps)",
        "d0ed1f7a9eb30e56",
    ),
    nn.ReLU: FastPath("{F}.relu({x}, inplace={layer}.inplace)", "67ce5a6fdedb7447"),
    nn.GELU: FastPath("{F}.gelu({x}, approximate={layer}.approximate)", "d8b9bd6657c67586"),
    nn.SiLU: FastPath("{F}.silu({x}, inplace={layer}.inplace)", "ecce49b6ac56e2a6"),
    nn.Tanh: FastPath("{torch}.tanh({x})", "cf1c268c8562f71e"),
    nn.Sigmoid: FastPath("{torch}.sigmoid({x})", "a50049d044390378"),
    nn.LeakyReLU: FastPath("{F}.leaky_relu({x}, {layer}.negative_slope, {layer}.inplace)", "c20174dc1d8057e9"),
    nn.Dropout: FastPath("{F}.dropout({x}, {layer}.p, {layer}.training, {layer}.inplace)", "e482b7992562630a"),
    nn.MaxPool1d: FastPath("{F}.max_pool1d" + _MAX_POOL, "618451e3d44f9b22"),
    nn.MaxPool2d: FastPath("{F}.max_pool2d" + _MAX_POOL, "11e119a5ede04c2b"),
    nn.MaxPool3d: FastPath("{F}.max_pool3d" + _MAX_POOL, "270c0964efa49cca"),
    nn.AvgPool1d: FastPath("{F}.avg_pool1d" + _AVG_POOL + ")", "1cb2877ddd3cd317"),
    nn.AvgPool2d: FastPath("{F}.avg_pool2d" + _AVG_POOL + ", {layer}.divisor_override)", "e078add7f1746a34"),
    nn.AvgPool3d: FastPath("{F}.avg_pool3d" + _AVG_POOL + ", {layer}.divisor_override)", "06f15852dfb3c6a7"),
    nn.AdaptiveAvgPool1d: FastPath("{F}.adaptive_avg_pool1d({x}, {layer}.output_size)", "74d3bf9a584a17c3"),
    nn.AdaptiveAvgPool2d: FastPath("{F}.adaptive_avg_pool2d({x}, {layer}.output_size)", "6a23762bc1169dad"),
    nn.AdaptiveAvgPool3d: FastPath("{F}.adaptive_avg_pool3d({x}, {layer}.output_size)", "888bf743258cdaf6"),
    nn.AdaptiveMaxPool1d: FastPath(
        "{F}.adaptive_max_pool1d({x}, {layer}.output_size, {layer}.return_indices)", "617807175de83428"
    ),
    nn.AdaptiveMaxPool2d: FastPath(
        "{F}.adaptive_max_pool2d({x}, {layer}.output_size, {layer}.return_indices)", "fc0ca5cc96043652"
    ),
    nn.AdaptiveMaxPool3d: FastPath(
        "{F}.adaptive_max_pool3d({x}, {layer}.output_size, {layer}.return_indices)", "91ee4b12e469f328"
    ),
    nn.Flatten: FastPath("({x}).flatten({layer}.start_dim, {layer}.end_dim)", "57431b8a1f61d212"),
    nn.Embedding: FastPath(
        "{F}.embedding({x}, {params}['weight'], {layer}.padding_idx, {layer}.max_norm, "
        "{layer}.norm_type, {layer}.scale_grad_by_freq, {layer}.sparse)",
        "31107e30a472ffc4",
    ),
}

# Each class's forward at import, which the prologue checks is still in place.
# One already replaced then (not torch's own) fails the fingerprint below, and
# gets no fast path: the table's copy would skip the replacement.
_FORWARDS: dict[type[nn.Module], Callable[..., Any]] = {cls: cls.forward for cls in FAST_PATHS}


def forward_fingerprint(function: Callable[..., Any]) -> str | None:
    """A digest of ``function``'s source with comments, docstrings and layout left out; ``None`` without a source.

    Example:
        >>> forward_fingerprint(nn.ReLU.forward) == FAST_PATHS[nn.ReLU].forward
        True
    """
    try:
        source = textwrap.dedent(inspect.getsource(function))
    except (OSError, TypeError):
        return None
    tree = ast.parse(source)
    for definition in tree.body:
        if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
            definition.name = "_"  # what it does, not what it is called
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            # String statements are docstrings, or comments written as strings.
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            node.body = kept or [ast.Pass()]  # type: ignore[attr-defined]
    # Unparsed rather than dumped: the dump of a tree changes between Python versions.
    return hashlib.sha256(ast.unparse(tree).encode()).hexdigest()[:16]


# Whether each class's forward is the one its entry was copied from, found once
# per class, when a model using it first generates its code.
_matching: dict[type[nn.Module], bool] = {}


def _matches_torch(cls: type[nn.Module]) -> bool:
    found = _matching.get(cls)
    if found is None:
        found = _matching[cls] = forward_fingerprint(_FORWARDS[cls]) == FAST_PATHS[cls].forward
    return found


def has_fast_path(layer: object, n_args: int) -> bool:
    """Whether a call of ``layer`` with ``n_args`` positional arguments (and no keywords) has a fast path.

    Only the exact classes of the table have one: a subclass may change anything.

    Example:
        >>> has_fast_path(nn.ReLU(), 1), has_fast_path(nn.ReLU(), 2), has_fast_path(nn.Identity(), 1)
        (True, False, False)
    """
    cls = type(layer)
    return cls in FAST_PATHS and n_args == 1 and _matches_torch(cls)


def global_guard(classes: Sequence[type[nn.Module]], ref: Callable[[object], str]) -> str:
    """The prologue's condition: true when this call must take the version without fast paths.

    Global hooks, ``torch.jit.trace``, or a fast-path class whose ``forward``,
    ``__call__`` or ``_call_impl`` changed since generation (``torch.fx``
    tracing replaces ``Module.__call__``).

    Args:
        classes: The layer classes whose fast paths the plan uses.
        ref: The constant pool's ``ref``.

    Example:
        >>> names = {}
        >>> ref = lambda o: names.setdefault(id(o), f"c{len(names)}")
        >>> global_guard([nn.ReLU], ref).split(" or ")[:2]
        ['c0._global_forward_hooks', 'c0._global_forward_pre_hooks']
    """
    # Module attributes are read at every call, as _call_impl reads them: a test
    # or a tool may replace the dicts, not only fill them.
    parts = [f"{ref(torch_module)}.{attr}" for part, attr in _GLOBAL_HOOKS.items() if part not in _omitted]
    if "jit_tracing" not in _omitted:
        parts.append(f"{ref(torch._C._get_tracing_state)}() is not None")
    for cls in classes:
        for part, attr in _CLASS_PARTS.items():
            if part in _omitted:
                continue
            # The methods as they are now, at generation: symgraph's own module-call
            # hook may be installed, and a change after this is what is guarded.
            original = _FORWARDS[cls] if attr == "forward" else getattr(cls, attr)
            parts.append(f"{ref(cls)}.{attr} is not {ref(original)}")
    return " or ".join(parts) if parts else "False"


def fast_path_call(
    layer: nn.Module, args: Sequence[str], ref: Callable[[object], str], current: str | None = None
) -> str | None:
    """An expression running ``layer`` on ``args``, or ``None`` if the layer has no fast path.

    When the guard fails, the expression calls the layer itself, which runs its
    hooks, or its compiled version after ``layer.compile()``.

    Args:
        layer: The layer, as recorded.
        args: The call's positional argument expressions; calls with keyword
            arguments have no fast path.
        ref: The constant pool's ``ref``.
        current: An expression reading the module that holds the layer's name in
            the model now (``modules['Linear_1']``). The fast path is taken only
            while that is still ``layer`` itself; a module put there by surgery
            (a quantized or wrapped layer, any other) is called as ``module(x)``.
            ``None``: the layer is always ``layer``.

    Example:
        >>> names = {}
        >>> ref = lambda o: names.setdefault(id(o), f"c{len(names)}")
        >>> expression = fast_path_call(nn.Linear(2, 2), ["v0"], ref, "modules['Linear_1']")
        >>> expression.startswith("_layer(v0) if ((_layer := modules['Linear_1']) is not c0 or c1 or c2")
        True
    """
    if not has_fast_path(layer, len(args)):
        return None
    path = FAST_PATHS[type(layer)]
    name = ref(layer)
    # The hook dicts and the instance dict are read as constants, which halves the
    # guard's cost: torch registers and removes hooks by changing these dicts in
    # place (RemovableHandle keeps a reference to them), never by replacing them.
    # Copies and unpickled models generate their code again, for their own layers.
    # They belong to the recorded layer, so they are consulted only once the
    # identity test has shown that the model still holds that very layer.
    checks = {
        "forward_hooks": ref(layer._forward_hooks),
        "forward_pre_hooks": ref(layer._forward_pre_hooks),
        "backward_hooks": ref(layer._backward_hooks),
        "backward_pre_hooks": ref(layer._backward_pre_hooks),
        # layer.compile() sets _compiled_call_impl on the instance (the class holds
        # None), so its presence in the instance dict is the test: one dict the
        # next part reads too, not an attribute lookup through the class.
        "compiled": f"'_compiled_call_impl' in {ref(vars(layer))}",
        "class": f"{name}.__class__ is not {ref(type(layer))}",
        "instance_forward": f"'forward' in {ref(vars(layer))}",
    }
    guard = " or ".join(check for part, check in checks.items() if part not in _omitted)
    # ``_parameters`` and ``_buffers`` too are changed in place, by ``.to()`` and
    # by ``functional_call``.
    names = {
        "x": args[0],
        "params": ref(layer._parameters),
        "buffers": ref(layer._buffers),
        "F": ref(functional),
        "torch": ref(torch),
        "helper": ref(path.helper) if path.helper is not None else "",
    }
    if current is None:
        fast = path.template.format(layer=name, **names)
        return f"{name}({args[0]}) if ({guard or 'False'}) else {fast}"
    # ``_layer`` is a local of the generated function (its own names are v<k> and
    # c<k>), assigned by the guard before either branch runs; the fast branch
    # reads the layer's settings through it, the cheapest name there is.
    fast = path.template.format(layer="_layer", **names)
    # Without the identity part the walrus must still run, and be false.
    identity = " is None" if "identity" in _omitted else f" is not {name}"
    condition = f"(_layer := {current}){identity}" + (f" or {guard}" if guard else "")
    return f"_layer({args[0]}) if ({condition}) else {fast}"
