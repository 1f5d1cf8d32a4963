"""Performance measurements for symgraph; run a module with ``python -m benchmarks.<name>``."""
