"""Benchmarks: one protocol per task (``trustvis bench <task>``)."""
