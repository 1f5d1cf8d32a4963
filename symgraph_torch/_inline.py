"""Fast paths for common layers: the layer's own forward, written into the generated code.

A call ``layer(x)`` goes through ``Module.__call__``, ``_call_impl`` and
``forward`` before reaching the one torch function that does the work, and
``forward`` reads the parameters through ``Module.__getattr__``. For small
layers that is most of the cost. The generated code instead asks, at every
call, whether anything could make the normal path behave differently: hooks on
the layer, a compiled layer, a changed class (``torch.nn.utils.parametrize``
swaps it) or an instance-level ``forward``. Only when nothing does, it calls the
torch function itself with the parameters read from ``_parameters``, which is
also where ``torch.func.functional_call`` puts its replacements. Global hooks
and a patched class ``forward`` are checked once per model call (as is
``torch.jit.trace``, by the model), and send the whole call down the normal path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn
from torch.nn import functional
from torch.nn.modules import module as torch_module

__all__ = ["inline_layer_call", "inlining_allowed"]

# Linear's forward at import; a class-level patch disables inlining.
_LINEAR_FORWARD = nn.Linear.forward


def inlining_allowed() -> bool:
    """Whether the current global state lets generated code take the layers' fast paths.

    Example:
        >>> inlining_allowed()
        True
    """
    return not (
        torch_module._global_forward_hooks
        or torch_module._global_forward_pre_hooks
        or torch_module._global_backward_hooks
        or torch_module._global_backward_pre_hooks
        or nn.Linear.forward is not _LINEAR_FORWARD
    )


def inline_layer_call(
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
        >>> from torch import nn
        >>> names = {}
        >>> ref = lambda o: names.setdefault(id(o), f"c{len(names)}")
        >>> expression = inline_layer_call(nn.Linear(2, 2), ["v0"], ref, "modules['Linear_1']")
        >>> expression.startswith("_layer(v0) if ((_layer := modules['Linear_1']) is not c0 or c1 or c2")
        True
    """
    if type(layer) is not nn.Linear or len(args) != 1:
        return None
    name = ref(layer)
    # The hook dicts and the instance dict are read as constants, which halves the
    # guard's cost: torch registers and removes hooks by changing these dicts in
    # place (RemovableHandle keeps a reference to them), never by replacing them.
    # Copies and unpickled models generate their code again, for their own layers.
    # They belong to the recorded layer, so they are consulted only once the
    # identity test has shown that the model still holds that very layer.
    hooks = [
        ref(d)
        for d in (layer._forward_hooks, layer._forward_pre_hooks, layer._backward_hooks, layer._backward_pre_hooks)
    ]
    guard = (
        f"{' or '.join(hooks)} or {name}._compiled_call_impl is not None or "
        f"{name}.__class__ is not {ref(nn.Linear)} or 'forward' in {ref(vars(layer))}"
    )
    # ``_parameters`` too is changed in place, by ``.to()`` and by ``functional_call``.
    params = ref(layer._parameters)
    fast = f"{ref(functional.linear)}({args[0]}, {params}['weight'], {params}['bias'])"
    if current is None:
        return f"{name}({args[0]}) if ({guard}) else {fast}"
    # ``_layer`` is a local of the generated function (its own names are v<k> and
    # c<k>), assigned by the guard before either branch runs.
    return f"_layer({args[0]}) if ((_layer := {current}) is not {name} or {guard}) else {fast}"
