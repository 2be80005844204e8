"""Post-hoc calibration of a classifier's or a detector's logits (``trustvis calibrate``, ``bench calibrate``).

logits file (.npz, never a pickle) or a trained run ──► calibration logits/labels + test logits/labels
    (validated: finite logits, labels in range, no probabilities passed as logits)
each calibrator (ts, cts, ets, pts) × loss (ce, sctl) ──► fit on the calibration logits ──► probabilities of
    the test logits ──► accuracy, ECE, class-wise ECE, MCE, NLL, Brier, argmax changes, reliability bins

A run's logits come from its task (:meth:`Task.calibration_logits`): a classifier gives its val (calibration)
and test splits, a SynthBench detector its training family's val split and the unseen families' test.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from trustvis import registry
from trustvis.methods.calibrate.temperature import CALIBRATORS, looks_like_probabilities
from trustvis.metrics.calibration import as_probs, calibration_metrics, reliability_bins

#: the baseline loss of each calibrator, and the seed method's (SCTL)
LOSSES = ("ce", "sctl")


class CalibrationInputError(ValueError):
    """A logits file or run cannot be calibrated; the message names the file and the array."""


_NPZ_KEYS = {"cal": ("cal_logits", "val_logits", "logits"), "cal_y": ("cal_labels", "val_labels", "labels"),
             "test": ("test_logits",), "test_y": ("test_labels",)}  # fmt: skip


def check_logit_arrays(data: dict[str, Any], source: str, keys: dict[str, str], allow_probs: bool) -> None:
    """Validate calibration/test logits and labels in place (labels -> int64); every error names ``source``
    and the array's key. Probabilities passed as logits are refused unless ``allow_probs``."""
    k_cal = None
    for role, lab in (("cal", "cal_y"), ("test", "test_y")):
        z, y = data[role], data[lab]
        if z is None:
            continue
        zk, yk = keys[role], keys[lab]
        z = np.asarray(z)
        if (
            z.dtype.kind not in "fiu"
            or z.ndim not in (1, 2)
            or z.size == 0
            or (z.ndim == 2 and z.shape[1] < 2)
        ):
            raise CalibrationInputError(f"{source}: {zk} must be a non-empty numeric (N, K) array with K >= 2, or (N,) for a "
                             f"binary detector; got dtype {z.dtype}, shape {z.shape}")  # fmt: skip
        bad = ~np.isfinite(z.reshape(len(z), -1)).all(1)
        if bad.any():
            raise CalibrationInputError(f"{source}: {zk} has {int(bad.sum())} row(s) with NaN or inf (first: row "
                             f"{int(np.argmax(bad))}); calibration needs finite logits")  # fmt: skip
        k = 2 if z.ndim == 1 else int(z.shape[1])
        if k_cal is not None and (k != k_cal or z.ndim != np.asarray(data["cal"]).ndim):
            raise CalibrationInputError(f"{source}: {zk} has shape {z.shape} but the calibration logits {keys['cal']} have "
                             f"shape {np.asarray(data['cal']).shape}; they need the same classes")  # fmt: skip
        k_cal = k if k_cal is None else k_cal
        hint = looks_like_probabilities(z)
        if hint and not allow_probs:
            raise CalibrationInputError(f"{source}: {zk} look like probabilities, not logits ({hint}); pass logits "
                             "(log-probabilities work: np.log(p)), or --inputs-are-logits if they are logits")  # fmt: skip
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.dtype.kind not in "fiub" or y.ndim != 1:
            raise CalibrationInputError(f"{source}: {yk} must be a 1-D array of class indices; got dtype {y.dtype}, "
                             f"shape {y.shape}")  # fmt: skip
        if len(y) != len(z):
            raise CalibrationInputError(f"{source}: {yk} has {len(y)} labels but {zk} has {len(z)} rows")
        if y.dtype.kind == "f" and not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise CalibrationInputError(
                f"{source}: {yk} must hold integer class indices; found non-integer or NaN values"
            )
        y = y.astype(np.int64)
        if y.min() < 0 or y.max() >= k:
            raise CalibrationInputError(f"{source}: {yk} must lie in [0, {k - 1}] ({k} classes from the shape of {zk}); "
                             f"got [{int(y.min())}, {int(y.max())}]")  # fmt: skip
        data[role], data[lab] = z, y


def read_logits_npz(path: str, allow_probs: bool = False) -> dict[str, Any]:
    """Calibration (and test) logits/labels from an ``.npz`` file (never a pickle), validated: finite
    logits, labels in range, no probabilities in place of logits (unless ``allow_probs``)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            found = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise CalibrationInputError(f"{path}: not a readable .npz file of arrays ({e})") from e
    out: dict[str, Any] = {}
    keys: dict[str, str] = {}
    for role, names in _NPZ_KEYS.items():
        keys[role] = next((n for n in names if n in found), names[0])
        out[role] = found.get(keys[role])
    if out["cal"] is None or out["cal_y"] is None:
        raise CalibrationInputError(f"{path} holds {sorted(found)}; it needs cal_logits and cal_labels (or val_logits/val_labels, "
                         "or logits/labels), and optionally test_logits and test_labels")  # fmt: skip
    if (out["test"] is None) != (out["test_y"] is None):
        raise CalibrationInputError(f"{path}: test_logits and test_labels go together")
    check_logit_arrays(out, path, keys, allow_probs)
    return out


_RUN_KEYS = {"cal": "the validation logits", "cal_y": "the validation labels", "test": "the test logits",
             "test_y": "the test labels"}  # fmt: skip


def run_logits(run_dir: str, device: str = "cpu") -> dict[str, Any]:
    """Calibration/test logits of a trained run, from its task (classifier: val -> test; SynthBench detector:
    the training family's val -> the unseen families' test)."""
    from trustvis.engine import load_method
    from trustvis.tasks.base import task_of

    method = load_method(run_dir, device=device)
    task = task_of(method.task)
    get = getattr(task, "calibration_logits", None)
    if get is None:
        raise CalibrationInputError(
            f"calibrate --run supports classifier runs and SynthBench detector runs; {run_dir} is a "
            f"{method.task} run: export its logits to an .npz and use --logits"
        )
    try:
        parts = get(method, run_dir)
    except ValueError as e:
        raise CalibrationInputError(str(e)) from None
    check_logit_arrays(parts, run_dir, _RUN_KEYS, allow_probs=True)  # a model's own logits
    return parts


def calibrator_method(calibrator: str, loss: str, num_classes: int, max_iter: int | None = None) -> Any:
    """The registered calibrator method for ``calibrator`` fitted with ``loss`` (``sctl`` = the seed method);
    ``max_iter`` overrides the optimiser budget (default: the official 1000)."""
    if calibrator not in CALIBRATORS:
        raise ValueError(f"Unknown calibrator {calibrator!r}; choose from {list(CALIBRATORS)}")
    if loss not in LOSSES:
        raise ValueError(f"Unknown loss {loss!r}; choose from {list(LOSSES)}")
    over: dict[str, Any] = {"num_classes": num_classes, **({"max_iter": max_iter} if max_iter else {})}
    if loss == "sctl":
        return registry.build("sctl", calibrator=calibrator, **over)
    return registry.build(calibrator, **over)


def argmax_changed(raw_pred: np.ndarray, probs: np.ndarray, tol: float = 1e-6) -> int:
    """How many samples the calibrated ``probs`` (N,K) assign to another class than ``raw_pred`` (N,).

    A tie is not a change: a sample counts only when some class is *strictly* (by more than ``tol``)
    more probable than the raw prediction (an untrained binary detector calibrated to T -> inf gives
    0.5/0.5 everywhere).
    """
    p_raw = probs[np.arange(len(probs)), raw_pred]
    return int((probs.max(1) > p_raw + tol).sum())


def _metrics(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return calibration_metrics(probs, labels, from_logits=False)


def calibrate_logits(
    cal_logits: np.ndarray,
    cal_labels: np.ndarray,
    test_logits: np.ndarray,
    test_labels: np.ndarray,
    max_iter: int | None = None,
) -> dict[str, Any]:
    """Every calibrator × loss fitted on the calibration logits and scored on the test logits.

    Logits are (N,K), or (N,) for a binary detector (logit of class 1). Returns ``{"uncalibrated":
    {metrics}, "<cal>+<loss>": {metrics, "argmax_changed", "fit": report}}`` plus ``"_diagrams"`` with
    the reliability bins of every row.
    """
    cal_t, test_t = torch.as_tensor(cal_logits).float(), torch.as_tensor(test_logits).float()
    k = 2 if test_t.dim() == 1 else test_t.shape[1]
    raw_probs = torch.sigmoid(test_t) if test_t.dim() == 1 else test_t.softmax(1)
    raw_probs = torch.stack([1 - raw_probs, raw_probs], 1) if test_t.dim() == 1 else raw_probs
    raw_pred = raw_probs.argmax(1).numpy()
    rows: dict[str, Any] = {"uncalibrated": _metrics(raw_probs.numpy(), test_labels)}
    diagrams = {"uncalibrated": reliability_bins(raw_probs.numpy(), test_labels)}
    for cal in CALIBRATORS:
        for loss in LOSSES:
            method = calibrator_method(cal, loss, k, max_iter)
            report = method.fit((cal_t, torch.as_tensor(cal_labels)))
            probs = method.predict({"logits": test_t})["probs"].numpy()
            name = f"{cal}+{loss}"
            rows[name] = {**_metrics(probs, test_labels), "argmax_changed": argmax_changed(raw_pred, probs),
                          "fit": {k_: v for k_, v in report.items() if isinstance(v, int | float | bool | str)}}  # fmt: skip
            diagrams[name] = reliability_bins(probs, test_labels)
    rows["_diagrams"] = diagrams
    return rows


def calibrate_one(
    name: str, calibrator: str | None, data: dict[str, Any], max_iter: int | None = None
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Fit one calibrator method (``name`` = ts|cts|ets|pts, or ``sctl`` fitting ``calibrator``, default
    the SCTL config's) on the calibration logits; returns (fitted method, metric rows, reliability bins)
    on the test logits."""
    loss = "sctl" if name == "sctl" else "ce"
    if calibrator is None:
        calibrator = registry.get("sctl").make_config("default").calibrator
    cal = calibrator if name == "sctl" else name
    if cal not in CALIBRATORS:
        raise CalibrationInputError(f"--calibrator must be one of {list(CALIBRATORS)}")
    k = 2 if np.asarray(data["cal"]).ndim == 1 else int(np.asarray(data["cal"]).shape[1])
    method = calibrator_method(cal, loss, k, max_iter)
    report = method.fit((data["cal"], data["cal_y"]))
    raw = as_probs(np.asarray(data["test"], dtype=np.float64), from_logits=True)
    probs = method.predict({"logits": torch.as_tensor(data["test"]).float()})["probs"].numpy()
    rows = {"uncalibrated": calibration_metrics(raw, data["test_y"], from_logits=False),
            f"{cal}+{loss}": {**calibration_metrics(probs, data["test_y"], from_logits=False),
                              "argmax_changed": argmax_changed(raw.argmax(1), probs),
                              "fit": {k_: v for k_, v in report.items() if isinstance(v, int | float | bool | str)}}}  # fmt: skip
    diagrams = {"uncalibrated": reliability_bins(raw, data["test_y"]),
                f"{cal}+{loss}": reliability_bins(probs, data["test_y"])}  # fmt: skip
    return method, rows, diagrams
