"""Redraw the pictures in docs/images: ``python docs/images/make_images.py`` from the repository root."""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def main() -> None:
    """Draw the toy ResNet of examples/pytorch_symbolic/resnet.py into toy_resnet.png."""
    spec = importlib.util.spec_from_file_location(
        "resnet_example", ROOT / "examples" / "pytorch_symbolic" / "resnet.py"
    )
    assert spec is not None and spec.loader is not None
    resnet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(resnet)
    resnet.build().plot(HERE / "toy_resnet.png", dpi=100)
    print(f"wrote {HERE / 'toy_resnet.png'}")


if __name__ == "__main__":
    main()
