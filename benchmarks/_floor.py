"""The *floor* of a torch case: the network as one straight-line function of ``torch.nn.functional`` calls.

A floor variant computes what the case's hand-written module computes, with the
same parameter and buffer tensors, but with no module in between: one
statement per layer, ``v3 = conv2d(v2, c4, c5, c6, c7, c8, c9)``, the functions
bound to global names and every tensor and setting read from the layers once,
when the function is built. It is the least a Python forward pass over these
layers can cost on top of the kernels, which is what a model's generated code
can approach but not beat; cases report it for information next to their
targets (``Target(..., floor=...)``).

The function is written by :class:`FloorBuilder` while a case's own recording
function runs on its symbolic values (:class:`Var`), so the floor has the
network's structure by construction. Its source holds only the builder's own
names (``v<k>`` for values, ``c<k>`` for constants, and the functions' names);
every layer setting and tensor is a global of the function, never text.

Because the settings are read once, the floor of a model in train mode is a
different function from its floor in eval mode (dropout, batch statistics), and
it does not follow a layer swapped after the build. The floor of a
``BatchNorm`` in train mode updates ``running_mean``, ``running_var`` and
``num_batches_tracked`` as ``BatchNorm.forward`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

#: The functions a floor may call, by the global name its source uses.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "linear": functional.linear,
    "conv2d": functional.conv2d,
    "batch_norm": functional.batch_norm,
    "layer_norm": functional.layer_norm,
    "relu": functional.relu,
    "gelu": functional.gelu,
    "dropout": functional.dropout,
    "max_pool2d": functional.max_pool2d,
    "avg_pool2d": functional.avg_pool2d,
    "adaptive_avg_pool2d": functional.adaptive_avg_pool2d,
}


class Var:
    """A value of the floor's function while it is written: the name of a local variable.

    Supports ``+`` (the residual additions of the toy ResNet); layers are applied
    with :meth:`FloorBuilder.apply`.
    """

    def __init__(self, builder: FloorBuilder, name: str) -> None:
        self.builder = builder
        self.name = name

    def __add__(self, other: Var) -> Var:
        return self.builder.emit("{} + {}", self, other)


class FloorBuilder:
    """Writes the floor function, one statement per layer applied to a :class:`Var`.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
        <torch._C.Generator object at ...>
        >>> layers = [nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)]
        >>> builder = FloorBuilder()
        >>> x = builder.input()
        >>> h = x
        >>> for layer in layers:
        ...     h = builder.apply(layer, h)
        >>> floor = builder.function(h)
        >>> batch = torch.randn(3, 4)
        >>> torch.equal(floor(batch), nn.Sequential(*layers)(batch))
        True
    """

    def __init__(self) -> None:
        self._globals: dict[str, Any] = {"__builtins__": {"float": float}, **FUNCTIONS}
        self._lines: list[str] = []
        self._values = 0
        self._started = False

    def input(self) -> Var:
        """The function's one argument."""
        if self._started:
            raise RuntimeError("a floor function has one input")
        self._started = True
        return self._new_var()

    def _new_var(self) -> Var:
        var = Var(self, f"v{self._values}")
        self._values += 1
        return var

    def const(self, value: Any) -> str:
        """The global name under which the function reads ``value``."""
        name = f"c{len(self._globals)}"
        self._globals[name] = value
        return name

    def emit(self, template: str, *args: Var | str) -> Var:
        """A statement ``v<k> = template`` with ``args`` (values or constant names) filled in; its value."""
        out = self._new_var()
        names = [a.name if isinstance(a, Var) else a for a in args]
        self._lines.append(f"    {out.name} = {template.format(*names)}")
        return out

    def statement(self, template: str, *args: Var | str) -> None:
        """A statement without a result (an in-place update)."""
        names = [a.name if isinstance(a, Var) else a for a in args]
        self._lines.append(f"    {template.format(*names)}")

    def apply(self, layer: nn.Module, x: Var) -> Var:
        """One statement computing ``layer(x)`` with functional calls, from the layer's current settings.

        Raises:
            TypeError: for a layer type the builder does not know, or a setting it
                does not reproduce (a padding mode other than zeros).
        """
        c = self.const
        if type(layer) is nn.Linear:
            return self.emit("linear({}, {}, {})", x, c(layer.weight), c(layer.bias))
        if type(layer) is nn.Conv2d:
            if layer.padding_mode != "zeros":
                raise TypeError("the floor writes Conv2d with padding_mode='zeros' only")
            settings: tuple[Any, ...] = (layer.stride, layer.padding, layer.dilation, layer.groups)
            return self.emit("conv2d({}, {}, {}, {}, {}, {}, {})", x, c(layer.weight), c(layer.bias), *map(c, settings))
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and type(layer).forward is nn.BatchNorm2d.forward:
            return self._batch_norm(layer, x)
        if type(layer) is nn.LayerNorm:
            settings = (layer.normalized_shape, layer.weight, layer.bias, layer.eps)
            return self.emit("layer_norm({}, {}, {}, {}, {})", x, *map(c, settings))
        if type(layer) is nn.ReLU:
            return self.emit("relu({}, {})", x, c(layer.inplace))
        if type(layer) is nn.GELU:
            return self.emit("gelu({}, approximate={})", x, c(layer.approximate))
        if type(layer) is nn.Dropout:
            return self.emit("dropout({}, {}, {}, {})", x, c(layer.p), c(layer.training), c(layer.inplace))
        if type(layer) is nn.MaxPool2d:
            settings = (layer.kernel_size, layer.stride, layer.padding, layer.dilation, layer.ceil_mode)
            if layer.return_indices:
                raise TypeError("the floor writes MaxPool2d without return_indices only")
            return self.emit("max_pool2d({}, {}, {}, {}, {}, {})", x, *map(c, settings))
        if type(layer) is nn.AvgPool2d:
            settings = (
                layer.kernel_size,
                layer.stride,
                layer.padding,
                layer.ceil_mode,
                layer.count_include_pad,
                layer.divisor_override,
            )
            return self.emit("avg_pool2d({}, {}, {}, {}, {}, {}, {})", x, *map(c, settings))
        if type(layer) is nn.AdaptiveAvgPool2d:
            return self.emit("adaptive_avg_pool2d({}, {})", x, c(layer.output_size))
        if type(layer) is nn.Flatten:
            return self.emit("{}.flatten({}, {})", x, c(layer.start_dim), c(layer.end_dim))
        raise TypeError(f"the floor has no functional form for {type(layer).__name__}")

    def _batch_norm(self, layer: nn.modules.batchnorm._BatchNorm, x: Var) -> Var:
        """``BatchNorm.forward`` with its branches taken at build time, from the layer's current flags."""
        c = self.const
        factor = c(0.0 if layer.momentum is None else layer.momentum)
        if layer.training and layer.track_running_stats and layer.num_batches_tracked is not None:
            tracked = c(layer.num_batches_tracked)
            self.statement("{}.add_(1)", tracked)
            if layer.momentum is None:  # a cumulative average: the factor changes from call to call
                factor = f"1.0 / float({tracked})"
        # Batch statistics in train mode, and in eval mode for a norm without running statistics.
        bn_training = layer.training or (layer.running_mean is None and layer.running_var is None)
        keep = not layer.training or layer.track_running_stats
        running = (layer.running_mean if keep else None, layer.running_var if keep else None)
        tensors = (*running, layer.weight, layer.bias)
        return self.emit(
            "batch_norm({}, {}, {}, {}, {}, {}, {}, {})",
            x,
            *map(c, tensors),
            c(bn_training),
            factor,
            c(layer.eps),
        )

    def function(self, output: Var, name: str = "floor") -> Callable[[torch.Tensor], torch.Tensor]:
        """The written function, compiled; it returns ``output``."""
        source = f"def {name}(v0):\n" + "\n".join(self._lines) + f"\n    return {output.name}\n"
        code = compile(source, f"<floor: {len(self._lines)} statements>", "exec")
        exec(code, self._globals)
        func: Callable[[torch.Tensor], torch.Tensor] = self._globals[name]
        return func


def chain_floor(layers: Sequence[nn.Module]) -> Callable[[torch.Tensor], torch.Tensor]:
    """The floor of ``layers`` applied in a chain.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> layers = [nn.Linear(4, 4), nn.GELU(), nn.LayerNorm(4)]
        >>> x = torch.randn(2, 4)
        >>> torch.equal(chain_floor(layers)(x), nn.Sequential(*layers)(x))
        True
    """
    builder = FloorBuilder()
    h = builder.input()
    for layer in layers:
        h = builder.apply(layer, h)
    return builder.function(h)
