"""Bytes on disk of the pytorch-symbolic ResNet example, saved four ways.

Run: ``.venv/bin/python -m benchmarks.saved_sizes``

Sizes, not times: ``symgraph.save`` to a directory (``spec.json`` and
``tensors.safetensors``) and to a zip, against ``torch.save`` of the whole module
(a pickle) and of its ``state_dict``. The loaded model is checked to equal the
original before anything is printed.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
from pathlib import Path

import torch

import symgraph

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "pytorch_symbolic" / "resnet.py"


def main() -> None:
    spec = importlib.util.spec_from_file_location("resnet_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    model = example.build()
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        folder = symgraph.save(model, Path(tmp) / "model")
        archive = symgraph.save(model, Path(tmp) / "model.zip")
        images = torch.randn(3, *model.input_shape[1:])
        assert torch.equal(symgraph.load(archive)(images), model(images))
        whole, weights = io.BytesIO(), io.BytesIO()
        torch.save(model, whole)
        torch.save(model.state_dict(), weights)
        rows = {
            "symgraph.save, spec.json": (folder / "spec.json").stat().st_size,
            "symgraph.save, tensors.safetensors": (folder / "tensors.safetensors").stat().st_size,
            "symgraph.save, zip": archive.stat().st_size,
            "torch.save(model)": len(whole.getvalue()),
            "torch.save(model.state_dict())": len(weights.getvalue()),
        }
    print(f"{len(model.plan.steps)} steps, {sum(p.numel() for p in model.parameters())} parameters")
    for what, size in rows.items():
        print(f"{what:40} {size:>9,} bytes")


if __name__ == "__main__":
    main()
