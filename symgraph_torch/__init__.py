"""symgraph_torch: Keras-style model building for PyTorch, a drop-in for pytorch-symbolic.

Importing it registers :class:`SymbolicTensor` for ``torch.Tensor`` values and
makes every ``nn.Module`` record a call when it receives a symbolic value. Code
written for pytorch-symbolic runs after changing the import.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from symgraph_torch import Input, SymbolicModel
    >>> inputs = Input(shape=(3, 32, 32))
    >>> x = nn.Conv2d(inputs.C, 8, 3)(inputs)(nn.ReLU())
    >>> x = nn.Flatten()(nn.AvgPool2d(kernel_size=x.HW)(x))
    >>> model = SymbolicModel(inputs, nn.Linear(x.features, 10)(x))
    >>> model(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

try:
    import torch  # noqa: F401 - imported first, to say what is missing when it is
except ModuleNotFoundError as _missing:
    if _missing.name != "torch":
        raise
    raise ImportError(
        "symgraph_torch needs PyTorch, which is not installed here; "
        "install the extra: pip install 'symgraph-py[torch]'",
        name="torch",
    ) from _missing


from symgraph import add_to_graph, register_executor
from symgraph.plugin import register_backend, register_internal_package
from symgraph_torch import (
    config,
    cuda_graphs,
    functions_utility,
    graph_algorithms,
    model_tools,
    symbolic_api_2,
    symbolic_data,
    symbolic_model,
    useful_layers,
)
from symgraph_torch._api2 import SymbolicAPI2ContextManager
from symgraph_torch._backend import BACKEND, TorchBackend
from symgraph_torch._compat import SymbolicObject
from symgraph_torch._cuda_graphs import CUDA_GRAPHS
from symgraph_torch._executors import COMPILE
from symgraph_torch._input import CustomInput, Input
from symgraph_torch._model import DetachedSymbolicModel, SymbolicModel, optimize_module_calls
from symgraph_torch._saving import register_layer_spec
from symgraph_torch._tensor import SymbolicTensor
from symgraph_torch._tracing import ModuleCall, install_module_call_hook

register_backend(BACKEND)
# torch's own Python frames (torch.functional.unique, nn.Sequential.forward,
# torch.overrides) stand between the user's line and the recording: steps and
# warnings point past them, at the user's code.
register_internal_package("torch")
# Also declared as an entry point; registered here too so that it works from a
# checkout whose package metadata predates it. Loading the entry point imports
# this package, which registers the same object: replace=True keeps that quiet.
register_executor(COMPILE.name, COMPILE, replace=True)
register_executor(CUDA_GRAPHS.name, CUDA_GRAPHS, replace=True)
if config.API_2_ENABLED_BY_DEFAULT:
    install_module_call_hook()

__all__ = [
    "BACKEND",
    "CustomInput",
    "DetachedSymbolicModel",
    "Input",
    "ModuleCall",
    "SymbolicAPI2ContextManager",
    "SymbolicModel",
    "SymbolicObject",
    "SymbolicTensor",
    "TorchBackend",
    "add_to_graph",
    "config",
    "cuda_graphs",
    "functions_utility",
    "graph_algorithms",
    "model_tools",
    "optimize_module_calls",
    "register_layer_spec",
    "symbolic_api_2",
    "symbolic_data",
    "symbolic_model",
    "useful_layers",
]
