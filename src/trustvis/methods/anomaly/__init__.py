"""Anomaly detection and localisation (PaDiM baseline, FYD)."""
