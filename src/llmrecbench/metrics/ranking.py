"""Top-k ranking metrics for next-item recommendation with a single held-out target per user.

All functions take ``ranks``: the 1-based position of each user's target item in the ranked
list over the candidate set (rank 1 = top). A target that was not ranked at all (e.g. an LLM
output that could not be grounded) is passed as rank ``np.inf`` and scores 0 on every metric.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch


def _as_ranks(ranks: Iterable[float]) -> np.ndarray:
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"ranks must be one-dimensional, got shape {r.shape}")
    if r.size and np.nanmin(r) < 1:
        raise ValueError("ranks are 1-based; got a rank below 1")
    return r


def hit_rate_at_k(ranks: Iterable[float], k: int) -> float:
    """HR@k = (1/|U|) * sum_u 1[rank_u <= k].

    With one target per user this equals Recall@k. Empty input gives 0.0.
    """
    r = _as_ranks(ranks)
    if r.size == 0:
        return 0.0
    return float(np.mean(r <= k))


def ndcg_at_k(ranks: Iterable[float], k: int) -> float:
    """NDCG@k = (1/|U|) * sum_u 1[rank_u <= k] / log2(rank_u + 1).

    With a single relevant item the ideal DCG is 1/log2(2) = 1, so NDCG equals DCG.
    """
    r = _as_ranks(ranks)
    if r.size == 0:
        return 0.0
    gains = np.where(r <= k, 1.0 / np.log2(np.where(np.isfinite(r), r, 1.0) + 1.0), 0.0)
    return float(np.mean(gains))


def mrr(ranks: Iterable[float]) -> float:
    """MRR = (1/|U|) * sum_u 1/rank_u over the full ranking (unranked targets contribute 0)."""
    r = _as_ranks(ranks)
    if r.size == 0:
        return 0.0
    return float(np.mean(np.where(np.isfinite(r), 1.0 / r, 0.0)))


def ranking_metrics(ranks: Iterable[float], ks: Iterable[int] = (1, 5, 10, 20)) -> dict[str, float]:
    """All reported metrics in one dict: ``HR@k`` and ``NDCG@k`` for each k, plus ``MRR``."""
    r = _as_ranks(ranks)
    out: dict[str, float] = {}
    for k in ks:
        out[f"HR@{k}"] = hit_rate_at_k(r, k)
        out[f"NDCG@{k}"] = ndcg_at_k(r, k)
    out["MRR"] = mrr(r)
    return out


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rank of each row's target among all columns, 1-based, ties broken by lower item index.

    rank_u = 1 + #{j : s_uj > s_ut} + #{j < t : s_uj = s_ut}

    This is the rank the target gets in ``torch.sort(scores, descending=True, stable=True)``,
    so the stored top-k lists and the metrics agree even for models with tied scores
    (e.g. popularity). Rows are users, columns items; ``targets`` holds column indices.
    """
    if scores.ndim != 2 or targets.ndim != 1 or scores.shape[0] != targets.shape[0]:
        raise ValueError("scores must be [B, N] and targets [B]")
    target_scores = scores.gather(1, targets.view(-1, 1))
    greater = (scores > target_scores).sum(dim=1)
    equal = scores == target_scores
    tied = torch.nonzero(equal.sum(dim=1) > 1).view(-1)  # rows where another item ties the target
    ties_before = torch.zeros_like(greater)
    if tied.numel():
        cols = torch.arange(scores.shape[1], device=scores.device).view(1, -1)
        ties_before[tied] = (equal[tied] & (cols < targets[tied].view(-1, 1))).sum(dim=1)
    return greater + ties_before + 1


def topk_stable(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` columns of ``torch.sort(scores, dim=1, descending=True, stable=True)``
    (higher score first, ties by lower column index) without sorting whole rows.

    With v_u the k-th largest score of row u, the top k are every column with s_uj > v_u plus the
    lowest-index columns with s_uj = v_u that fill it to k; only those k are then sorted, by
    (-s_uj, j). Rows with fewer than ``k`` columns keep them all. Scores must not be NaN.
    """
    if scores.ndim != 2:
        raise ValueError("scores must be [B, N]")
    b, n = scores.shape
    k = min(int(k), n)
    if k == 0 or b == 0:
        return torch.empty((b, k), dtype=torch.long, device=scores.device)
    kth = torch.topk(scores, k, dim=1, sorted=False).values.min(dim=1, keepdim=True).values
    above = scores > kth
    at = scores == kth
    need = k - above.sum(dim=1, keepdim=True)
    chosen = above | at
    cut = torch.nonzero(at.sum(dim=1) > need.view(-1)).view(-1)  # rows whose boundary ties exceed the room
    if cut.numel():
        first = at[cut] & (torch.cumsum(at[cut], dim=1) <= need[cut])
        chosen[cut] = above[cut] | first
    cols = torch.nonzero(chosen)[:, 1].view(b, k)  # ascending column index within each row
    picked = scores.gather(1, cols)
    order = torch.sort(picked, dim=1, descending=True, stable=True).indices
    return cols.gather(1, order)
