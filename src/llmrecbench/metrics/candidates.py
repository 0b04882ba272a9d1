"""Ranking within per-user candidate lists (direct recommendation: target + 99 sampled negatives).

A model scores every candidate of a user, ``scores[u, c]`` for item ``candidates[u, c]``. Ties are
broken by a seeded random key per (user, candidate) instead of by item id or list position, so a
model that gives equal scores (e.g. popularity with equal counts, an untrained model) ranks its
target at a uniformly random place among the tied candidates:

    key[u]  = a uniformly random permutation of 0..C-1 (numpy default_rng(seed), rows independent)
    rank_u  = 1 + #{c : s_uc > s_ut} + #{c : s_uc = s_ut and key_uc < key_ut}

where t is the target's column. The top-k list orders candidates by (-score, key), i.e. exactly
the order whose positions are these ranks, so HR@k recomputed from the lists equals the metric.
NaN scores are an error (they compare unequal to everything and would silently rank anywhere).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from llmrecbench.metrics.ranking import ranking_metrics


def _as_numpy(x: Any, dtype: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check_scores(scores: Any, candidates: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _as_numpy(scores, np.float64)
    c = _as_numpy(candidates, np.int64)
    if s.ndim != 2 or s.shape != c.shape:
        raise ValueError(f"scores and candidates must both be [U, C], got {s.shape} and {c.shape}")
    if s.shape[1] == 0:
        raise ValueError("candidate lists are empty")
    if np.isnan(s).any():
        u, col = np.argwhere(np.isnan(s))[0]
        raise ValueError(f"NaN score (row {u}, candidate {col}); candidate ranks need comparable scores")
    return s, c


def tie_keys(shape: tuple[int, int], seed: int) -> np.ndarray:
    """``[U, C]`` int64 tie-break keys: row u is a uniformly random permutation of 0..C-1.

    key = numpy.random.default_rng(seed).permuted(tile(arange(C), (U, 1)), axis=1); equal
    (shape, seed) give equal keys. Lower key wins a tie.
    """
    n_rows, n_cols = (int(v) for v in shape)
    if n_rows < 0 or n_cols < 0:
        raise ValueError(f"shape must be non-negative, got {shape}")
    base = np.tile(np.arange(n_cols, dtype=np.int64), (n_rows, 1))
    return np.random.default_rng(seed).permuted(base, axis=1)


def target_columns(candidates: Any, targets: Any) -> np.ndarray:
    """Column of each row's target in ``candidates``; ValueError unless it occurs exactly once."""
    c = _as_numpy(candidates, np.int64)
    t = _as_numpy(targets, np.int64)
    if t.ndim != 1 or c.ndim != 2 or t.shape[0] != c.shape[0]:
        raise ValueError(f"candidates must be [U, C] and targets [U], got {c.shape} and {t.shape}")
    hit = c == t[:, None]
    count = hit.sum(axis=1)
    if (count != 1).any():
        u = int(np.flatnonzero(count != 1)[0])
        raise ValueError(f"row {u}: target item {int(t[u])} occurs {int(count[u])} times in its candidate list (expected once)")
    return hit.argmax(axis=1)


def candidate_ranks(scores: Any, candidates: Any, targets: Any, seed: int) -> np.ndarray:
    """1-based rank ``[U]`` int64 of each user's target among its candidates:

        rank_u = 1 + #{c : s_uc > s_ut} + #{c : s_uc = s_ut and key_uc < key_ut},  key = tie_keys(shape, seed)
    """
    s, c = _check_scores(scores, candidates)
    col = target_columns(c, targets)
    keys = tie_keys(s.shape, seed)
    rows = np.arange(s.shape[0])
    s_t = s[rows, col][:, None]
    k_t = keys[rows, col][:, None]
    return 1 + (s > s_t).sum(axis=1) + ((s == s_t) & (keys < k_t)).sum(axis=1)


def candidate_order(scores: Any, seed: int) -> np.ndarray:
    """``[U, C]`` column indices of each row sorted by (-score, key), best first."""
    s = _as_numpy(scores, np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be [U, C], got {s.shape}")
    if np.isnan(s).any():
        raise ValueError("NaN score; candidate ranks need comparable scores")
    by_key = np.argsort(tie_keys(s.shape, seed), axis=1)  # columns in increasing key
    s_by_key = np.take_along_axis(s, by_key, axis=1)
    # a stable sort on -score keeps increasing key among equal scores (-0.0 == 0.0 as in the ranks)
    return np.take_along_axis(by_key, np.argsort(-s_by_key, axis=1, kind="stable"), axis=1)


def candidate_topk(scores: Any, candidates: Any, seed: int, k: int) -> np.ndarray:
    """``[U, k]`` int64 item ids, best first, ordered by (-score, key) with key = tie_keys(shape, seed).

    The target of row u sits at position candidate_ranks(...)[u] - 1 of the full order, so
    HR@k = mean_u 1[target_u in topk_u] equals the metric from the ranks.
    """
    s, c = _check_scores(scores, candidates)
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in 1..{s.shape[1]} (the candidate list length), got {k}")
    return np.take_along_axis(c, candidate_order(s, seed)[:, :k], axis=1)


def candidate_metrics(scores: Any, candidates: Any, targets: Any, seed: int, ks: Iterable[int] = (1, 5, 10)) -> dict[str, float]:
    """HR@k and NDCG@k for each k, and MRR, over the candidate ranks (:func:`ranking_metrics`)."""
    return ranking_metrics(candidate_ranks(scores, candidates, targets, seed), ks)
