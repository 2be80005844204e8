"""Metrics: pure functions over numpy arrays."""
