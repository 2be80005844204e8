"""Temperature-based post-hoc calibrator modules (TS, CTS, ETS, PTS) and their robust full-batch fit.

Pure torch/numpy: nothing here imports the method machinery (``trustvis.methods.base``, the registry), so
the calibrators and ``fit_calibrator`` work on raw logits. The registered methods ``ts``, ``cts``, ``ets``,
``pts`` (``Calibrator``) wrap them in ``temperature.py``. ``looks_like_probabilities`` is the check that
method and the CLI use on inputs that look like probabilities rather than logits.

Papers:
  * TS: Guo, Pleiss, Sun, Weinberger. "On Calibration of Modern Neural Networks". ICML 2017.
    arXiv 1706.04599.
  * CTS: Frenkel, Goldberger. "Network Calibration by Class-based Temperature Scaling". EUSIPCO 2021.
    DOI 10.23919/EUSIPCO54536.2021.9616219.
  * ETS: Zhang, Kailkhura, Han. "Mix-n-Match: Ensemble and Compositional Methods for Uncertainty
    Calibration in Deep Learning". ICML 2020. arXiv 2003.07329.
  * PTS: Tomani, Cremers, Buettner. "Parameterized Temperature Scaling for Boosting the Expressive Power
    in Post-Hoc Uncertainty Calibration". WACV 2022. arXiv 2102.12182.
  The calibrator set-up, optimisers and budgets follow the official code of SCTL (Jung et al., ICML 2023,
  ``SeungjinJung/SCTL``, ``models/scaler.py``, ``optimizer.py``), whose loss lives in ``sctl.py``.

A calibrator is a pure module, logits ``z (N,K)`` -> calibrated logits ``q (N,K)``::

    TS   q = z / T                         T > 0 scalar, init 1
    CTS  q_c = z_c / T_c                   T in R^K_+, init 1
    ETS  probs:  p = w0 softmax(z/T) + w1 softmax(z) + w2 / K,   q = log p   (w on the simplex)
         logits: q = w0 z/T + w1 z + w2/K                       (official SCTL code, w in R^3)
    PTS  T_i = softplus(MLP(top-k sorted z_i)) + 1e-3,  q_i = z_i / T_i   (per sample)

The fit is full batch on the calibration split (``fit_calibrator``)::

    logits (N,K), labels (N,) ──► calibrator ──► q (N,K) ──► loss (CE | LS | SCTL) ──► LBFGS / Adam

  * TS, CTS, ETS: ``LBFGS(max_iter=1000)`` with a strong-Wolfe line search, in float64 (official:
    ``lr=0.02``, no line search, float32; ``line_search=""`` gives that step rule back). ETS runs two
    LBFGS optimisers one after the other, first T (w at its init), then w (T fixed), as the official
    code does with its separate optimisers for T and w. With the SCTL loss the class scales are held
    fixed within each LBFGS solve and re-estimated between solves (see ``fit_calibrator``).
  * PTS: ``Adam(lr=0.02)`` for 1000 full-batch iterations (float64).

Deviations:
  * Temperatures are always positive. TS, CTS and ETS store ``log T`` (log-parameterised, so LBFGS works
    on ``log T``; the optimum is the same as the official unconstrained ``T`` whenever that one is
    positive). PTS uses ``softplus(.) + 1e-3``; the official PTS divides by the raw MLP output, which
    can be zero or negative (dirichletcal/experiments_dnn #3).
  * PTS is initialised so that ``T = 1`` for every sample (last layer: zero weight, bias
    ``softplus^-1(0.999)``); hidden layers use PyTorch's default init from a generator seeded with
    ``config.seed`` (official: random init under ``torch.manual_seed(1)``). ``k = min(pts_topk, K)``
    so that PTS also works with fewer than 10 classes.
  * ETS defaults to mixing *probabilities* (``ets_space="probs"``, as Mix-n-Match) with softmax-
    parameterised weights ``w >= 0, sum w = 1``, initialised at ``(0.98, 0.01, 0.01)`` (the simplex
    interior; ``(1, 0, 0)`` is not reachable by a softmax). Every term is order-preserving in ``z`` for
    ``T > 0``, so the argmax (accuracy) is unchanged. ``ets_space="logits"`` reproduces the official
    code (``w`` unconstrained, init ``(1, 0, 0)``); there ``w2/K`` shifts every logit equally and has no
    effect, and ``w0/T + w1 < 0`` would flip the ranking. In probability space the weight stage uses
    LBFGS with a strong-Wolfe line search (``line_search="auto"``): the official no-line-search LBFGS at
    lr 0.02 leaves softmax weights near their start (measured: NLL 1.7923 vs 1.7797 at the simplex
    optimum on a synthetic 10-class set); Mix-n-Match itself fits w with SLSQP on the simplex.
  * Every LBFGS stage (``line_search="auto"``) uses a strong-Wolfe line search and the fit runs in
    float64. The official LBFGS without line search (lr 0.02) took, on nearly constant logits of a
    3-step model on long-tailed digits, one step of size 1e4 (log T to -9223 / +2522, NaN loss) on an
    AMD EPYC; in float32 its loss also stops changing while the gradient is ~1e-3. On healthy logits the
    optimum is the same; the line search reaches it in ~10 iterations instead of ~300.
  * Temperatures of TS, CTS and ETS are bounded, ``t_bounds = (0.01, 100)`` (config): the fit sees a
    flat loss outside the box and ``log T`` is projected into it after each solve. The optimum of a
    class column that carries no signal is at T = inf (the official fit walked to T ~ 2e5 or NaN).
  * Label smoothing (``loss="ls"``, 0.05) uses the same optimiser as CE; the official code runs LS and
    focal loss with a three-stage lr schedule. Focal loss is not implemented.
  * ``converged`` means the gradient tolerance (``grad_tol``, 1e-4) was met at the final parameters
    (projected at a bound; for SCTL also: the held scales settled). A non-finite loss steps back to the
    last finite parameters with a warning (the stage ends there, not converged) instead of failing the
    fit; only a loss that is non-finite at the start raises ``CalibrationError``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

CALIBRATORS = ("ts", "cts", "ets", "pts")
LOSSES = ("ce", "ls", "sctl")
OPTIMIZERS = ("auto", "lbfgs", "adam")
ETS_SPACES = ("probs", "logits")
LINE_SEARCHES = ("auto", "", "strong_wolfe")
#: smallest PTS temperature (T = softplus(.) + PTS_T_MIN)
PTS_T_MIN = 1e-3


class CalibrationError(RuntimeError):
    """The calibration fit failed (non-finite loss) or the calibrator is used before it is fitted."""


def _inv_softplus(y: float) -> float:
    """x with softplus(x) = y (y > 0)."""
    return y + math.log(-math.expm1(-y))


# ----------------------------------------------------------------------------------------------------
# calibrator modules


class _BoundedLogT(nn.Module):
    """A module with a log-temperature parameter ``log_t`` whose temperature is kept in ``t_bounds``.

    ``T = exp(clamp(log_t, log t_min, log t_max))``: outside the box the fit sees a flat loss (no gradient
    pushes further out) and :func:`fit_calibrator` projects ``log_t`` back into the box after each stage.
    """

    log_t: nn.Parameter

    def _set_bounds(self, t_bounds: tuple[float, float] | None) -> None:
        if t_bounds is None:
            self.log_t_box: tuple[float, float] | None = None
            return
        lo, hi = float(t_bounds[0]), float(t_bounds[1])
        if not (0 < lo <= 1 <= hi and math.isfinite(hi)):
            raise ValueError(
                f"temperature bounds must satisfy 0 < t_min <= 1 <= t_max < inf, got ({lo}, {hi})"
            )
        self.log_t_box = (math.log(lo), math.log(hi))

    def _log_t(self) -> torch.Tensor:
        if self.log_t_box is None:
            return self.log_t
        return self.log_t.clamp(*self.log_t_box)

    @property
    def temperature(self) -> torch.Tensor:
        return self._log_t().exp()

    def project_(self) -> bool:
        """Clamp ``log_t`` into the box in place; True when some entry was outside."""
        if self.log_t_box is None:
            return False
        with torch.no_grad():
            outside = bool(((self.log_t < self.log_t_box[0]) | (self.log_t > self.log_t_box[1])).any())
            self.log_t.clamp_(*self.log_t_box)
        return outside


class TemperatureScaling(_BoundedLogT):
    """TS: one temperature for all classes, ``q = z / T`` with ``T = exp(log_t)`` (init 1).

    Args:
        t_bounds: ``(t_min, t_max)`` the temperature is kept in (None: unbounded).
    """

    def __init__(self, t_bounds: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.log_t = nn.Parameter(torch.zeros(()))  # ()
        self._set_bounds(t_bounds)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_t.zero_()

    def fit_stages(self) -> list[list[nn.Parameter]]:
        """Parameter groups fitted one after the other, each by its own optimiser."""
        return [[self.log_t]]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.temperature  # (N,K)


class VectorTemperatureScaling(_BoundedLogT):
    """CTS: one temperature per class, ``q_c = z_c / T_c`` with ``T = exp(log_t)`` (init 1).

    Args:
        num_classes: K.
        t_bounds: ``(t_min, t_max)`` every temperature is kept in (None: unbounded).
    """

    def __init__(self, num_classes: int, t_bounds: tuple[float, float] | None = None) -> None:
        super().__init__()
        self.log_t = nn.Parameter(torch.zeros(num_classes))  # (K,)
        self._set_bounds(t_bounds)

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_t.zero_()

    def fit_stages(self) -> list[list[nn.Parameter]]:
        return [[self.log_t]]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.temperature  # (N,K) / (K,)


class EnsembleTemperatureScaling(_BoundedLogT):
    """ETS: a three-term mixture of the tempered, the raw and the uniform prediction.

    Args:
        num_classes: K.
        space: ``"probs"`` mixes probabilities with simplex weights (Mix-n-Match; keeps the argmax) and
            returns ``log p``; ``"logits"`` mixes logits with unconstrained weights (official SCTL code).
        t_bounds: ``(t_min, t_max)`` the temperature is kept in (None: unbounded).
    """

    #: initial simplex weights in probability space
    PROBS_INIT = (0.98, 0.01, 0.01)

    def __init__(
        self, num_classes: int, space: str = "probs", t_bounds: tuple[float, float] | None = None
    ) -> None:
        super().__init__()
        if space not in ETS_SPACES:
            raise ValueError(f"Unknown ETS space {space!r}; choose from {list(ETS_SPACES)}")
        self.num_classes = num_classes
        self.space = space
        self.log_t = nn.Parameter(torch.zeros(()))  # ()
        self.w = nn.Parameter(torch.zeros(3))  # (3,) raw weights (softmax logits in "probs" space)
        self._set_bounds(t_bounds)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.log_t.zero_()
            if self.space == "probs":
                self.w.copy_(torch.tensor(self.PROBS_INIT).log())
            else:
                self.w.copy_(torch.tensor((1.0, 0.0, 0.0)))

    @property
    def weights(self) -> torch.Tensor:
        """The mixture weights (3,): on the simplex in ``"probs"`` space, raw in ``"logits"`` space."""
        return self.w.softmax(0) if self.space == "probs" else self.w

    def fit_stages(self) -> list[list[nn.Parameter]]:
        return [[self.log_t], [self.w]]  # first T (w at init), then w (T fixed)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        if self.space == "logits":
            return self.w[0] * z / t + self.w[1] * z + self.w[2] / self.num_classes  # (N,K)
        log_w = self.w.log_softmax(0)  # (3,)
        parts = torch.stack(
            (
                log_w[0] + F.log_softmax(z / t, dim=-1),  # (N,K)
                log_w[1] + F.log_softmax(z, dim=-1),  # (N,K)
                (log_w[2] - math.log(self.num_classes)).expand_as(z),  # (N,K)
            )
        )  # (3,N,K)
        return torch.logsumexp(parts, dim=0)  # (N,K) = log p, a normalised log-probability


class ParameterizedTemperatureScaling(nn.Module):
    """PTS: a per-sample temperature from the top-k sorted logits.

    ``T_i = softplus(MLP(sort(z_i)[:k])) + 1e-3`` with the MLP ``Linear(k,2)+ReLU, 3 x (Linear(2,2)+ReLU),
    Linear(2,1)``; ``q_i = z_i / T_i``.

    Args:
        num_classes: K.
        topk: number of sorted logits fed to the MLP (10 in the paper); ``k = min(topk, K)``.
        seed: seed of the hidden layers' initialisation.
    """

    def __init__(self, num_classes: int, topk: int = 10, seed: int = 1) -> None:
        super().__init__()
        if topk < 1:
            raise ValueError(f"pts_topk must be >= 1, got {topk}")
        self.k = min(topk, num_classes)
        self.seed = seed
        layers: list[nn.Module] = [nn.Linear(self.k, 2), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(2, 2), nn.ReLU()]
        layers.append(nn.Linear(2, 1))
        self.mlp = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        gen = torch.Generator().manual_seed(self.seed)
        with torch.no_grad():
            for layer in self.mlp:
                if isinstance(layer, nn.Linear):  # PyTorch's default Linear init, from a seeded generator
                    bound = 1.0 / math.sqrt(layer.in_features)
                    layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=gen))
                    layer.bias.copy_(torch.empty_like(layer.bias).uniform_(-bound, bound, generator=gen))
            last = self.mlp[-1]
            last.weight.zero_()  # T = 1 for every sample at the start
            last.bias.fill_(_inv_softplus(1.0 - PTS_T_MIN))

    def fit_stages(self) -> list[list[nn.Parameter]]:
        return [list(self.mlp.parameters())]

    def temperature(self, z: torch.Tensor) -> torch.Tensor:
        """Per-sample temperatures (N,1), all >= 1e-3."""
        top = z.detach().sort(dim=-1, descending=True).values[:, : self.k]  # (N,k)
        return F.softplus(self.mlp(top)) + PTS_T_MIN  # (N,1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.temperature(z)  # (N,K) / (N,1)


def build_calibrator(
    name: str,
    num_classes: int,
    *,
    ets_space: str = "probs",
    pts_topk: int = 10,
    seed: int = 1,
    t_bounds: tuple[float, float] | None = None,
) -> nn.Module:
    """The calibrator module ``name`` (one of ``ts``, ``cts``, ``ets``, ``pts``) for K classes;
    ``t_bounds`` bounds the temperature of TS, CTS and ETS."""
    if name == "ts":
        return TemperatureScaling(t_bounds)
    if name == "cts":
        return VectorTemperatureScaling(num_classes, t_bounds)
    if name == "ets":
        return EnsembleTemperatureScaling(num_classes, ets_space, t_bounds)
    if name == "pts":
        return ParameterizedTemperatureScaling(num_classes, pts_topk, seed)
    raise ValueError(f"Unknown calibrator {name!r}; choose from {list(CALIBRATORS)}")


# ----------------------------------------------------------------------------------------------------
# the fit


class _NonFinite(Exception):
    """Raised inside a closure when the loss or its gradient is not finite (caught by the fit)."""

    def __init__(self, value: float, evaluation: int) -> None:
        super().__init__(value, evaluation)
        self.value = value
        self.evaluation = evaluation


def _flat_max(tensors: Iterable[torch.Tensor]) -> float:
    return max((float(t.abs().max()) for t in tensors if t.numel()), default=0.0)


def fit_calibrator(
    module: nn.Module,
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss_fn: nn.Module,
    *,
    optimizer: str = "lbfgs",
    lr: float = 0.02,
    max_iter: int = 1000,
    line_search: str | Sequence[str] = "",
    grad_tol: float = 1e-4,
    fixed: Mapping[int, torch.Tensor] | None = None,
    max_outer: int = 50,
    scale_tol: float = 1e-5,
) -> dict[str, Any]:
    """Fit ``module`` on the full batch ``(logits, labels)``: minimise ``loss_fn(module(logits), labels)``.

    Each parameter group of ``module.fit_stages()`` (all parameters if it has none) is fitted in turn by
    its own optimiser: LBFGS (``step(closure)`` with ``max_iter`` iterations, torch's default
    tolerances) or Adam (``max_iter`` full-batch iterations). The fit runs in float64 (the module is cast
    back to its dtype at the end)::

        every stage:  [SCTL + LBFGS: hold the class scales s] ──► LBFGS solve ──► project log T into the box
                      └── s(θ) - s > scale_tol: hold s + η (s(θ) - s), solve again (<= max_outer) ──┘

    * A loss with ``hold_scales`` (SCTL) is, with LBFGS, minimised with its class scales held fixed in
      each solve and re-estimated between solves (an outer loop), so that LBFGS never sees a loss that
      changes under it. The outer loop is a damped fixed-point iteration on the scales (η = 0.5; × 1.2,
      up to 1, when the residual ``max |s(θ) - s|`` shrinks, else halved, down to 1/64); it ends when
      the residual is <= ``scale_tol`` (then ``s`` is the scale of the solution itself, the point the
      official per-evaluation update aims at) or after ``max_outer`` solves. SCTL's GN normalisation is
      scale-free, so when the class losses are nearly equal the scales swing with tiny loss changes and
      the iteration may not settle: the fit then keeps the last solve (a minimiser of a fixed, valid
      class-weighted loss) and reports ``scales_settled: False`` (not converged). Before the first solve its alpha/beta are fitted exactly as the official code
      does: the loss at the start (step 0), then at the point of LBFGS's first step without line search
      (``lr * min(1, 1/|g|_1)`` along ``-g``; step 1); the parameters then return to the start.
    * A non-finite loss or gradient steps back to the parameters of the last finite evaluation, with a
      warning; the stage ends there (not converged) and the fit goes on.
    * Modules with a bounded ``log_t`` (``project_``) are projected into their box after each solve.

    Args:
        module: calibrator, logits (N,K) -> calibrated logits (N,K).
        logits: (N,K) float, on the module's device.
        labels: (N,) int64.
        loss_fn: called once per evaluation (stateful losses such as SCTL count the calls).
        optimizer: ``"lbfgs"`` or ``"adam"``.
        lr: learning rate (0.02 in the official code for both); an LBFGS stage with a line search
            starts its search at step 1 instead (torch's recommended setting).
        max_iter: LBFGS iterations per solve / Adam iterations per stage.
        line_search: ``""`` (none, official) or ``"strong_wolfe"`` (LBFGS only); one for all stages or
            one per stage.
        grad_tol: a stage converges when the max-abs (projected) gradient at its final parameters is
            <= grad_tol.
        fixed: ``{id(parameter): bool mask}`` of entries held at their current value (zero gradient).
        max_outer: most LBFGS solves per stage with held SCTL scales.
        scale_tol: the held scales are settled when they differ from the scales at the solution by at
            most this (max-abs).

    Returns:
        A report: ``converged`` (every stage met ``grad_tol`` at its final parameters, with no step back
        and, for SCTL, settled scales), ``iterations``, ``evaluations`` (loss calls), ``initial_loss``
        (first evaluation), ``final_loss`` (at the final parameters), ``grad_max`` (largest over the
        stages of the max-abs projected gradient at the final parameters), ``stepped_back`` (a
        non-finite loss was met) and per-stage ``stages`` (also ``solves`` and ``at_bound``).

    Raises:
        CalibrationError: the loss is not finite even at the start (no finite parameters to step back to).
        ValueError: unknown optimiser or line search.
    """
    if optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"Unknown optimizer {optimizer!r}; choose from ['lbfgs', 'adam']")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    stages = module.fit_stages() if hasattr(module, "fit_stages") else [list(module.parameters())]
    searches = [line_search] * len(stages) if isinstance(line_search, str) else list(line_search)
    if len(searches) != len(stages) or any(ls not in ("", "strong_wolfe") for ls in searches):
        raise ValueError(
            f"line_search must be one of ['', 'strong_wolfe'] or one of them per stage ({len(stages)} "
            f"stages); got {line_search!r}"
        )
    fixed = dict(fixed or {})
    first = next(iter(module.parameters()), None)
    dtype = first.dtype if first is not None else torch.float32
    holds = optimizer == "lbfgs" and hasattr(loss_fn, "hold_scales")
    box = getattr(module, "log_t_box", None)
    log_t = getattr(module, "log_t", None) if box is not None else None
    z = logits.to(torch.float64)  # (N,K)
    module.to(torch.float64)
    losses: list[float] = []
    reports: list[dict[str, Any]] = []
    stepped_back = False
    try:
        for s, params in enumerate(stages):
            stage_losses: list[float] = []
            last_good: list[torch.Tensor] = []

            def projected_grad_max(params=params) -> float:
                gs = []
                for p in params:
                    g = p.grad if p.grad is not None else torch.zeros_like(p)
                    if p is log_t and box is not None:  # at a bound, a gradient pointing outwards is spent
                        outward = ((p <= box[0]) & (g > 0)) | ((p >= box[1]) & (g < 0))
                        g = torch.where(outward, torch.zeros_like(g), g)
                    gs.append(g)
                return _flat_max(gs)

            def closure(params=params, stage_losses=stage_losses, last_good=last_good) -> torch.Tensor:
                for p in params:
                    p.grad = None
                loss = loss_fn(module(z), labels)  # scalar
                value = float(loss.detach())
                n_eval = len(stage_losses) + 1
                if not math.isfinite(value):
                    raise _NonFinite(value, n_eval)
                loss.backward(inputs=params)
                for p in params:
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    mask = fixed.get(id(p))
                    if mask is not None:
                        p.grad[mask.to(p.device)] = 0.0
                    if not torch.isfinite(p.grad).all():
                        raise _NonFinite(float("nan"), n_eval)
                stage_losses.append(value)
                last_good[:] = [p.detach().clone() for p in params]
                return loss

            def evaluate(params=params, stage_losses=stage_losses, last_good=last_good, s=s) -> bool:
                """One evaluation at the current parameters; False (after stepping back) if non-finite."""
                nonlocal stepped_back
                try:
                    closure()
                    return True
                except _NonFinite as e:
                    _step_back(params, last_good, e, s, len(stages), optimizer, lr)
                    stepped_back = True
                    closure()  # the gradient at the restored parameters
                    return False

            def run(params=params, stage_losses=stage_losses, last_good=last_good, s=s) -> tuple[int, bool]:
                """One optimiser run of the stage: (iterations, stepped back)."""
                nonlocal stepped_back
                try:
                    if optimizer == "lbfgs":
                        # with a line search the step length is the line search's business: start it at 1
                        step_lr = 1.0 if searches[s] else lr
                        opt = torch.optim.LBFGS(
                            params, lr=step_lr, max_iter=max_iter, line_search_fn=searches[s] or None
                        )
                        opt.step(closure)
                        return int(opt.state[params[0]].get("n_iter", 0)), False
                    opt = torch.optim.Adam(params, lr=lr)
                    for _ in range(max_iter):
                        closure()
                        opt.step()
                    return max_iter, False
                except _NonFinite as e:
                    _step_back(params, last_good, e, s, len(stages), optimizer, lr)
                    stepped_back = True
                    return int(len(stage_losses)), True

            if holds and not loss_fn.frozen:
                # official alpha/beta: step 0 at the start, step 1 after LBFGS's first plain step
                start = [p.detach().clone() for p in params]
                evaluate()
                g_l1 = sum(float(p.grad.abs().sum()) for p in params)
                t = lr * min(1.0, 1.0 / g_l1) if g_l1 > 0 else 0.0
                with torch.no_grad():
                    for p in params:
                        p.sub_(t * p.grad)
                evaluate()
                with torch.no_grad():
                    for p, p0 in zip(params, start):
                        p.copy_(p0)
            iters, solves, settled, broke = 0, 0, True, False
            if holds:
                with torch.no_grad():
                    held = loss_fn.hold_scales(module(z), labels)  # (K,)
                eta, previous, residual = 0.5, math.inf, 0.0
            for _ in range(max_outer if holds else 1):
                it, broke = run()
                iters += it
                solves += 1
                if broke or not holds:
                    break
                # damped fixed-point step s <- s + eta (S(θ(s)) - s); the plain one (eta = 1) can cycle
                with torch.no_grad():
                    target = loss_fn.scales_at(module(z), labels)  # (K,)
                residual = float((target - held).abs().max())
                settled = residual <= scale_tol
                if settled:
                    break
                eta = min(1.0, 1.2 * eta) if residual < previous else max(eta / 2, 1 / 64)
                previous = residual
                held = loss_fn.hold(held + eta * (target - held))
            at_bound = module.project_() if hasattr(module, "project_") else False
            finite = evaluate()  # the final loss and gradient at the final (projected) parameters
            grad_max = projected_grad_max()
            converged = finite and not broke and settled and grad_max <= grad_tol
            reports.append(
                {
                    "iterations": iters,
                    "evaluations": len(stage_losses),
                    "initial_loss": stage_losses[0],
                    "final_loss": stage_losses[-1],
                    "grad_max": grad_max,
                    "converged": bool(converged),
                    "solves": solves,
                    "at_bound": bool(at_bound),
                    **({"scales_settled": settled, "scale_residual": residual} if holds else {}),
                }
            )
            losses += stage_losses
    finally:
        if holds:
            loss_fn.release_scales()
        module.to(dtype)
        for p in module.parameters():
            p.grad = None

    return {
        "optimizer": optimizer,
        "converged": all(r["converged"] for r in reports),
        "iterations": sum(r["iterations"] for r in reports),
        "evaluations": len(losses),
        "initial_loss": losses[0],
        "final_loss": losses[-1],
        "grad_max": max(r["grad_max"] for r in reports),
        "stepped_back": stepped_back,
        "stages": reports,
    }


def _step_back(
    params: Sequence[torch.Tensor],
    last_good: Sequence[torch.Tensor],
    e: _NonFinite,
    stage: int,
    n_stages: int,
    optimizer: str,
    lr: float,
) -> None:
    """Restore the parameters of the last finite evaluation after a non-finite one, with a warning.

    Raises:
        CalibrationError: there is no finite evaluation to go back to (the loss is non-finite at the start).
    """
    if not last_good:
        raise CalibrationError(
            f"non-finite calibration loss ({e.value}) at evaluation {e.evaluation} of stage {stage + 1}/"
            f"{n_stages} with optimizer {optimizer!r}, lr {lr}, at the start of the fit: check that the "
            "inputs are finite logits (not probabilities)"
        ) from None
    with torch.no_grad():
        for p, good in zip(params, last_good):
            p.copy_(good)
    log.warning(
        "calibration fit: non-finite loss (%s) at evaluation %d of stage %d/%d; stepped back to the last "
        "finite parameters and ended the stage there (not converged)",
        e.value,
        e.evaluation,
        stage + 1,
        n_stages,
    )


# ----------------------------------------------------------------------------------------------------
# inputs


def looks_like_probabilities(logits: Any) -> str | None:
    """Why ``logits`` (N,K) or binary (N,) look like probabilities rather than logits, or None.

    (N,K): every value in [0, 1] and every row sums to 1 (within 1e-3); (N,): every value in [0, 1].
    Log-probabilities are valid logits and do not match.
    """
    z = np.asarray(logits, dtype=np.float64)
    if z.size == 0 or z.ndim not in (1, 2) or not np.isfinite(z).all() or z.min() < 0 or z.max() > 1:
        return None
    if z.ndim == 1:
        return "every value lies in [0, 1]; binary logits spread around 0"
    if np.allclose(z.sum(1), 1.0, atol=1e-3):
        return "every row lies in [0, 1] and sums to 1"
    return None
