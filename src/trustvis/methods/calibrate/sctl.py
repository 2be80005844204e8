"""SCTL: class-wise re-weighting of the loss that fits a post-hoc calibrator (TS, CTS, ETS, PTS).

Paper: Jung, Seo, Jeong, Choi. "Scaling of Class-wise Training Losses for Post-hoc Calibration".
ICML 2023, PMLR 202:15421-15434. arXiv 2306.10989. Official code: SeungjinJung/SCTL
(``models/lossfunction.py``).

Algorithm (full batch; ``q = g(z)`` the calibrated logits of the whole calibration split, K classes,
``V_c`` its samples of class c)::

    L_c   = mean_{i in V_c} CE(q_i, c)                       class-wise mean loss (not frequency-weighted)
    n_c   = normalise(stopgrad(L))_c                          GN: (L_c - mean L) / std(L)  (unbiased std)
                                                              MM: (L_c - min L) / (max L - min L)
                                                              CM: (L_c - mean L) / (max L - min L)
    s_c   = beta * sigmoid(n_c / alpha) - beta/2 + 1          in (1 - beta/2, 1 + beta/2); no gradient
    loss  = sum_c s_c L_c                                     (sum over classes, not mean)

alpha, beta start at (1, 1.5). The first evaluation stores ``L0 = stopgrad(L)``; the second evaluation
(``step == 1``; with LBFGS that is the second closure call inside the first ``step``) fits them once::

    min_{alpha,beta} sqrt( sum_c ( L0_c - (beta sigmoid(n_c/alpha) - beta/2) (L1_c - L0_c) - mean(L1) )^2 )
    alpha in [0.1, ln(K)/2],  beta in [1.5, 2.0]                  scipy.optimize.minimize(method="SLSQP")

and they stay fixed from then on (``frozen``). With GN or CM, ``s_c > 1`` exactly for the classes
whose loss is above the class mean; with MM every ``s_c >= 1``.

The registered method ``sctl`` is the post-hoc ``Calibrator`` of ``temperature.py`` with this loss; the
calibrator is chosen by ``config.calibrator`` (``ts`` by default, or ``cts``, ``ets``, ``pts``), each with
its official optimiser (LBFGS lr 0.02 x 1000; Adam lr 0.02 x 1000 for PTS).

Deviations:
  * Empty classes (no sample of class c in the calibration split) are guarded: their ``L_c`` is 0 with
    no gradient, they are left out of the normalisation, the alpha/beta objective and the sum, and
    their scale is reported as 1 (the official code produces NaN). Degenerate normalisations (fewer
    than two classes present, std = 0, max = min) give ``n = 0``, i.e. ``s = 1``.
  * The class-wise mean CE is computed in one vectorised pass (``index_add``) instead of a loop of
    ``F.cross_entropy`` calls; the values are the same.
  * SLSQP starts from ``(alpha, beta)`` clipped into the bounds; a non-finite SLSQP answer keeps that
    start (the official code takes ``opt.x`` unchecked). The fitted values are clipped into the bounds.
  * The temperatures of the calibrators are positive and bounded (see ``calibrators.py``).
  * With LBFGS (TS, CTS, ETS) the scales are held fixed within each LBFGS solve (``hold_scales``) and
    re-estimated between solves by a damped fixed-point iteration (``fit_calibrator``); the official
    code recomputes them at every loss evaluation, so LBFGS minimises a loss that changes under it
    (its curvature pairs mix two losses; on nearly constant logits this ran log T off to NaN). alpha
    and beta are still fitted once, from the losses at the start and after LBFGS's first plain step
    (lr 0.02 along -g), exactly the official step 0 / step 1. Adam (PTS) keeps the official per-
    evaluation scales. GN's z-score is scale-free, so the scales need not settle when the class
    losses are nearly equal; the fit then reports ``scales_settled: False`` (not converged).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import optimize
from torch import nn

from trustvis.methods.calibrate.temperature import Calibrator, CalibratorConfig
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)

NORMS = ("GN", "MM", "CM")


def classwise_nll(
    logits: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of every class and which classes have samples.

    Args:
        logits: (N,K) calibrated logits.
        labels: (N,) int64 in [0, K).
        num_classes: K.

    Returns:
        ``L`` (K,) with ``L_c`` the mean NLL over the samples of class c (0 for an empty class, with no
        gradient), and ``present`` (K,) bool.
    """
    nll = F.cross_entropy(logits, labels, reduction="none")  # (N,)
    counts = torch.bincount(labels, minlength=num_classes)  # (K,)
    sums = torch.zeros(num_classes, dtype=nll.dtype, device=nll.device).index_add(0, labels, nll)  # (K,)
    return sums / counts.clamp_min(1).to(nll.dtype), counts > 0  # (K,), (K,)


def normalise(losses: torch.Tensor, present: torch.Tensor, norm: str) -> torch.Tensor:
    """``n`` (K,) of the detached class losses over the present classes (0 elsewhere and when degenerate)."""
    if norm not in NORMS:
        raise ValueError(f"Unknown SCTL normalisation {norm!r}; choose from {list(NORMS)}")
    n = torch.zeros_like(losses)  # (K,)
    v = losses[present]  # (P,)
    if v.numel() < 2:
        return n
    if norm == "GN":
        scale = v.std()  # unbiased (N-1), as torch's default in the official code
        centred = v - v.mean()
    else:
        scale = v.max() - v.min()
        centred = v - (v.min() if norm == "MM" else v.mean())
    if not (torch.isfinite(scale) and scale > 0):
        return n
    n[present] = centred / scale
    return n


def shifted_sigmoid(n: torch.Tensor | np.ndarray, alpha: float, beta: float) -> Any:
    """The scale estimator ``beta * sigmoid(n / alpha) - beta / 2 + 1`` (torch or numpy)."""
    if isinstance(n, torch.Tensor):
        return beta * torch.sigmoid(n / alpha) - beta / 2 + 1
    return beta / (1.0 + np.exp(-n / alpha)) - beta / 2 + 1


class ClassWiseLossScaling(nn.Module):
    """SCTL loss: ``sum_c s_c L_c`` with shifted-sigmoid class scales; alpha/beta fitted once at step 1.

    Call it on the full calibration batch every evaluation (it counts the calls). State (buffers, so it
    is saved with a method): ``alpha``, ``beta``, ``step``, ``L0`` and ``present0`` (step-0 losses and
    classes), ``scales`` (the last ``s``).

    Args:
        num_classes: K.
        norm: ``"GN"`` (default), ``"MM"`` or ``"CM"``.
        alpha_init: alpha before the fit (1.0).
        beta_init: beta before the fit (1.5).
        alpha_bounds: SLSQP bounds of alpha; default ``(0.1, ln(K)/2)``.
        beta_bounds: SLSQP bounds of beta; default ``(1.5, 2.0)``.
    """

    def __init__(
        self,
        num_classes: int,
        norm: str = "GN",
        alpha_init: float = 1.0,
        beta_init: float = 1.5,
        alpha_bounds: tuple[float, float] | None = None,
        beta_bounds: tuple[float, float] = (1.5, 2.0),
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"SCTL needs num_classes >= 2, got {num_classes}")
        if norm not in NORMS:
            raise ValueError(f"Unknown SCTL normalisation {norm!r}; choose from {list(NORMS)}")
        alpha_bounds = tuple(alpha_bounds) if alpha_bounds else (0.1, math.log(num_classes) / 2)
        for name, (lo, hi) in (("alpha", alpha_bounds), ("beta", tuple(beta_bounds))):
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise ValueError(f"SCTL {name} bounds must satisfy 0 < low <= high, got ({lo}, {hi})")
        if alpha_init <= 0:
            raise ValueError(f"alpha_init must be > 0, got {alpha_init}")
        self.num_classes = num_classes
        self.norm = norm
        self.alpha_init = float(alpha_init)
        self.beta_init = float(beta_init)
        self.alpha_bounds = (float(alpha_bounds[0]), float(alpha_bounds[1]))
        self.beta_bounds = (float(beta_bounds[0]), float(beta_bounds[1]))
        self.register_buffer("alpha", torch.tensor(self.alpha_init, dtype=torch.float64))
        self.register_buffer("beta", torch.tensor(self.beta_init, dtype=torch.float64))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("L0", torch.zeros(num_classes))
        self.register_buffer("present0", torch.zeros(num_classes, dtype=torch.bool))
        self.register_buffer("scales", torch.ones(num_classes))
        self._held: torch.Tensor | None = None  # scales held fixed by the fit (not saved)

    def reset(self) -> None:
        """Back to the state before the first evaluation (a new fit estimates alpha/beta again)."""
        self.alpha.fill_(self.alpha_init)
        self.beta.fill_(self.beta_init)
        self.step.zero_()
        self.L0.zero_()
        self.present0.fill_(False)
        self.scales.fill_(1.0)
        self._held = None

    @property
    def frozen(self) -> bool:
        """True once alpha and beta have been fitted (after the second evaluation)."""
        return int(self.step) >= 2

    def fit_alpha_beta(
        self, n: torch.Tensor, losses: torch.Tensor, mask: torch.Tensor
    ) -> tuple[float, float]:
        """SLSQP fit of (alpha, beta) on the classes in ``mask`` (K,), from step-0 and current losses."""
        n1 = n[mask].double().cpu().numpy()  # (P,)
        l1 = losses[mask].double().cpu().numpy()  # (P,)
        l0 = self.L0[mask].double().cpu().numpy()  # (P,)
        bounds = (self.alpha_bounds, self.beta_bounds)
        x0 = np.clip([float(self.alpha), float(self.beta)], [b[0] for b in bounds], [b[1] for b in bounds])
        if l1.size == 0:
            return float(x0[0]), float(x0[1])
        target = l1.mean()

        def objective(x: np.ndarray) -> float:
            w = x[1] / (1.0 + np.exp(-n1 / x[0])) - x[1] / 2  # (P,) = s - 1
            return float(np.sqrt(((l0 - w * (l1 - l0) - target) ** 2).sum()))

        res = optimize.minimize(objective, x0, method="SLSQP", bounds=bounds, options={"disp": False})
        x = np.asarray(res.x, dtype=np.float64)
        if not np.isfinite(x).all():
            log.warning("SCTL: SLSQP returned %s; keeping alpha, beta = %s", x, x0)
            x = x0
        x = np.clip(x, [b[0] for b in bounds], [b[1] for b in bounds])
        return float(x[0]), float(x[1])

    def scales_at(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The scales ``s`` (K,) the current alpha/beta give at calibrated logits (N,K); no state changes."""
        losses, present = classwise_nll(logits.detach(), labels, self.num_classes)  # (K,), (K,)
        s = shifted_sigmoid(
            normalise(losses, present, self.norm), float(self.alpha), float(self.beta)
        )  # (K,)
        return torch.where(present, s, torch.ones_like(s))

    def hold_scales(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Hold the scales of the current logits (N,K) fixed in every evaluation until
        :meth:`release_scales` (the fit's outer loop; alpha and beta must be frozen). Returns them (K,)."""
        if not self.frozen:
            raise RuntimeError("SCTL scales can only be held once alpha and beta are fitted (2 evaluations)")
        return self.hold(self.scales_at(logits, labels))

    def hold(self, scales: torch.Tensor) -> torch.Tensor:
        """Hold the given scales (K,) fixed in every evaluation until :meth:`release_scales`."""
        if not self.frozen:
            raise RuntimeError("SCTL scales can only be held once alpha and beta are fitted (2 evaluations)")
        self._held = scales.detach().clone()
        return self._held

    def release_scales(self) -> None:
        """Back to scales recomputed at every evaluation (the official behaviour)."""
        self._held = None

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """SCTL loss (scalar) of calibrated logits (N,K) with labels (N,); advances the step counter."""
        losses, present = classwise_nll(logits, labels, self.num_classes)  # (K,), (K,)
        if self._held is not None:  # the fit holds the scales fixed within one LBFGS solve
            self.step.add_(1)
            self.scales.copy_(self._held)
            return (self._held.to(losses.dtype) * losses).sum()
        detached = losses.detach()  # (K,)
        n = normalise(detached, present, self.norm)  # (K,)
        step = int(self.step)
        if step == 0:
            self.L0.copy_(detached)
            self.present0.copy_(present)
        elif step == 1:
            alpha, beta = self.fit_alpha_beta(n, detached, present & self.present0)
            self.alpha.fill_(alpha)
            self.beta.fill_(beta)
            log.debug("SCTL: alpha=%.4f beta=%.4f (frozen from now on)", alpha, beta)
        self.step.add_(1)
        s = shifted_sigmoid(n, float(self.alpha), float(self.beta))  # (K,)
        s = torch.where(present, s, torch.ones_like(s))  # empty classes: neutral (their L_c is 0 anyway)
        self.scales.copy_(s)
        return (s.detach() * losses).sum()  # sum over classes, scales carry no gradient


@dataclass
class SCTLConfig(CalibratorConfig):
    """SCTL: a post-hoc calibrator (``calibrator``: ts | cts | ets | pts) fitted with the SCTL loss."""

    loss: str = "sctl"


PRESETS: dict[str, dict[str, Any]] = {"default": {}, "tiny": {"num_classes": 3, "max_iter": 20}}


@register(
    "sctl",
    task="calibrate",
    config=SCTLConfig,
    presets=PRESETS,
    paper=Paper(
        "Scaling of Class-wise Training Losses for Post-hoc Calibration",
        "Jung et al., ICML 2023",
        "https://proceedings.mlr.press/v202/jung23a.html",
    ),
    summary="post-hoc calibrator (TS/CTS/ETS/PTS) fitted with class-wise loss scaling (seed method)",
    seed_method=True,
)
class SCTL(Calibrator):
    """SCTL: ``Calibrator`` whose loss is always :class:`ClassWiseLossScaling`."""

    required_loss = "sctl"
