"""Person re-identification: rolling-back fine-tuning (rollback.py) and its baselines (baselines.py)."""
