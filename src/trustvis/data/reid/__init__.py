"""Re-identification data: the shared shapes (base.py) and the sources that fill them."""
