"""Benchmarks that drive the real servers and print figures with a baseline from the same run."""
