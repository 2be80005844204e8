"""Every built-in method, one file each; importing this package registers them all.

detect/cnndet.py          CNNDetection (baseline)      detect/npr.py       NPR (baseline)
detect/bihpf.py           BiHPF (seed method)          detect/frepgan.py   FrePGAN (seed method)
detect/fingerprintnet.py  FingerprintNet (seed method) detect/d4.py        D4 (seed method)
"""

from trustvis.methods.detect import bihpf, cnndet, d4, fingerprintnet, frepgan, npr  # noqa: F401
