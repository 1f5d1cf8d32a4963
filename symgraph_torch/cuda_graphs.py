"""CUDA graphs for symgraph_torch models: the ``cuda_graphs`` executor, its device layer and training steps.

``SymbolicModel(..., executor="cuda_graphs")`` replays CUDA graphs of the
model's forward (see :mod:`symgraph_torch._cuda_graphs` for keys, buckets,
fallbacks and invalidation); :func:`capture_training_step` captures a whole
training step. Every device call goes through a :class:`DeviceLayer`; tests on
machines without a GPU pass a :class:`FakeDeviceLayer` as
``executor_options={"device_layer": ...}``.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from symgraph_torch import Input, SymbolicModel
    >>> from symgraph_torch.cuda_graphs import FakeDeviceLayer
    >>> x = Input((4,))
    >>> model = SymbolicModel(x, nn.Linear(4, 2)(x), executor="cuda_graphs",
    ...                       executor_options={"device_layer": FakeDeviceLayer()})
    >>> model(torch.rand(3, 4)).shape, model.executor_stats()["replays"]
    (torch.Size([3, 2]), 1)
"""

from symgraph_torch._cuda_device import CudaDeviceLayer, DeviceLayer, FakeDeviceLayer, FakeGraph
from symgraph_torch._cuda_graphs import CUDA_GRAPHS, CudaGraphsExecutor, CudaGraphsFallbackWarning
from symgraph_torch._cuda_training import CapturedTrainingStep, capture_training_step

__all__ = [
    "CUDA_GRAPHS",
    "CapturedTrainingStep",
    "CudaDeviceLayer",
    "CudaGraphsExecutor",
    "CudaGraphsFallbackWarning",
    "DeviceLayer",
    "FakeDeviceLayer",
    "FakeGraph",
    "capture_training_step",
]
