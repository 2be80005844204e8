"""The registered post-hoc calibration methods TS, CTS, ETS, PTS: the fit-only method ``Calibrator``.

The calibrator modules (TS, CTS, ETS, PTS), their papers and equations, the full-batch fit
(``fit_calibrator``) and its deviations from the official code live in ``calibrators.py``; this module wraps
them as trustvis methods (config, input checks, safeguards, registration). Papers: ``calibrators.py`` and
the ``paper=`` of each ``@register`` below.

The method ``Calibrator`` (registered as ``ts``, ``cts``, ``ets``, ``pts``; ``sctl`` subclasses it)
fits once with ``fit((logits, labels))`` and then ``predict({"logits": z})`` returns ``logits`` (B,K)
and ``probs`` (B,K). 1-D logits (N,) are the logit of class 1 of a binary detector and become
``[0, z]`` (N,2), so that ``softmax([0, z])[1] = sigmoid(z)``.

Safeguards (``Calibrator.fit``; the official code has none of them):
  * Classes with fewer than ``min_class_samples`` (5) calibration samples, absent ones included, are
    named in a warning. CTS keeps the global temperature for them (plain TS, CE loss, fitted on the same
    split; their ``T_c`` is held fixed during the fit): an absent class otherwise only ever appears as
    a wrong class, and its T_c ran off (measured: T = 4291, test accuracy 57.6 -> 50.8 %). TS, ETS and
    PTS have no per-class parameter; they fit as usual (under SCTL an absent class is left out).
  * A separable calibration split (every sample classified right) has its NLL optimum at T -> 0, which
    is over-confident on any new data (measured: test ECE 9.9 -> 30 %). With ``on_separable="identity"``
    (default) the fit is skipped with a warning and the calibrator stays at its initialisation
    (T = 1; ETS: its initial weights); ``"fit"`` fits anyway (T stops at ``t_min``).
  * Inputs that look like probabilities (every row in [0, 1] summing to 1; binary: every value in
    [0, 1]) are fitted with a loud warning (``looks_like_probabilities``; the CLI refuses them unless
    ``--inputs-are-logits``): a calibrator fitted on probabilities is silently wrong
    (gpleiss/temperature_scaling #29). Non-finite logits and labels out of range are errors.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustvis.methods.base import Batch, Method

# CALIBRATORS and looks_like_probabilities are also re-exported: cli.py and bench/calibrate.py import them
# from here
from trustvis.methods.calibrate.calibrators import (
    CALIBRATORS,
    LINE_SEARCHES,
    LOSSES,
    OPTIMIZERS,
    CalibrationError,
    EnsembleTemperatureScaling,
    ParameterizedTemperatureScaling,
    TemperatureScaling,
    VectorTemperatureScaling,
    build_calibrator,
    fit_calibrator,
    looks_like_probabilities,
)
from trustvis.registry import Paper, register

log = logging.getLogger(__name__)

SEPARABLE_POLICIES = ("identity", "fit")


# ----------------------------------------------------------------------------------------------------
# the method


@dataclass
class CalibratorConfig:
    """Post-hoc calibration: which calibrator, which loss, how it is fitted."""

    num_classes: int = 10
    calibrator: str = "ts"  # ts | cts | ets | pts
    loss: str = "ce"  # ce | ls (label smoothing) | sctl (class-wise loss scaling)
    optimizer: str = "auto"  # auto (lbfgs; adam for pts) | lbfgs | adam
    lr: float = 0.02
    max_iter: int = 1000  # LBFGS iterations per stage / Adam iterations
    line_search: str = "auto"  # auto (strong_wolfe) | "" (none, official) | strong_wolfe
    grad_tol: float = 1e-4  # converged = max |gradient| at the final parameters <= grad_tol
    max_outer: int = 50  # SCTL + LBFGS: most solves with held class scales (see fit_calibrator)
    label_smoothing: float = 0.05  # loss "ls"
    # SCTL (loss "sctl"; see sctl.py)
    norm: str = "GN"  # GN | MM | CM
    alpha_init: float = 1.0
    beta_init: float = 1.5
    alpha_min: float = 0.1
    alpha_max: float = 0.0  # 0 = ln(K)/2
    beta_bounds: tuple[float, float] = (1.5, 2.0)
    # calibrators
    pts_topk: int = 10
    ets_space: str = "probs"  # probs (Mix-n-Match, keeps the argmax) | logits (official SCTL code)
    seed: int = 1  # PTS hidden-layer init
    # safeguards (see the module docstring, "Safeguards")
    t_bounds: tuple[float, float] = (0.01, 100.0)  # TS / CTS / ETS temperatures stay in [t_min, t_max]
    min_class_samples: int = 5  # CTS: a class with fewer calibration samples keeps the global TS temperature
    on_separable: str = "identity"  # every calibration sample right: identity (T = 1, no fit) | fit


def _is_array(x: Any) -> bool:
    return isinstance(x, np.ndarray | torch.Tensor)


def _batch_pair(batch: Any) -> tuple[Any, Any]:
    if isinstance(batch, Mapping):
        if "logits" not in batch or "label" not in batch:
            raise ValueError(f"A calibration batch needs keys 'logits' and 'label'; got {sorted(batch)}")
        return batch["logits"], batch["label"]
    if isinstance(batch, tuple | list) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        "A calibration batch is a dict {'logits', 'label'} or a pair (logits, labels); "
        f"got {type(batch).__name__}"
    )


def _to_tensor(x: Any) -> torch.Tensor:
    return x.detach().cpu() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


class Calibrator(Method):
    """A fit-only post-hoc calibrator: ``fit((logits, labels))`` once, then ``predict({"logits": z})``."""

    trainable: ClassVar[bool] = False
    inputs: ClassVar[tuple[str, ...]] = ("logits",)
    #: a subclass may pin the loss (SCTL)
    required_loss: ClassVar[str | None] = None

    config: CalibratorConfig

    def __init__(self, config: CalibratorConfig) -> None:
        super().__init__(config)
        cfg = config
        if cfg.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 (binary logits (N,) use 2), got {cfg.num_classes}")
        if cfg.calibrator not in CALIBRATORS:
            raise ValueError(f"Unknown calibrator {cfg.calibrator!r}; choose from {list(CALIBRATORS)}")
        if cfg.loss not in LOSSES:
            raise ValueError(f"Unknown calibration loss {cfg.loss!r}; choose from {list(LOSSES)}")
        if self.required_loss is not None and cfg.loss != self.required_loss:
            raise ValueError(
                f"Method {self.method_name!r} always uses loss {self.required_loss!r}, got {cfg.loss!r}; "
                "for CE or LS use the calibrator's own method (ts, cts, ets, pts)"
            )
        if cfg.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {cfg.optimizer!r}; choose from {list(OPTIMIZERS)}")
        if cfg.line_search not in LINE_SEARCHES:
            raise ValueError(f"Unknown line_search {cfg.line_search!r}; choose from {list(LINE_SEARCHES)}")
        if cfg.lr <= 0 or cfg.max_iter < 1:
            raise ValueError(f"lr must be > 0 and max_iter >= 1; got lr={cfg.lr}, max_iter={cfg.max_iter}")
        if not (cfg.grad_tol > 0 and cfg.max_outer >= 1 and cfg.min_class_samples >= 1):
            raise ValueError(
                "grad_tol must be > 0, max_outer >= 1 and min_class_samples >= 1; got "
                f"grad_tol={cfg.grad_tol}, max_outer={cfg.max_outer}, min_class_samples={cfg.min_class_samples}"
            )
        if cfg.on_separable not in SEPARABLE_POLICIES:
            raise ValueError(
                f"Unknown on_separable {cfg.on_separable!r}; choose from {list(SEPARABLE_POLICIES)}"
            )
        if len(tuple(cfg.t_bounds)) != 2:
            raise ValueError(f"t_bounds must be (t_min, t_max), got {cfg.t_bounds!r}")
        self.calibrator = build_calibrator(
            cfg.calibrator,
            cfg.num_classes,
            ets_space=cfg.ets_space,
            pts_topk=cfg.pts_topk,
            seed=cfg.seed,
            t_bounds=tuple(cfg.t_bounds),
        )
        self.loss_fn = self._build_loss()
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self._inputs_look_like_probs = False

    def _build_loss(self) -> nn.Module:
        cfg = self.config
        if cfg.loss == "ce":
            return nn.CrossEntropyLoss()
        if cfg.loss == "ls":
            return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        from trustvis.methods.calibrate.sctl import ClassWiseLossScaling  # sctl.py imports this module

        return ClassWiseLossScaling(
            cfg.num_classes,
            norm=cfg.norm,
            alpha_init=cfg.alpha_init,
            beta_init=cfg.beta_init,
            alpha_bounds=(cfg.alpha_min, cfg.alpha_max or math.log(cfg.num_classes) / 2),
            beta_bounds=tuple(cfg.beta_bounds),
        )

    @property
    def optimizer_name(self) -> str:
        """The optimiser the fit uses: ``config.optimizer``, or for ``auto`` Adam for PTS, else LBFGS."""
        if self.config.optimizer != "auto":
            return self.config.optimizer
        return "adam" if self.config.calibrator == "pts" else "lbfgs"

    @property
    def line_searches(self) -> str:
        """LBFGS line search of every stage: ``config.line_search``; ``auto`` = strong Wolfe (the official
        code has none; see Deviations)."""
        return "strong_wolfe" if self.config.line_search == "auto" else self.config.line_search

    # --- inputs ---------------------------------------------------------------------------------
    def _check_logits(self, logits: Any) -> torch.Tensor:
        """numpy/torch logits (N,K), or (N,) binary logits -> float32 (N,K) on the method's device."""
        z = _to_tensor(logits)
        k = self.config.num_classes
        if not torch.is_floating_point(z):
            z = z.float()
        if z.dim() == 1:
            if k != 2:
                raise ValueError(
                    f"1-D logits (N,) are a binary detector's logit of class 1 and need num_classes=2; "
                    f"this calibrator has num_classes={k}"
                )
            z = torch.stack((torch.zeros_like(z), z), dim=1)  # (N,2): softmax(.)[:, 1] = sigmoid(z)
        if z.dim() != 2 or z.shape[1] != k:
            raise ValueError(
                f"logits must be (N, {k}) (num_classes={k}) or (N,) for a binary detector; "
                f"got shape {tuple(z.shape)}"
            )
        if not torch.isfinite(z).all():
            raise ValueError("logits contain NaN or inf")
        return z.to(device=self.device, dtype=torch.float32)

    def _check_labels(self, labels: Any, n: int) -> torch.Tensor:
        y = _to_tensor(labels).reshape(-1)
        if torch.is_floating_point(y):
            if not (torch.isfinite(y).all() and (y == y.round()).all()):
                raise ValueError("labels must be integers (class indices)")
        elif y.dtype == torch.bool:
            y = y.long()
        y = y.long()
        if y.numel() != n:
            raise ValueError(f"got {n} logits but {y.numel()} labels")
        k = self.config.num_classes
        if n and (int(y.min()) < 0 or int(y.max()) >= k):
            raise ValueError(
                f"labels must lie in [0, {k - 1}] (num_classes={k}); got [{int(y.min())}, {int(y.max())}]"
            )
        return y.to(self.device)

    def _collect(self, data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(data, Mapping) or (
            isinstance(data, tuple | list) and len(data) == 2 and all(_is_array(d) for d in data)
        ):
            batches = [_batch_pair(data)]
        elif _is_array(data):
            raise TypeError("fit needs labels: pass (logits, labels), {'logits', 'label'} or batches of them")
        elif isinstance(data, Iterable):
            batches = [_batch_pair(b) for b in data]
        else:
            raise TypeError(f"Cannot fit on {type(data).__name__}; pass (logits, labels) or batches")
        if not batches:
            raise ValueError("fit got no data (an empty iterable of batches)")
        zs = [self._check_logits(z) for z, _ in batches]
        ys = [self._check_labels(y, z.shape[0]) for z, (_, y) in zip(zs, batches)]
        z, y = torch.cat(zs), torch.cat(ys)  # (N,K), (N,)
        if z.shape[0] == 0:
            raise ValueError("fit got no samples")
        hints = [looks_like_probabilities(_to_tensor(raw).double().numpy()) for raw, _ in batches]
        self._inputs_look_like_probs = all(hints)
        if all(hints):
            log.warning(
                "%s: the calibration inputs look like PROBABILITIES, not logits (%s); a calibrator fitted on "
                "them is wrong. Pass logits (log-probabilities work: log(p))",
                self.method_name or type(self).__name__,
                hints[0],
            )
        return z, y

    # --- fit / predict --------------------------------------------------------------------------
    def fit(self, data: Any) -> dict[str, Any]:
        """Fit the calibrator on held-out logits; refitting starts again from the initialisation.

        Args:
            data: ``(logits, labels)`` (numpy or torch), a dict ``{"logits", "label"}``, or an iterable
                of such batches (concatenated: the fit is full batch). Logits are (N,K) with
                K = ``num_classes``, or (N,) binary logits when ``num_classes == 2``.

        Returns:
            The fit report of :func:`fit_calibrator` plus ``calibrator``, ``loss``, ``num_samples``,
            ``nll_before``/``nll_after`` (mean NLL), ``accuracy_before``/``accuracy_after``, the fitted
            temperature(s) and, for SCTL, ``alpha``, ``beta``.
        """
        cfg = self.config
        name = self.method_name or type(self).__name__
        z, y = self._collect(data)  # (N,K), (N,)
        self.calibrator.reset_parameters()
        if hasattr(self.loss_fn, "reset"):
            self.loss_fn.reset()
        self.fitted.fill_(False)
        extra: dict[str, Any] = {"inputs_look_like_probabilities": self._inputs_look_like_probs}
        counts = torch.bincount(y, minlength=cfg.num_classes)  # (K,)
        rare = counts < cfg.min_class_samples  # (K,)
        if rare.any():
            extra["rare_classes"] = rare.nonzero().flatten().tolist()
            per_class = isinstance(self.calibrator, VectorTemperatureScaling)
            log.warning(
                "%s: class(es) %s have fewer than min_class_samples=%d calibration samples (counts %s); %s",
                name,
                extra["rare_classes"],
                cfg.min_class_samples,
                counts[rare].tolist(),
                "their temperature is the global TS temperature"
                if per_class
                else f"{cfg.calibrator} has no per-class parameter, their samples are fitted like the others",
            )
        hit = z.gather(1, y[:, None]).squeeze(1)  # (N,)
        others = z.scatter(1, y[:, None], float("-inf")).amax(1)  # (N,)
        separable = bool((hit > others).all())
        extra["separable"] = separable
        if separable:
            log.warning(
                "%s: the calibration split is separable (every one of its %d samples is classified right): "
                "the NLL fit would sharpen without end (T -> 0) and be over-confident on new data; %s",
                name,
                int(z.shape[0]),
                "keeping the calibrator at its initialisation (T = 1) (on_separable='identity')"
                if cfg.on_separable == "identity"
                else f"fitting anyway (on_separable='fit'; temperatures stop at t_min={cfg.t_bounds[0]})",
            )
        if separable and cfg.on_separable == "identity":
            nll = float(F.cross_entropy(z, y))
            report: dict[str, Any] = {"optimizer": self.optimizer_name, "converged": False, "iterations": 0,
                                      "evaluations": 0, "initial_loss": nll, "final_loss": nll,
                                      "grad_max": float("nan"), "stepped_back": False, "stages": [],
                                      "fallback": "identity"}  # fmt: skip
        else:
            fixed: dict[int, torch.Tensor] = {}
            if isinstance(self.calibrator, VectorTemperatureScaling) and rare.any():
                log_t_global = self._global_log_temperature(z, y)
                with torch.no_grad():
                    self.calibrator.log_t[rare] = log_t_global
                fixed[id(self.calibrator.log_t)] = rare
                extra["global_temperature"] = float(log_t_global.exp())
            with torch.enable_grad():
                report = fit_calibrator(
                    self.calibrator,
                    z,
                    y,
                    self.loss_fn,
                    optimizer=self.optimizer_name,
                    lr=cfg.lr,
                    max_iter=cfg.max_iter,
                    line_search=self.line_searches,
                    grad_tol=cfg.grad_tol,
                    fixed=fixed,
                    max_outer=cfg.max_outer,
                )
        report.update(extra)
        self.fitted.fill_(True)
        with torch.no_grad():
            q = self.calibrator(z)  # (N,K)
            report.update(
                calibrator=cfg.calibrator,
                loss=cfg.loss,
                num_samples=int(z.shape[0]),
                nll_before=float(F.cross_entropy(z, y)),
                nll_after=float(F.cross_entropy(q, y)),
                accuracy_before=float((z.argmax(1) == y).float().mean()),
                accuracy_after=float((q.argmax(1) == y).float().mean()),
            )
            report.update(self._describe(z))
        if not report["converged"] and "fallback" not in report:
            stages = [i + 1 for i, r in enumerate(report["stages"]) if not r["converged"]]
            unsettled = [i + 1 for i, r in enumerate(report["stages"]) if r.get("scales_settled") is False]
            why = (
                f"the SCTL class scales did not settle in stage(s) {unsettled} (residual "
                f"{max(r['scale_residual'] for r in report['stages'] if 'scale_residual' in r):.3g} after "
                f"{max(r['solves'] for r in report['stages'])} solves; the last solve is kept)"
                if unsettled
                else "a non-finite loss stopped it (stepped back to the last finite parameters)"
                if report["stepped_back"]
                else "raise max_iter"
            )
            log.warning(
                "%s: the %s fit did not converge (stage(s) %s of %d; %d iterations, last max |grad| %.3g, "
                "tolerance %.3g); %s",
                name,
                report["optimizer"],
                stages,
                len(report["stages"]),
                report["iterations"],
                report["grad_max"],
                cfg.grad_tol,
                why,
            )
        log.info(
            "%s fitted on %d samples: NLL %.4f -> %.4f",
            self.method_name or type(self).__name__,
            report["num_samples"],
            report["nll_before"],
            report["nll_after"],
        )
        return report

    def _global_log_temperature(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """log T of plain TS (CE loss, strong Wolfe, the same bounds) on the calibration split, () float32."""
        cfg = self.config
        ts = TemperatureScaling(tuple(cfg.t_bounds)).to(z.device)
        with torch.enable_grad():
            fit_calibrator(ts, z, y, nn.CrossEntropyLoss(), line_search="strong_wolfe", max_iter=cfg.max_iter,
                           grad_tol=cfg.grad_tol)  # fmt: skip
        return ts.log_t.detach().clone()

    def _describe(self, z: torch.Tensor) -> dict[str, Any]:
        cal = self.calibrator
        out: dict[str, Any] = {}
        if isinstance(cal, ParameterizedTemperatureScaling):
            t = cal.temperature(z)  # (N,1)
            out.update(temperature_mean=float(t.mean()), temperature_min=float(t.min()))
        elif isinstance(cal, VectorTemperatureScaling):
            out["temperature"] = cal.temperature.tolist()
        else:
            out["temperature"] = float(cal.temperature)
        if isinstance(cal, EnsembleTemperatureScaling):
            out["weights"] = cal.weights.tolist()
        if hasattr(self.loss_fn, "alpha"):
            out.update(alpha=float(self.loss_fn.alpha), beta=float(self.loss_fn.beta))
        return out

    def calibrate(self, logits: Any) -> torch.Tensor:
        """Calibrated logits (B,K) of logits (B,K) or binary logits (B,)."""
        if not bool(self.fitted):
            raise CalibrationError(
                f"{self.method_name or type(self).__name__} is not fitted; call fit((logits, labels)) on a "
                "held-out split first"
            )
        z = self._check_logits(logits)  # (B,K)
        with torch.no_grad():
            return self.calibrator(z)  # (B,K)

    def predict(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``batch["logits"]`` (B,K) or (B,) -> ``{"logits": calibrated (B,K), "probs": softmax (B,K)}``."""
        if not isinstance(batch, Mapping) or "logits" not in batch:
            got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
            raise ValueError(f"predict needs a batch dict with key 'logits'; got {got}")
        q = self.calibrate(batch["logits"])  # (B,K)
        return {"logits": q, "probs": q.softmax(dim=-1)}


# ----------------------------------------------------------------------------------------------------
# registered baselines: one config default each, the same method class


@dataclass
class TSConfig(CalibratorConfig):
    calibrator: str = "ts"


@dataclass
class CTSConfig(CalibratorConfig):
    calibrator: str = "cts"


@dataclass
class ETSConfig(CalibratorConfig):
    calibrator: str = "ets"


@dataclass
class PTSConfig(CalibratorConfig):
    calibrator: str = "pts"


#: tiny: three classes and a short fit, for contract tests
PRESETS: dict[str, dict[str, Any]] = {"default": {}, "tiny": {"num_classes": 3, "max_iter": 20}}


@register(
    "ts",
    task="calibrate",
    config=TSConfig,
    presets=PRESETS,
    paper=Paper(
        "On Calibration of Modern Neural Networks",
        "Guo et al., ICML 2017",
        "https://arxiv.org/abs/1706.04599",
    ),
    summary="temperature scaling: one positive temperature fitted by NLL (baseline)",
    seed_method=False,
)
class TS(Calibrator):
    """Temperature scaling (baseline)."""


@register(
    "cts",
    task="calibrate",
    config=CTSConfig,
    presets=PRESETS,
    paper=Paper(
        "Network Calibration by Class-based Temperature Scaling",
        "Frenkel & Goldberger, EUSIPCO 2021",
        "https://doi.org/10.23919/EUSIPCO54536.2021.9616219",
    ),
    summary="class-based temperature scaling: one positive temperature per class (baseline)",
    seed_method=False,
)
class CTS(Calibrator):
    """Class-based temperature scaling (baseline)."""


@register(
    "ets",
    task="calibrate",
    config=ETSConfig,
    presets=PRESETS,
    paper=Paper(
        "Mix-n-Match: Ensemble and Compositional Methods for Uncertainty Calibration in Deep Learning",
        "Zhang et al., ICML 2020",
        "https://arxiv.org/abs/2003.07329",
    ),
    summary="ensemble temperature scaling: tempered, raw and uniform predictions mixed (baseline)",
    seed_method=False,
)
class ETS(Calibrator):
    """Ensemble temperature scaling (baseline)."""


@register(
    "pts",
    task="calibrate",
    config=PTSConfig,
    presets=PRESETS,
    paper=Paper(
        "Parameterized Temperature Scaling for Boosting the Expressive Power in Post-Hoc Uncertainty "
        "Calibration",
        "Tomani et al., WACV 2022",
        "https://arxiv.org/abs/2102.12182",
    ),
    summary="parameterized temperature scaling: per-sample temperature from the sorted logits (baseline)",
    seed_method=False,
)
class PTS(Calibrator):
    """Parameterized temperature scaling (baseline)."""
