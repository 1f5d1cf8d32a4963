"""Graph build, model compile and replay time against graph size.

Run: ``.venv/bin/python -m benchmarks.build_scaling [--repeats N]``

Sizes are measured interleaved (one round runs every size once), and the report
gives the median time per size and the median of the per-round ratios to the
smallest size, so a linear algorithm shows ratios close to the size ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import symgraph

SIZES = (1_000, 10_000, 100_000)


def measure(n: int) -> tuple[float, float, float]:
    """Seconds to record an ``n``-node chain, to build its model, and to replay it once."""
    t0 = time.perf_counter()
    x = symgraph.CustomInput(0)
    y = x
    for _ in range(n):
        y = y + 1
    t1 = time.perf_counter()
    model = symgraph.SymbolicModel(x, y)
    t2 = time.perf_counter()
    assert model(1) == n + 1
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rounds = [{n: measure(n) for n in SIZES} for _ in range(args.repeats)]
    base = SIZES[0]
    print(f"{'nodes':>8} {'record s':>9} {'model s':>9} {'replay s':>9}   ratios to {base} nodes (record, model)")
    for n in SIZES:
        medians = [statistics.median(r[n][k] for r in rounds) for k in range(3)]
        ratios = [statistics.median(r[n][k] / r[base][k] for r in rounds) for k in range(2)]
        print(f"{n:>8} {medians[0]:>9.4f} {medians[1]:>9.4f} {medians[2]:>9.5f}   {ratios[0]:6.1f}x {ratios[1]:6.1f}x")


if __name__ == "__main__":
    main()
