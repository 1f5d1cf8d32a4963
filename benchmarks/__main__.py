"""The benchmark suite: symgraph side by side with plain PyTorch, torch.fx, pytorch-symbolic and plain numpy.

Run: ``.venv/bin/python -m benchmarks [--cases CASE ...] [--rounds N] [--quick] [--strict]``

Cases (each also runs on its own as ``python -m benchmarks.<module>``):

* ``deep_linear`` (``benchmarks.torch_forward``): forward pass of 250 to 1000
  ``nn.Linear(4, 4)`` in a chain, under ``no_grad`` and with grad: looping
  ``nn.Module`` (baseline), unrolled module, ``nn.Sequential``, ``torch.fx``,
  pytorch-symbolic, symgraph, and the straight-line ``F.linear`` floor;
* ``toy_resnet`` (``benchmarks.toy_resnet``): the Keras guide's toy ResNet at 16,
  32 and 64 px, eval mode, both grad modes: hand-written module (baseline),
  ``torch.fx``, pytorch-symbolic, symgraph, the functional floor;
* ``toy_resnet_bn`` (``benchmarks.toy_resnet``): the same with a ``BatchNorm2d``
  after each convolution, at 16 and 64 px, in eval mode under ``no_grad`` and in
  train mode with grad;
* ``mlp`` (``benchmarks.mlp``): 12 blocks of ``Linear(64, 64)``, ``LayerNorm``,
  ``GELU`` and ``Dropout``, batch 4, eval and train: hand-written module
  (baseline), ``nn.Sequential``, ``torch.fx``, pytorch-symbolic, symgraph, the
  functional floor;
* ``module_call`` (``benchmarks.module_call_overhead``): a plain ``nn.Module`` call
  in a process after ``import symgraph_torch`` against a fresh process;
* ``numpy`` (``benchmarks.numpy_replay``): 100 elementwise numpy steps replayed by
  symgraph against the same steps written out;
* ``build_scaling`` and ``conv_build`` (``benchmarks.build_scaling``): graph build
  time against size, and building a 16-convolution model against pytorch-symbolic;
* ``dask_pipeline`` (``benchmarks.dask_pipeline``): 8 independent 20 ms I/O-like
  steps and a combine, run by the ``dask`` executor (threads) against ``codegen``.
* ``cuda_graphs`` (``benchmarks.cuda_graphs``): on a CUDA GPU, the toy ResNet
  (inference and training steps) and 1000 ``nn.Linear(4, 4)`` replayed by the
  ``cuda_graphs`` executor against eager code, codegen and ``torch.compile``, and
  the executor's own cost per call; skipped, with a line saying so, without a
  CUDA device;
* ``cuda_graphs_host`` (``benchmarks.cuda_graphs``): the same executor's host
  cost per call on the CPU, with replays that do nothing, against a hand-made
  replay; runs anywhere.

Every case interleaves its variants in rounds and reports medians of paired
per-round ratios (variant / baseline measured in the same round), with torch
fixed to one thread. Torch targets also give the target variant's ratio to the
case's *floor*, the same network as straight-line ``torch.nn.functional`` calls
(``benchmarks._floor``), measured in the same rounds. The tables go to stdout, progress to stderr; the raw
samples, medians and environment go to a JSON file and the ratios to a PNG plot
(by default ``benchmarks/results/last-run.json`` and ``last-run.png``, which git
ignores; ``--publish`` writes the tracked ``latest.json`` and ``latest.png`` that
``docs/benchmarks.md`` shows instead). The exit
status is 0 unless ``--strict`` is given and a target is missed.
"""

from __future__ import annotations

import sys

from benchmarks import (
    _harness,
    build_scaling,
    cuda_graphs,
    dask_pipeline,
    mlp,
    module_call_overhead,
    numpy_replay,
    torch_forward,
    toy_resnet,
)

CASES: _harness.CaseBuilders = {
    **torch_forward.CASES,
    **toy_resnet.CASES,
    **mlp.CASES,
    **module_call_overhead.CASES,
    **numpy_replay.CASES,
    **build_scaling.CASES,
    **dask_pipeline.CASES,
    **cuda_graphs.CASES,
}

if __name__ == "__main__":
    sys.exit(_harness.main(CASES, "python -m benchmarks", __doc__, save_by_default=True))
