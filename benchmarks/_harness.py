"""Shared machinery of the benchmark suite: samples, rounds, paired ratios, tables, JSON and plots.

A *case* (one benchmark: the deep linear chain, the toy ResNet, ...) has *rows*
(one size or grad mode each) and every row has *variants* (the ways of computing
the same thing), one of which is the row's baseline. A *sample* times one variant
and returns seconds per call. Measurements go in *rounds*: a round takes, row by
row, ``passes`` samples of every variant, in an order rotated from one pass to the
next and from one round to the next, and keeps each variant's fastest sample (the
one least disturbed by the rest of the machine). A round therefore yields one time
per variant, measured within seconds of its baseline, and the ratio
``variant / baseline`` of the same round is a *paired* ratio: a drift in machine
speed between rounds falls on both. The report gives, per variant, the median of
its times over rounds and the median of its paired ratios (with the first and
third quartiles of those ratios, to show their spread).

Only ratios are compared against limits: on a shared machine the absolute times
drift by tens of percent between processes and are given as context.

Every module of the suite has ``CASES``, its case builders by name (each takes
the ``--quick`` flag and returns a :class:`Case`), and runs on its own through
:func:`main`; ``python -m benchmarks`` runs them all.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import io
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

#: torch's intra-op thread count for every measurement (stated in the output).
THREADS = 1
ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
# A default run writes files git ignores; `--publish` replaces the tracked ones
# that docs/benchmarks.md shows, which only a run meant for the page should do.
DEFAULT_JSON = RESULTS / "last-run.json"
DEFAULT_PLOT = RESULTS / "last-run.png"
PUBLISHED_JSON = RESULTS / "latest.json"
PUBLISHED_PLOT = RESULTS / "latest.png"

#: Times one variant once; returns seconds per call.
Sample = Callable[[], float]
#: One round of a case: row name -> variant name -> seconds per call.
RoundTimes = dict[str, dict[str, float]]


class MismatchError(AssertionError):
    """A variant does not compute what its baseline computes (raised even under ``python -O``)."""


class CaseUnavailableError(Exception):
    """Raised by a case builder when the case cannot run on this machine (no CUDA device, ...); says why."""


def check(condition: object, message: str) -> None:
    """Raise :class:`MismatchError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise MismatchError(message)


# ----------------------------------------------------------------------------- samples


def time_calls(func: Callable[[Any], object], arg: Any, calls: int) -> Sample:
    """A sample of ``calls`` calls ``func(arg)`` in one timed loop; each result is dropped inside the loop."""

    def sample() -> float:
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            func(arg)
        return (time.perf_counter_ns() - t0) / calls / 1e9

    return sample


def time_each_call(func: Callable[[Any], object], arg: Any, calls: int) -> Sample:
    """A sample of ``calls`` calls ``func(arg)``, each timed on its own, its result released after the clock stops.

    Used for torch forward passes: releasing the output (and the autograd graph
    it holds) is not part of the forward pass.
    """

    def sample() -> float:
        total = 0
        for _ in range(calls):
            t0 = time.perf_counter_ns()
            out = func(arg)
            total += time.perf_counter_ns() - t0
            del out
        return total / calls / 1e9

    return sample


def calls_per_sample(
    func: Callable[[Any], object],
    arg: Any,
    min_s: float,
    timer: Callable[[Callable[[Any], object], Any, int], Sample] = time_calls,
) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50... calls whose sample lasts at least ``min_s``, as ``timeit`` picks."""
    calls = 1
    while True:
        for factor in (1, 2, 5):
            n = calls * factor
            if timer(func, arg, n)() * n >= min_s:
                return n
        calls *= 10


@contextmanager
def gc_paused(paused: bool = True) -> Iterator[None]:
    """Collect garbage, then keep the cyclic garbage collector off inside the block (if ``paused``)."""
    gc.collect()
    if not paused:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# ----------------------------------------------------------------------------- cases


@dataclass
class Row:
    """One size or mode of a case: the variants measured side by side, and their baseline."""

    name: str
    variants: list[str]
    baseline: str
    #: Variant -> sample; empty for cases with their own ``measure_round``.
    samples: dict[str, Sample] = field(default_factory=dict)
    #: Variant -> calls per sample (context for the reader).
    calls: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A limit on one row: the median paired ratio ``variant / baseline``, or the time it adds.

    ``baseline`` is the variant compared against (the row's baseline by default).
    With ``added_ns``, the limit is on the median paired difference
    ``variant - baseline`` in nanoseconds, for cases whose samples are seconds per
    call: where a ratio of two noisy processes cannot resolve a cost of tens of
    nanoseconds, a difference measured in one process can.

    ``floor`` names an information variant of the row that computes the same with
    the least Python possible (for torch cases, straight-line
    ``torch.nn.functional`` calls on the same tensors, see ``benchmarks._floor``):
    the report gives ``variant / floor`` and ``floor / baseline`` beside the
    verdict, how far the variant is from that floor and how low a ratio could go.
    It is never itself a limit.
    """

    row: str
    variant: str
    limit: float
    baseline: str | None = None
    added_ns: bool = False
    floor: str | None = None


@dataclass
class Case:
    """One benchmark of the suite."""

    name: str
    title: str
    rows: list[Row]
    #: Variant -> one-line description, printed under the table.
    legend: dict[str, str]
    rounds: int
    quick_rounds: int
    passes: int = 3
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Unit in which the baseline's time is printed: "us", "ms" or "s".
    unit: str = "us"
    #: Whether the garbage collector is off while samples are taken.
    gc_off: bool = True
    #: Plot ratios on a log scale (for size scaling).
    log_ratio: bool = False
    #: Warm-up rounds, run and discarded before the measured ones.
    warmup_rounds: int = 1
    #: A custom round, for cases whose samples are not independent callables.
    measure_round: Callable[[int], RoundTimes] | None = None
    #: Called with the round's index before each round (warm-up rounds included).
    before_round: Callable[[int], None] | None = None
    #: Extra paired ratios reported per row: (numerator variant, denominator variant).
    extra_ratios: list[tuple[str, str]] = field(default_factory=list)
    #: Called once when the case is done (to stop worker processes).
    close: Callable[[], None] | None = None

    def row(self, name: str) -> Row:
        return next(r for r in self.rows if r.name == name)

    def run_round(self, round_index: int) -> RoundTimes:
        """One round: the fastest of ``passes`` interleaved samples of every variant of every row."""
        if self.before_round is not None:
            self.before_round(round_index)
        if self.measure_round is not None:
            return self.measure_round(round_index)
        passes = self.passes
        out: RoundTimes = {}
        for row in self.rows:
            names = row.variants
            best = dict.fromkeys(names, math.inf)
            with gc_paused(self.gc_off):
                for k in range(passes):
                    shift = (round_index + k) % len(names)
                    for name in names[shift:] + names[:shift]:
                        best[name] = min(best[name], row.samples[name]())
            out[row.name] = best
        return out


@dataclass
class CaseResult:
    """The rounds measured for one case."""

    case: Case
    rounds: list[RoundTimes]
    #: Samples per variant per round.
    passes: int
    setup_s: float
    measure_s: float

    def times(self, row: str, variant: str) -> list[float]:
        return [r[row][variant] for r in self.rounds]

    def ratios(self, row: str, variant: str, baseline: str | None = None) -> list[float]:
        base = self.case.row(row).baseline if baseline is None else baseline
        return [r[row][variant] / r[row][base] for r in self.rounds]

    def median_time(self, row: str, variant: str) -> float:
        return statistics.median(self.times(row, variant))

    def median_ratio(self, row: str, variant: str, baseline: str | None = None) -> float:
        return statistics.median(self.ratios(row, variant, baseline))

    def median_difference_ns(self, row: str, variant: str, baseline: str) -> float:
        """Median over rounds of ``variant - baseline``, in nanoseconds (samples in seconds)."""
        return statistics.median((r[row][variant] - r[row][baseline]) * 1e9 for r in self.rounds)

    def ratio_quartiles(self, row: str, variant: str) -> tuple[float, float]:
        ratios = self.ratios(row, variant)
        if len(ratios) < 2:
            return ratios[0], ratios[0]
        q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        return q1, q3


@dataclass(frozen=True)
class TargetResult:
    case: str
    target: Target
    baseline: str
    #: The median paired ratio, or with ``target.added_ns`` the median difference in ns.
    value: float
    #: With ``target.floor``: the median paired ratios variant / floor and floor / baseline.
    to_floor: float | None = None
    floor_to_baseline: float | None = None

    @property
    def passed(self) -> bool:
        return self.value <= self.target.limit

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "FAIL"

    def describe(self) -> str:
        t = self.target
        if t.added_ns:
            return (
                f"{self.verdict}  {self.case}: {t.row}: {t.variant} - {self.baseline} = {self.value:+.1f} ns per "
                f"call (limit +{t.limit:g} ns)"
            )
        text = (
            f"{self.verdict}  {self.case}: {t.row}: {t.variant} / {self.baseline} = {self.value:.3f}x "
            f"(limit {t.limit:g}x)"
        )
        if self.to_floor is not None and self.floor_to_baseline is not None:
            text += f"; ratio to floor {self.to_floor:.3f}x (floor / {self.baseline} = {self.floor_to_baseline:.3f}x)"
        return text


def evaluate_targets(result: CaseResult) -> list[TargetResult]:
    out = []
    for target in result.case.targets:
        row = result.case.row(target.row)
        baseline = target.baseline or row.baseline
        if target.variant in row.variants and baseline in row.variants:
            if target.added_ns:
                value = result.median_difference_ns(row.name, target.variant, baseline)
            else:
                value = result.median_ratio(row.name, target.variant, baseline)
            to_floor = floor_to_baseline = None
            if target.floor is not None and target.floor in row.variants:
                to_floor = result.median_ratio(row.name, target.variant, target.floor)
                floor_to_baseline = result.median_ratio(row.name, target.floor, baseline)
            out.append(TargetResult(result.case.name, target, baseline, value, to_floor, floor_to_baseline))
    return out


def release(case: Case) -> None:
    """Drop a measured case's samples (and the models they hold), so that later cases run on a lean heap."""
    for row in case.rows:
        row.samples = {}
    case.measure_round = case.before_round = case.close = None
    gc.collect()


def run_case(case: Case, rounds: int, setup_s: float, log: Callable[[str], None]) -> CaseResult:
    """Warm up, then measure ``rounds`` rounds of ``case``."""
    t0 = time.perf_counter()
    for r in range(case.warmup_rounds):
        case.run_round(r)
    measured = []
    for r in range(rounds):
        measured.append(case.run_round(r))
        if (r + 1) % max(1, rounds // 5) == 0 or r + 1 == rounds:
            log(f"  {case.name}: round {r + 1}/{rounds} ({time.perf_counter() - t0:.0f} s)")
    passes = case.passes if case.measure_round is None else 1
    return CaseResult(case, measured, passes, setup_s, time.perf_counter() - t0)


# ----------------------------------------------------------------------------- torch helpers


def set_torch_threads() -> int | None:
    """Fix torch's intra-op thread count to ``THREADS``; the count, or ``None`` without torch."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(THREADS)
    return torch.get_num_threads()


PYTORCH_SYMBOLIC_API_2 = "PYTORCH_SYMBOLIC_API_2_ENABLED_BY_DEFAULT"


def import_pytorch_symbolic() -> ModuleType | None:
    """pytorch-symbolic from PyPI, imported so that it leaves ``nn.Module`` alone; ``None`` if not installed.

    By default, importing pytorch-symbolic wraps ``nn.Module.__new__`` so that the
    first module created afterwards replaces ``nn.Module.__call__`` with its own
    wrapper (its "API 2", which makes ``layer(symbolic)`` work). That wrapper
    would slow every module call in the process, the baselines' included, and sit
    in front of symgraph_torch's hook. The package's own setting
    ``PYTORCH_SYMBOLIC_API_2_ENABLED_BY_DEFAULT=False``, read at import, turns it
    off; graphs are then recorded with its other notation, ``symbolic(layer)``,
    which records the same graph. Its models are measured as built, with its
    default code generation.
    """
    if "pytorch_symbolic" not in sys.modules:
        saved = os.environ.get(PYTORCH_SYMBOLIC_API_2)
        os.environ[PYTORCH_SYMBOLIC_API_2] = "False"
        try:
            import pytorch_symbolic  # noqa: F401 (imported here, with the setting above)
        except ImportError:
            return None
        finally:
            if saved is None:
                del os.environ[PYTORCH_SYMBOLIC_API_2]
            else:
                os.environ[PYTORCH_SYMBOLIC_API_2] = saved
    module = sys.modules["pytorch_symbolic"]
    from torch import nn

    if "__new__" in nn.Module.__dict__ or module.symbolic_api_2.is_symbolic_api_2_enabled():
        raise RuntimeError(
            "pytorch_symbolic was imported with its nn.Module wrappers on; import it through "
            "benchmarks._harness.import_pytorch_symbolic() only"
        )
    return module


PYTORCH_SYMBOLIC_MISSING = "pytorch-symbolic is not importable (pip install pytorch-symbolic): its variant is skipped."

#: The two autograd modes the inference-only torch cases are timed in: label -> grad enabled.
GRAD_MODES = {"no_grad": False, "grad": True}
#: The two modes of the torch cases with layers that train differently (dropout, batch
#: statistics): label -> (the modules' ``training`` flag, grad enabled).
TRAIN_MODES = {"eval": (False, False), "train": (True, True)}
TRAIN_MODES_NOTE = (
    "eval: model.eval() under torch.no_grad(); train: model.train() with grad enabled (autograd records "
    "the pass; no backward runs). Train-mode outputs were compared with torch.manual_seed before each call."
)
#: The seed set before every compared call in train mode, where dropout draws random masks.
CHECK_SEED = 2


def set_training(models: dict[str, Callable[[Any], Any]], training: bool) -> None:
    """``model.train(training)`` for every model that is an ``nn.Module`` (functions keep their build-time flags)."""
    from torch import nn

    for model in models.values():
        if isinstance(model, nn.Module):
            model.train(training)


def check_same_outputs(
    models: dict[str, Callable[[Any], Any]],
    baseline: str,
    x: Any,
    grad_modes: Iterable[bool],
    seed: int | None = None,
) -> None:
    """Every model gives exactly the baseline's output (``torch.equal``) on ``x``, in every grad mode.

    With ``seed``, ``torch.manual_seed(seed)`` runs before every call, so that
    random layers (dropout in train mode) draw the same numbers in every model.
    """
    import torch

    def call(model: Callable[[Any], Any]) -> Any:
        if seed is not None:
            torch.manual_seed(seed)
        return model(x)

    for grad in grad_modes:
        with torch.set_grad_enabled(grad):
            expected = call(models[baseline])
            for name, model in models.items():
                out = call(model)
                check(torch.equal(out, expected), f"{name} differs from {baseline} (grad={grad})")


def check_same_buffer_updates(
    models: dict[str, Callable[[Any], Any]], baseline: str, x: Any, buffers: dict[str, Any], seed: int = CHECK_SEED
) -> None:
    """From the same starting values, one call of every model leaves ``buffers`` exactly as the baseline's call does.

    For train mode, where ``BatchNorm`` updates its running statistics and
    ``num_batches_tracked`` in place: ``buffers`` (by name) are the tensors the
    models share; each call starts from a copy of their values before the check,
    and the check fails too if the baseline's call leaves them all unchanged.
    """
    import torch

    start = {name: b.clone() for name, b in buffers.items()}

    def run(model: Callable[[Any], Any]) -> dict[str, Any]:
        with torch.no_grad():
            for name, b in buffers.items():
                b.copy_(start[name])
        torch.manual_seed(seed)
        model(x)
        return {name: b.clone() for name, b in buffers.items()}

    expected = run(models[baseline])
    check(any(not torch.equal(expected[k], start[k]) for k in buffers), f"{baseline} updated no buffer")
    for variant, model in models.items():
        got = run(model)
        changed = [k for k in buffers if not torch.equal(got[k], expected[k])]
        check(not changed, f"{variant} updates {', '.join(changed)} differently from {baseline}")


def torch_forward_row(
    name: str,
    models: dict[str, Callable[[Any], Any]],
    baseline: str,
    x: Any,
    grad: bool,
    min_sample_s: float,
    training: bool | None = None,
) -> Row:
    """A row timing forward passes ``model(x)`` under ``torch.set_grad_enabled(grad)``; outputs released untimed.

    With ``training``, every ``nn.Module`` of ``models`` is put in that mode
    (:func:`set_training`) before each sample, outside the clock: rows of
    different modes share the layer objects.
    """
    import torch

    def prepare() -> None:
        if training is not None:
            set_training(models, training)

    def in_mode(sample: Sample) -> Sample:
        def timed() -> float:
            prepare()
            with torch.set_grad_enabled(grad):
                return sample()

        return timed

    samples: dict[str, Sample] = {}
    calls: dict[str, int] = {}
    prepare()
    with torch.set_grad_enabled(grad):
        for variant, model in models.items():
            calls[variant] = calls_per_sample(model, x, min_sample_s, time_each_call)
            samples[variant] = in_mode(time_each_call(model, x, calls[variant]))
    return Row(name, list(models), baseline, samples, calls)


def torch_forward_rows(
    builds: Iterable[tuple[str, dict[str, Callable[[Any], Any]], Any]], baseline: str, min_sample_s: float
) -> list[Row]:
    """One :func:`torch_forward_row` per ``(label, models, x)`` build and grad mode, named ``"label, mode"``."""
    return [
        torch_forward_row(f"{label}, {mode}", models, baseline, x, grad, min_sample_s)
        for label, models, x in builds
        for mode, grad in GRAD_MODES.items()
    ]


# ----------------------------------------------------------------------------- report


def _format_time(seconds: float, unit: str) -> str:
    scale = {"us": 1e6, "ms": 1e3, "s": 1.0}[unit]
    value = seconds * scale
    return f"{value:.1f}" if value >= 100 else f"{value:.2f}" if value >= 1 else f"{value:.4f}"


def format_case(result: CaseResult) -> str:
    """A Markdown table, one line per row: the baseline's time, then every other variant's median paired ratio."""
    case = result.case
    lines = [f"### {case.name}: {case.title}", ""]
    lines.append(
        f"{len(result.rounds)} rounds x {result.passes} sample(s) per variant and round; "
        "ratio = median over rounds of variant / baseline in the same round."
    )
    lines.append("")
    variants: list[str] = []
    for row in case.rows:
        variants += [v for v in row.variants if v != row.baseline and v not in variants]
    baselines = sorted({row.baseline for row in case.rows}, key=[r.baseline for r in case.rows].index)
    base_header = baselines[0] if len(baselines) == 1 else "baseline"
    header = ["case", f"{base_header} ({case.unit})", *variants]
    table = [header]
    for row in case.rows:
        cells = [row.name, _format_time(result.median_time(row.name, row.baseline), case.unit)]
        if len(baselines) > 1:
            cells[1] = f"{row.baseline}: {cells[1]}"
        for v in variants:
            cells.append(f"{result.median_ratio(row.name, v):.3f}x" if v in row.variants else "-")
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)) + " |")
    lines.append("|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    for cells in table[1:]:
        padded = [cells[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        lines.append("| " + " | ".join(padded) + " |")
    lines.append("")
    for variant, text in case.legend.items():
        lines.append(f"- {variant}: {text}")
    for numerator, denominator in case.extra_ratios:
        for row in case.rows:
            ratio = statistics.median(result.ratios(row.name, numerator, denominator))
            lines.append(f"- {row.name}: {numerator} / {denominator} = {ratio:.4f}x (median of paired ratios)")
    for target in evaluate_targets(result):
        lines.append(f"- target: {target.describe()}")
    for note in case.notes:
        lines.append(f"- note: {note}")
    return "\n".join(lines)


def _git(*args: str) -> str | None:
    """Output of a read-only git command in the repository, or ``None``."""
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    """Versions, machine and repository state, for the JSON file."""
    env: dict[str, Any] = {
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    for name in ("torch", "numpy", "pytorch_symbolic", "symgraph"):
        module = sys.modules.get(name)
        env[name] = getattr(module, "__version__", "imported") if module is not None else None
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.is_available()
        env["gpu"] = torch.cuda.get_device_name() if env["cuda"] else None
    # glibc malloc settings change the speed of large tensor allocations (see docs/benchmarks.md).
    env["malloc_env"] = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    status = _git("status", "--porcelain", "--untracked-files=no")
    env["git_commit"] = _git("rev-parse", "--short", "HEAD")
    env["git_dirty"] = None if status is None else bool(status)
    return env


def _device_label() -> str:
    """``CPU``, or the GPU's name too where torch finds one (the ``cuda_graphs`` case runs there)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"CPU and GPU {torch.cuda.get_device_name()}"
    return "CPU"


def _rounded(x: float) -> float:
    return float(f"{x:.5g}")


def to_json(results: list[CaseResult], settings: dict[str, Any], notes: list[str]) -> dict[str, Any]:
    targets = [t for r in results for t in evaluate_targets(r)]
    return {
        "suite": "symgraph benchmarks (python -m benchmarks)",
        "settings": settings,
        "environment": environment(),
        "notes": notes,
        "targets": [
            {
                "case": t.case,
                "row": t.target.row,
                "variant": t.target.variant,
                "baseline": t.baseline,
                "limit": t.target.limit,
                ("added_ns" if t.target.added_ns else "ratio"): _rounded(t.value),
                "verdict": t.verdict,
                **(
                    {}
                    if t.to_floor is None or t.floor_to_baseline is None
                    else {
                        "floor": t.target.floor,
                        "ratio_to_floor": _rounded(t.to_floor),
                        "floor_to_baseline": _rounded(t.floor_to_baseline),
                    }
                ),
            }
            for t in targets
        ],
        "cases": [
            {
                "name": r.case.name,
                "title": r.case.title,
                "rounds": len(r.rounds),
                "passes": r.passes,
                "setup_s": round(r.setup_s, 2),
                "measure_s": round(r.measure_s, 2),
                "legend": r.case.legend,
                "notes": r.case.notes,
                "extra_ratios": [
                    {
                        "row": row.name,
                        "numerator": numerator,
                        "denominator": denominator,
                        "median_ratio": _rounded(statistics.median(r.ratios(row.name, numerator, denominator))),
                    }
                    for numerator, denominator in r.case.extra_ratios
                    for row in r.case.rows
                ],
                "rows": [
                    {
                        "name": row.name,
                        "baseline": row.baseline,
                        "variants": [
                            {
                                "name": v,
                                "calls_per_sample": row.calls.get(v),
                                "median_s": _rounded(r.median_time(row.name, v)),
                                "median_ratio": _rounded(r.median_ratio(row.name, v)),
                                "ratio_q1_q3": [_rounded(q) for q in r.ratio_quartiles(row.name, v)],
                                "samples_s": [_rounded(t) for t in r.times(row.name, v)],
                            }
                            for v in row.variants
                        ],
                    }
                    for row in r.case.rows
                ],
            }
            for r in results
        ],
    }


def write_json(data: dict[str, Any], path: Path) -> None:
    """Indented JSON with lists of numbers kept on one line each (a small, diffable file)."""
    text = json.dumps(data, indent=1)
    text = re.sub(r"\[\s*((?:-?[0-9.e+-]+,\s*)*-?[0-9.e+-]+)\s*\]", lambda m: "[" + " ".join(m[1].split()) + "]", text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")


#: Colours by variant, so that a variant looks the same in every panel.
COLOURS = (
    ("floor", "", "#252525"),
    ("symgraph", "(info)", "#f4a582"),
    ("symgraph", "", "#d6604d"),
    ("pytorch-symbolic", "", "#8073ac"),
    ("torch.fx", "", "#4dac26"),
    ("nn.Sequential", "", "#e08214"),
    ("unrolled", "", "#8c510a"),
    ("(info)", "", "#969696"),
)


def colour(variant: str) -> str | None:
    for word, extra, value in COLOURS:
        if word in variant and extra in variant:
            return value
    return None


def plot(results: list[CaseResult], path: Path, title: str) -> None:
    """One panel per case: each variant's median paired ratio to its row's baseline, as a bar from 1.0.

    Bars go up for slower than the baseline and down for faster; the error bars
    span the first to third quartile of the paired ratios; red dashes mark targets,
    and black dots beside them the floor's ratio (the lowest a ratio could go).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    cols = 2 if n > 1 else 1
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5 * cols, 4.3 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, result in zip(axes.flat, results, strict=False):
        case = result.case
        variants: list[str] = []
        for row in case.rows:
            variants += [v for v in row.variants if v != row.baseline and v not in variants]
        width = min(0.8 / max(1, len(variants)), 0.25)
        for j, v in enumerate(variants):
            xs, ys, lo, hi = [], [], [], []
            for i, row in enumerate(case.rows):
                if v in row.variants:
                    ratio = result.median_ratio(row.name, v)
                    q1, q3 = result.ratio_quartiles(row.name, v)
                    xs.append(i + width * (j + 0.5 - len(variants) / 2))
                    ys.append(ratio)
                    lo.append(max(0.0, ratio - q1))
                    hi.append(max(0.0, q3 - ratio))
            bars = ax.bar(
                xs,
                [y - 1.0 for y in ys],
                width,
                bottom=1.0,
                yerr=[lo, hi],
                label=v,
                color=colour(v),
                capsize=1.5,
                error_kw={"elinewidth": 0.6},
            )
            ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=5, rotation=90, padding=2)
        ax.axhline(1.0, color="black", linewidth=0.8)
        names = [r.name for r in case.rows]
        for target in case.targets:
            # A limit in nanoseconds has no place on an axis of ratios.
            if target.row in names and not target.added_ns and target.baseline is None:
                i = names.index(target.row)
                ax.hlines(target.limit, i - 0.45, i + 0.45, colors="red", linestyles="dashed", linewidth=1.2)
                if target.floor is not None and target.floor in case.row(target.row).variants:
                    floor = result.median_ratio(target.row, target.floor)
                    ax.hlines(floor, i - 0.45, i + 0.45, colors="black", linestyles="dotted", linewidth=1.0)
        if case.log_ratio:
            ax.set_yscale("log")
        ax.margins(y=0.15)
        ax.set_xticks(range(len(case.rows)))
        ax.set_xticklabels(["\n".join(name.rsplit(", ", 1)) for name in names], fontsize=7)
        ax.set_xlim(-0.6, len(names) - 0.4)
        baselines = sorted({r.baseline for r in case.rows})
        ax.set_ylabel(f"ratio to {baselines[0] if len(baselines) == 1 else 'baseline'}", fontsize=7)
        ax.set_title(f"{case.name}: {case.title}", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
        ax.grid(axis="y", linewidth=0.3)
    fig.suptitle(title, fontsize=9)
    # Half an inch at the top for the title, which tight_layout would overlap with the first panels'.
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - 0.5 / (4.3 * rows)))
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    _save_small_png(buffer, path)


def _save_small_png(buffer: io.BytesIO, path: Path) -> None:
    """Save a PNG with a 64-colour palette (a third of the size), or as it is without Pillow."""
    try:
        from PIL import Image
    except ImportError:
        path.write_bytes(buffer.getvalue())
        return
    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=64).save(path, format="PNG", optimize=True)


# ----------------------------------------------------------------------------- command line

#: A module's case builders: name -> function(quick) -> Case.
CaseBuilders = dict[str, Callable[[bool], Case]]


def parser(prog: str, description: str | None, names: Sequence[str], save_by_default: bool) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--cases",
        nargs="+",
        metavar="CASE",
        choices=list(names),
        default=list(names),
        help=f"cases to run (default: all): {', '.join(names)}",
    )
    p.add_argument("--rounds", "--repeats", dest="rounds", type=int, help="rounds per case (default: per case)")
    p.add_argument("--quick", action="store_true", help="few rounds per case: a smoke run of about a minute")
    p.add_argument("--strict", action="store_true", help="exit with status 1 if a target is missed")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    default_json = str(DEFAULT_JSON) if save_by_default else None
    default_plot = str(DEFAULT_PLOT) if save_by_default else None
    shown_json = DEFAULT_JSON.relative_to(ROOT) if save_by_default else None
    shown_plot = DEFAULT_PLOT.relative_to(ROOT) if save_by_default else None
    p.add_argument("--json", default=default_json, help=f"write the results here (default: {shown_json})")
    p.add_argument("--plot", default=default_plot, help=f"draw the ratios here, PNG (default: {shown_plot})")
    p.add_argument("--no-save", action="store_true", help="write neither the JSON file nor the plot")
    p.add_argument(
        "--publish",
        action="store_true",
        help="write benchmarks/results/latest.json and latest.png, the tracked files docs/benchmarks.md "
        "shows, instead of the defaults",
    )
    return p


def main(
    builders: CaseBuilders,
    prog: str,
    description: str | None,
    argv: Sequence[str] | None = None,
    save_by_default: bool = False,
) -> int:
    """Run the selected cases, print their tables and targets, save JSON and plot; the exit status."""
    args = parser(prog, description, list(builders), save_by_default).parse_args(argv)
    if args.publish:
        args.json, args.plot = str(PUBLISHED_JSON), str(PUBLISHED_PLOT)
    if args.list:
        for name in builders:
            print(name)
        return 0

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    threads = set_torch_threads()
    header = (
        f"torch.set_num_threads({THREADS}): torch uses {threads} thread(s)"
        if threads is not None
        else "torch is not installed: its cases cannot run"
    )
    log(header)
    results: list[CaseResult] = []
    suite_notes: list[str] = [header]
    skipped: list[str] = []
    t_start = time.perf_counter()
    for name in args.cases:
        log(f"{name}: building the variants and checking their outputs")
        t0 = time.perf_counter()
        try:
            case = builders[name](args.quick)
        except CaseUnavailableError as exc:
            skipped.append(f"{name}: skipped: {exc}")
            log(f"  {skipped[-1]}")
            continue
        setup_s = time.perf_counter() - t0
        rounds = args.rounds or (case.quick_rounds if args.quick else case.rounds)
        log(f"  {name}: set up in {setup_s:.0f} s; measuring {rounds} rounds")
        try:
            results.append(run_case(case, rounds, setup_s, log))
        finally:
            if case.close is not None:
                case.close()
            release(case)
    print(f"{header}; {_device_label()}; Python {sys.version.split()[0]}; {'quick run' if args.quick else 'full run'}")
    print()
    for result in results:
        print(format_case(result))
        print()
    targets = [t for r in results for t in evaluate_targets(r)]
    if targets:
        print("Targets:")
        for t in targets:
            print(f"  {t.describe()}")
    for message in skipped:
        print(message)
    suite_notes += skipped
    total_s = time.perf_counter() - t_start
    print(f"\nTotal time {total_s:.0f} s.")
    if not args.no_save:
        settings = {
            "argv": list(sys.argv[1:] if argv is None else argv),
            "quick": args.quick,
            "torch_threads": threads,
            "total_s": round(total_s, 1),
        }
        if args.json:
            write_json(to_json(results, settings, suite_notes), Path(args.json))
            print(f"Wrote {args.json}")
        if args.plot and not results:
            print("No plot: no case was measured")
        elif args.plot:
            env = environment()
            title = (
                f"symgraph benchmarks, {'quick' if args.quick else 'full'} run {env['date_utc'][:10]}, "
                f"commit {env['git_commit']}{' (dirty)' if env['git_dirty'] else ''}: median paired ratio to "
                f"baseline (bars: quartiles; red dashes: targets; black dots: floors); {_device_label()}, "
                f"{THREADS} torch thread"
            )
            try:
                plot(results, Path(args.plot), title)
            except ImportError as exc:
                print(f"No plot: {exc.name} is not importable (pip install matplotlib)")
            else:
                print(f"Wrote {args.plot}")
    failed = any(not t.passed for t in targets)
    return 1 if failed and args.strict else 0
