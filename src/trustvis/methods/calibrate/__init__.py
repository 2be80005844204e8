"""Post-hoc calibrators: logits of a frozen classifier -> calibrated logits, fit on a held-out split.

calibrators.py  TS, CTS, ETS, PTS calibrator modules and their robust full-batch fit (``fit_calibrator``);
                plain torch, usable on raw logits without the method machinery
temperature.py  the fit-only method ``Calibrator``; registered baselines ``ts``, ``cts``, ``ets``, ``pts``
sctl.py         SCTL class-wise loss scaling (``ClassWiseLossScaling``); registered seed method ``sctl``.
"""

from trustvis.methods.calibrate import sctl, temperature  # noqa: F401
