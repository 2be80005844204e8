"""``python -m trustvis`` (also what ``torchrun -m trustvis`` runs)."""

from trustvis.cli import entry

entry()
