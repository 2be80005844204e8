"""trustvis: trustworthy visual recognition.

Detect generated, recaptured and anomalous images; train, adapt, calibrate and compress the models
and images involved. See README.md and ``trustvis --help``.
"""

__version__ = "0.1.0"
