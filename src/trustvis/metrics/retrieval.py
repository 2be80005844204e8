"""Re-identification retrieval metrics: CMC rank-k and mAP under the Market-1501 rules.

Paper: L. Zheng, L. Shen, L. Tian, S. Wang, J. Wang, Q. Tian, "Scalable Person Re-identification: A
Benchmark", ICCV 2015 (the Market-1501 protocol). The rules are those of its evaluation code and of the
``evaluate`` / ``compute_mAP`` functions of the roll-back paper's official repository (Ro et al., AAAI 2019,
youngminPIL/rollback ``test_resnet.py``), single query::

    features --cosine_distance--> distmat (Q, G)
        --per query: stable sort of its row--> ranked gallery
        --drop junk (below)--> ranked valid gallery --> first correct rank (CMC), AP

Per query with person id ``p > 0`` taken by camera ``c``:

- **junk, removed from the ranking**: gallery images of the same id *and* the same camera (``pid == p``
  and ``camid == c``; they are too easy), and images with ``pid == -1`` (Market-1501's junk detections);
- **correct matches**: gallery images with ``pid == p`` taken by another camera;
- everything else stays in the ranking and is a **wrong match**, including distractors (``pid == 0``).

A query without any correct match (and every query with ``pid <= 0``, which matches nothing by definition)
is skipped and counted in ``n_skipped``.

With the ``n`` correct matches at 0-based ranks ``r_1 < ... < r_n`` of the ranking after junk removal
(``i = 1..n``)::

    precision_i     = i / (r_i + 1)                      # precision at the i-th hit
    old_precision_i = (i - 1) / r_i   if r_i > 0 else 1  # precision just before it
    AP (interpolated, default) = 1/n * sum_i (old_precision_i + precision_i) / 2
    AP (interpolated=False)    = 1/n * sum_i precision_i

The interpolated AP is the official one (Zheng et al.'s ``compute_AP.m``, the roll-back repository, and
layumi/Person_reID_baseline_pytorch): the area under the precision-recall curve by the trapezoid rule
between consecutive hits. **trustvis's tables report it** (``interpolated=True``), so that numbers compare
with the paper's code. The non-interpolated one is the step-wise AP of torchreid / fast-reid and of
``sklearn.metrics.average_precision_score`` over the valid ranking (equal to it when there are no ties);
since ``old_precision_i <= precision_i``, the interpolated AP is never larger than it. ``mAP`` is the mean AP over valid queries; the CMC value at
rank ``k`` is the fraction of valid queries whose first correct match is within the top ``k``.

Deviations from the official code (documented choices):

- Averages are over the *valid* queries (``n_valid_query``), as in torchreid; the official script divides
  by all queries, counting skipped ones as failures. On Market-1501 every query has a correct match, so
  the numbers agree.
- Ties are broken deterministically: a stable sort by distance, then by gallery index (a lower index ranks
  first). The official code sorts similarities with NumPy's default (unstable) quicksort and reverses.
- A query with ``pid <= 0`` is skipped (the official code would fail or match junk to junk).
- Distances must be finite; NaN or infinite values raise ``ValueError`` instead of sorting arbitrarily.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from trustvis.metrics.anomaly import _finite_float
from trustvis.metrics.classification import _to_numpy

logger = logging.getLogger(__name__)

__all__ = ["cosine_distance", "evaluate_retrieval", "ranked_gallery"]

JUNK_PID = -1
DISTRACTOR_PID = 0
_CHUNK_ELEMENTS = 1 << 22  # rows of the distance matrix ranked at once: ~4M entries (a few 10 MB)


def _is_tensor(x: Any) -> bool:
    return hasattr(x, "detach") and hasattr(x, "device")


def _ids(x: Any, n: int, what: str) -> np.ndarray:
    a = _to_numpy(x).reshape(-1)
    if a.size != n:
        raise ValueError(f"{what} has {a.size} entries; the distance matrix needs {n}.")
    if a.size and not np.issubdtype(a.dtype, np.integer):
        try:
            f = a.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what} must be integers: {exc}") from exc
        if not np.all(np.isfinite(f) & (f == np.round(f))):
            raise ValueError(f"{what} must be integers; found non-integer values.")
        a = f
    return a.astype(np.int64)


def _features(x: Any, what: str) -> Any:
    """A tensor as is, anything else as a NumPy array; either of shape (N, D)."""
    x = x if _is_tensor(x) else np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{what} must have shape (N, D) with N, D >= 1; got {tuple(x.shape)}.")
    return x


def cosine_distance(query_feats: Any, gallery_feats: Any) -> np.ndarray:
    """Cosine distance ``1 - cos(q, g)`` of every query-gallery pair, in [0, 2].

    Both sets are L2-normalised here (a zero vector stays zero and is at distance 1 from everything), so
    the result does not depend on the features' scale. With torch tensors the product runs in torch on
    the query's device (fast on a GPU); otherwise in NumPy, in float32 for float32 input and float64 else.

    Args:
        query_feats: (Q, D) array or tensor.
        gallery_feats: (G, D) array or tensor.

    Returns:
        float (Q, G) NumPy array.

    Raises:
        ValueError: on shapes other than (N, D), different feature sizes or non-finite features.
    """
    q, g = _features(query_feats, "query_feats"), _features(gallery_feats, "gallery_feats")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"Feature sizes differ: query_feats D={q.shape[1]}, gallery_feats D={g.shape[1]}.")
    if _is_tensor(q) or _is_tensor(g):
        import torch

        qt = q if _is_tensor(q) else torch.as_tensor(q)
        gt = (g if _is_tensor(g) else torch.as_tensor(g)).to(qt.device)
        dtype = torch.float64 if torch.float64 in (qt.dtype, gt.dtype) else torch.float32
        qt, gt = qt.detach().to(dtype), gt.detach().to(dtype)
        if not (bool(torch.isfinite(qt).all()) and bool(torch.isfinite(gt).all())):
            raise ValueError("Features contain NaN or infinite values.")
        qn = torch.nn.functional.normalize(qt, dim=1)  # (Q, D)
        gn = torch.nn.functional.normalize(gt, dim=1)  # (G, D)
        return (1.0 - qn @ gn.T).clamp_(0.0, 2.0).cpu().numpy()  # (Q, G)
    qa, ga = q, g
    dtype = np.result_type(qa.dtype, ga.dtype, np.float32)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"Features must be numeric; got {qa.dtype} and {ga.dtype}.")
    qa, ga = qa.astype(dtype, copy=False), ga.astype(dtype, copy=False)
    if not (np.all(np.isfinite(qa)) and np.all(np.isfinite(ga))):
        raise ValueError("Features contain NaN or infinite values.")

    def unit(a: np.ndarray) -> np.ndarray:
        n = np.linalg.norm(a, axis=1, keepdims=True)
        return a / np.maximum(n, np.finfo(dtype).tiny)

    return np.clip(1.0 - unit(qa) @ unit(ga).T, 0.0, 2.0)  # (Q, G)


def _distmat(distmat: Any) -> np.ndarray:
    d = _finite_float(distmat, "distmat")
    if d.ndim != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"distmat must have shape (Q, G) with Q, G >= 1; got {tuple(d.shape)}.")
    return d


def _rank(
    d: np.ndarray, q_pids: np.ndarray, q_camids: np.ndarray, g_pids: np.ndarray, g_camids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank the gallery for each row of ``d`` (B, G) and apply the Market-1501 rules.

    Returns ``order`` (B, G), the gallery indices sorted by distance (stable: ties by index), and the
    masks ``keep`` (not junk) and ``good`` (a correct match), both (B, G) in the order of ``order``.
    """
    order = np.argsort(d, axis=1, kind="stable")  # (B, G)
    gp, gc = g_pids[order], g_camids[order]  # (B, G)
    same_id = gp == q_pids[:, None]
    keep = ~((same_id & (gc == q_camids[:, None])) | (gp == JUNK_PID))
    good = same_id & keep & (q_pids[:, None] > DISTRACTOR_PID)
    return order, keep, good


def evaluate_retrieval(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 10,
    interpolated: bool = True,
) -> dict[str, Any]:
    """Single-query CMC and mAP of a query-gallery distance matrix under the Market-1501 rules.

    See the module docstring for the rules, the two AP formulas and the deviations from the official code.

    Args:
        distmat: (Q, G) distances, smaller = more similar (e.g. :func:`cosine_distance`).
        q_pids: (Q,) person ids of the queries.
        g_pids: (G,) person ids of the gallery; ``-1`` junk, ``0`` distractor.
        q_camids: (Q,) camera ids of the queries.
        g_camids: (G,) camera ids of the gallery.
        max_rank: length of the returned CMC curve (>= 1); ``rank1/5/10`` are returned whatever it is.
        interpolated: Zheng et al.'s trapezoid AP (default, the official one and that of trustvis's
            tables); ``False`` gives the step-wise, sklearn-style AP.

    Returns:
        ``{"rank1", "rank5", "rank10", "map"}`` as fractions in [0, 1], ``"cmc"`` (list of ``max_rank``
        fractions, ``cmc[k-1]`` = rank-k), and the counts ``"n_query"``, ``"n_valid_query"`` and
        ``"n_skipped"`` (queries without a correct match). The fractions are ``nan`` when no query is valid.

    Raises:
        ValueError: on a distance matrix that is not (Q, G) or not finite, id arrays of the wrong length or
            non-integer ids, or ``max_rank < 1``.
    """
    d = _distmat(distmat)
    n_q, n_g = d.shape
    qp, qc = _ids(q_pids, n_q, "q_pids"), _ids(q_camids, n_q, "q_camids")
    gp, gc = _ids(g_pids, n_g, "g_pids"), _ids(g_camids, n_g, "g_camids")
    if isinstance(max_rank, bool) or int(max_rank) != max_rank or max_rank < 1:
        raise ValueError(f"max_rank must be an integer >= 1, got {max_rank!r}.")
    max_rank = int(max_rank)

    first_hit: list[np.ndarray] = []  # 0-based rank of the first correct match, valid queries only
    aps: list[np.ndarray] = []
    step = max(1, _CHUNK_ELEMENTS // n_g)
    for lo in range(0, n_q, step):
        rows = slice(lo, min(lo + step, n_q))
        _, keep, good = _rank(d[rows], qp[rows], qc[rows], gp, gc)
        n_good = good.sum(axis=1)  # (B,)
        valid = n_good > 0
        if not valid.any():
            continue
        keep, good, n_good = keep[valid], good[valid], n_good[valid]
        pos = np.cumsum(keep, axis=1) - 1  # (B, G) 0-based rank among the valid gallery
        hits = np.cumsum(good, axis=1)  # (B, G) i: number of correct matches up to here
        first_hit.append(np.where(good, pos, n_g).min(axis=1))
        precision = hits / (np.maximum(pos, 0) + 1.0)  # junk before the first valid image has pos -1
        if interpolated:
            old = np.where(pos > 0, (hits - 1.0) / np.maximum(pos, 1), 1.0)
            precision = (old + precision) / 2.0
        aps.append(np.where(good, precision, 0.0).sum(axis=1) / n_good)

    n_valid = int(sum(a.size for a in aps))
    out: dict[str, Any] = {"n_query": n_q, "n_valid_query": n_valid, "n_skipped": n_q - n_valid}
    if n_valid == 0:
        logger.warning("evaluate_retrieval: none of %d queries has a correct match in the gallery.", n_q)
        out.update(rank1=math.nan, rank5=math.nan, rank10=math.nan, map=math.nan, cmc=[math.nan] * max_rank)
        return out
    if n_q - n_valid:
        logger.info(
            "evaluate_retrieval: %d of %d queries have no correct match; skipped.", n_q - n_valid, n_q
        )
    fh = np.concatenate(first_hit)  # (n_valid,)
    out.update(
        rank1=float(np.mean(fh < 1)),
        rank5=float(np.mean(fh < 5)),
        rank10=float(np.mean(fh < 10)),
        map=float(np.mean(np.concatenate(aps))),
        cmc=[float(np.mean(fh < k)) for k in range(1, max_rank + 1)],
    )
    return out


def ranked_gallery(
    distmat: Any,
    q: int,
    g_pids: Any,
    g_camids: Any,
    q_pid: int,
    q_camid: int,
    k: int = 5,
) -> list[tuple[int, bool]]:
    """The top-``k`` gallery images of one query after junk removal, for the retrieval-examples figure.

    Junk (``pid == -1``, and the same id seen by the query's camera) is skipped as in
    :func:`evaluate_retrieval`; ties go to the lower gallery index.

    Args:
        distmat: (Q, G) distances.
        q: the query's row in ``distmat``.
        g_pids: (G,) gallery person ids.
        g_camids: (G,) gallery camera ids.
        q_pid: the query's person id.
        q_camid: the query's camera id.
        k: how many images (fewer when the valid gallery is smaller).

    Returns:
        ``[(gallery_index, correct), ...]`` best first; ``correct`` = same id, other camera.

    Raises:
        ValueError: on a bad distance matrix, a row ``q`` out of range, id arrays of the wrong length or
            ``k < 1``.
    """
    d = _distmat(distmat)
    n_q, n_g = d.shape
    if isinstance(q, bool) or int(q) != q or not 0 <= q < n_q:
        raise ValueError(f"q must be a row of distmat in [0, {n_q}), got {q!r}.")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    gp, gc = _ids(g_pids, n_g, "g_pids"), _ids(g_camids, n_g, "g_camids")
    qp, qc = _ids([q_pid], 1, "q_pid"), _ids([q_camid], 1, "q_camid")
    order, keep, good = _rank(d[int(q) : int(q) + 1], qp, qc, gp, gc)
    top = np.flatnonzero(keep[0])[: int(k)]
    return [(int(order[0, j]), bool(good[0, j])) for j in top]
