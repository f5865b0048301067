"""Demo: the seeded digits project and a stream simulator for scenario tests and benchmarks."""
