"""harmscope.benchmarks."""
