"""Presentation-attack-detection (anti-spoofing) metrics of ISO/IEC 30107-3.

Convention: label 1 = attack presentation (spoof: a recaptured display), 0 = bona fide (real); a score
is the predicted probability of *attack*. The decision rule is the one of
:mod:`trustvis.metrics.classification`: a presentation is classified **attack iff score >= threshold**
(a score equal to the threshold is an attack).

Definitions (ISO/IEC 30107-3, clause 13):

- APCER of one presentation-attack-instrument (PAI) species, here one display type (medium): the share
  of the attack presentations of that species classified bona fide. The APCER of a *system* is the
  worst species, ``max`` over species (also the OULU-NPU convention); :func:`per_medium_metrics` reports
  it as ``apcer_max`` next to the mean over species.
- BPCER: the share of bona fide presentations classified attack. It does not depend on the species, so
  per medium it is the same number, computed over all bona fide presentations.
- ACER = (APCER + BPCER) / 2, the average classification error rate. It is not an ISO metric: the
  standard advises against averaging the two error types (its 2023 revision lists ACER as deprecated),
  yet every anti-spoofing paper reports it, so it is reported here too; prefer the (APCER, BPCER) pair.
- AUC (``sklearn.metrics.roc_auc_score``) and EER (:func:`trustvis.metrics.classification.eer`, the
  interpolated ROC point where APCER = BPCER) are threshold-free.

Choosing the threshold: the operating point is fixed on the *validation* split and applied unchanged to
every test set (per unseen display), never tuned on the test data::

    t = eer_threshold(val_labels, val_scores)          # APCER = BPCER on validation
    pad_metrics(test_labels, test_scores, t)           # APCER, BPCER, ACER on test
    per_medium_metrics(test_labels, test_scores, test_media, t)

:func:`eer_threshold` uses the midpoint rule: the scores split the real line into regions on which the
decisions do not change; it picks the region where ``|APCER - BPCER|`` is smallest (APCER rises and
BPCER falls with the threshold, so this is the region at their crossing; a tie between the two regions
on either side of the crossing goes to the one with the lower ACER, then to the lower threshold) and
returns the midpoint between the two distinct scores that bound it. No validation score sits on the
threshold, the result is finite even for perfectly separated data (it then lies strictly between the
classes, halfway), and with distinct scores APCER and BPCER differ by less than one sample there.

Inputs are validated as in :mod:`trustvis.metrics.classification` (equal lengths, labels 0/1, finite
scores; one-line ``ValueError``); torch tensors are accepted. Degenerate inputs give ``nan``: AUC and
EER when one class is absent, APCER without attacks, BPCER without bona fide samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from trustvis.metrics.classification import NAN, _check, _check_threshold, eer, mean_metrics

__all__ = ["PAD_KEYS", "eer_threshold", "pad_metrics", "per_medium_metrics"]

#: the rate metrics of :func:`pad_metrics`, averaged over media by :func:`per_medium_metrics`
PAD_KEYS = ("apcer", "bpcer", "acer", "auc", "eer")


def _rate(errors: int, total: int) -> float:
    return errors / total if total else NAN


def pad_metrics(labels: Any, scores: Any, threshold: float) -> dict[str, float | int]:
    """APCER, BPCER, ACER at ``threshold``, plus AUC and EER, of one test set.

    Args:
        labels: 1 (attack) / 0 (bona fide), shape (N,).
        scores: probability of attack, shape (N,); attack iff ``score >= threshold``.
        threshold: the operating point, chosen on validation data (:func:`eer_threshold`).

    Returns:
        ``{"apcer", "bpcer", "acer", "auc", "eer", "n_bona", "n_attack", "threshold"}``. ``apcer`` is
        ``nan`` without attacks, ``bpcer`` without bona fide samples (and ``acer`` with either); ``auc``
        and ``eer`` are ``nan`` when one class is absent.

    Raises:
        ValueError: on empty input, mismatched lengths, labels other than 0/1, non-finite scores or a
            non-finite threshold.
    """
    y, s = _check(labels, scores)
    t = _check_threshold(threshold)
    attack_pred = s >= t
    bona, attack = y == 0, y == 1
    n_bona, n_attack = int(bona.sum()), int(attack.sum())
    apcer = _rate(int(np.count_nonzero(attack & ~attack_pred)), n_attack)  # attacks let through
    bpcer = _rate(int(np.count_nonzero(bona & attack_pred)), n_bona)  # bona fide rejected
    both = n_bona > 0 and n_attack > 0
    return {
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2,
        "auc": float(roc_auc_score(y, s)) if both else NAN,
        "eer": eer(y, s) if both else NAN,
        "n_bona": n_bona,
        "n_attack": n_attack,
        "threshold": t,
    }


def eer_threshold(labels: Any, scores: Any) -> float:
    """The threshold where APCER = BPCER on (validation) data, by the midpoint rule (module docstring).

    Args:
        labels: 1 (attack) / 0 (bona fide), shape (N,); both classes must be present.
        scores: probability of attack, shape (N,).

    Returns:
        A finite threshold halfway between two adjacent distinct scores (beyond the extreme score by half
        the nearest gap, or by 0.5 when all scores are equal, when the crossing lies outside the scores).

    Raises:
        ValueError: on invalid input (as :func:`pad_metrics`) or when one class is absent.
    """
    y, s = _check(labels, scores)
    bona, attack = np.sort(s[y == 0]), np.sort(s[y == 1])
    if bona.size == 0 or attack.size == 0:
        raise ValueError(
            f"eer_threshold needs bona fide and attack samples; got {bona.size} bona fide and "
            f"{attack.size} attacks."
        )
    u = np.unique(s)  # region k: attack iff s >= u[k]; region len(u): nothing is an attack
    cut = np.append(u, np.inf)
    # error counts per region, in units of 1 / (n_attack * n_bona) so that ties compare exactly
    missed = np.searchsorted(attack, cut, side="left").astype(np.int64)  # attacks below the cut
    rejected = bona.size - np.searchsorted(bona, cut, side="left").astype(np.int64)  # bona at or above
    apcer, bpcer = missed * bona.size, rejected * attack.size
    gap = np.abs(apcer - bpcer)
    acer = apcer + bpcer
    k = int(np.lexsort((np.arange(cut.size), acer, gap))[0])  # smallest gap, then ACER, then threshold
    step = float(u[1] - u[0]) if u.size > 1 else 1.0
    if k == 0:
        return float(u[0] - step / 2)
    if k == u.size:
        last = float(u[-1] - u[-2]) if u.size > 1 else 1.0
        return float(u[-1] + last / 2)
    return float((u[k - 1] + u[k]) / 2)


def per_medium_metrics(labels: Any, scores: Any, media: Sequence[str], threshold: float) -> dict[str, Any]:
    """:func:`pad_metrics` per attack medium (display type / PAI species), their mean and the ISO worst case.

    Each medium is scored on the bona fide samples of *all* media plus the attacks of that medium, so
    the BPCER is shared and the APCER is that species' APCER.

    Args:
        labels: 1 (attack) / 0 (bona fide), shape (N,).
        scores: probability of attack, shape (N,).
        media: ``media[i]`` names the display of attack ``i``; the names on bona fide rows (e.g.
            ``"object"``) are ignored and never make a medium of their own.
        threshold: the operating point, chosen on validation data.

    Returns:
        ``{"per_medium": {medium: pad_metrics(...)}, "mean": {key: mean over media},
        "apcer_max": max APCER over media (the ISO system APCER), "bpcer": BPCER of all bona fide,
        "acer_max": (apcer_max + bpcer) / 2 (the OULU-NPU ACER), "media": sorted attack media}``. The
        mean covers :data:`PAD_KEYS` and ignores ``nan`` (AUC/EER of a medium are ``nan`` without bona
        fide samples). Without attacks ``per_medium`` and ``media`` are empty and the rest is ``nan``.

    Raises:
        ValueError: on invalid labels/scores/threshold or when ``media`` has another length.
    """
    y, s = _check(labels, scores)
    t = _check_threshold(threshold)
    if isinstance(media, str):
        raise ValueError("media must be a sequence of names, one per sample, not a single string.")
    m = np.asarray([str(v) for v in media], dtype=object)
    if m.size != y.size:
        raise ValueError(f"media has {m.size} names but there are {y.size} labels.")
    bona, attack = y == 0, y == 1
    names = sorted({str(v) for v in m[attack]})
    per = {name: pad_metrics(y[bona | (attack & (m == name))], s[bona | (attack & (m == name))], t)
           for name in names}  # fmt: skip
    bpcer = _rate(int(np.count_nonzero(bona & (s >= t))), int(bona.sum()))
    apcer_max = max((r["apcer"] for r in per.values()), default=NAN)
    return {
        "per_medium": per,
        "mean": mean_metrics(per.values(), keys=PAD_KEYS),
        "apcer_max": apcer_max,
        "bpcer": bpcer,
        "acer_max": (apcer_max + bpcer) / 2,
        "media": names,
    }
