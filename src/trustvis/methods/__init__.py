"""Every built-in method, one file each; importing this package registers them all.

detect/cnndet.py   CNNDetection (baseline)          detect/bihpf.py   BiHPF (seed method)
"""

from trustvis.methods.detect import bihpf, cnndet  # noqa: F401
