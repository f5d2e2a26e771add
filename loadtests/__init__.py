"""The load tests and the benchmark harness: run them from the repository root (README.md)."""
