"""Post-hoc calibrators: logits of a frozen classifier -> calibrated logits, fit on a held-out split.

temperature.py  TS, CTS, ETS, PTS calibrator modules, the full-batch fit (``fit_calibrator``) and the
                fit-only method ``Calibrator``; registered baselines ``ts``, ``cts``, ``ets``, ``pts``.
sctl.py         SCTL class-wise loss scaling (``ClassWiseLossScaling``); registered seed method ``sctl``.
"""

from trustvis.methods.calibrate import sctl, temperature  # noqa: F401
