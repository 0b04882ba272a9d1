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


def count_true(mask: torch.Tensor) -> torch.Tensor:
    """Per-row number of True entries of a ``[B, N]`` bool tensor. On the CPU the bools are read as
    uint8 and summed by numpy into int32 (N < 2^31): about 18x faster than summing bools in torch
    and 2.5x faster than ``np.count_nonzero(axis=1)`` on Beauty's 1,024 x 12,101 batches."""
    if mask.device.type == "cpu":
        return torch.from_numpy(mask.numpy().view(np.uint8).sum(axis=1, dtype=np.int32).astype(np.int64))
    return mask.sum(dim=1)


def ranks_from_scores(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Rank of each row's target among all columns, 1-based, ties broken by lower item index.

    rank_u = 1 + #{j : s_uj > s_ut} + #{j < t : s_uj = s_ut}

    This is the rank the target gets in ``torch.sort(scores, descending=True, stable=True)``,
    so the stored top-k lists and the metrics agree even for models with tied scores
    (e.g. popularity). Rows are users, columns items; ``targets`` holds column indices.
    """
    if scores.ndim != 2 or targets.ndim != 1 or scores.shape[0] != targets.shape[0]:
        raise ValueError("scores must be [B, N] and targets [B]")
    targets = targets.to(scores.device)
    target_scores = scores.gather(1, targets.view(-1, 1))
    greater = count_true(scores > target_scores).to(scores.device)
    equal = scores == target_scores
    tied = torch.nonzero(count_true(equal).to(scores.device) > 1).view(-1)  # rows where another item ties the target
    ties_before = torch.zeros_like(greater)
    if tied.numel():
        cols = torch.arange(scores.shape[1], device=scores.device).view(1, -1)
        ties_before[tied] = (equal[tied] & (cols < targets[tied].view(-1, 1))).sum(dim=1)
    return greater + ties_before + 1


def topk_stable(scores: torch.Tensor, k: int) -> torch.Tensor:
    """The first ``k`` columns of ``torch.sort(scores, dim=1, descending=True, stable=True)``
    (higher score first, ties by lower column index) without sorting whole rows.

    ``torch.topk`` gives the k + 1 largest scores in descending order; with v_u the k-th of them,
    the first k are the stable sort's set unless the (k+1)-th also equals v_u (then more columns
    may tie at v_u than topk kept, and which of them it kept is unspecified). Those rows take every
    column with s_uj > v_u plus the lowest-index columns with s_uj = v_u. The k columns are then
    ordered by (-s_uj, j). Rows with at most ``k`` columns keep them all. Scores must not be NaN.
    """
    if scores.ndim != 2:
        raise ValueError("scores must be [B, N]")
    b, n = scores.shape
    k = min(int(k), n)
    if k == 0 or b == 0:
        return torch.empty((b, k), dtype=torch.long, device=scores.device)
    if k == n:
        values, cols = torch.topk(scores, k, dim=1, sorted=True)
        cut = cols.new_empty(0)
    else:  # one column more than kept: a tie across the boundary shows as v_(k+1) == v_k
        values, cols = torch.topk(scores, k + 1, dim=1, sorted=True)
        cut = torch.nonzero(values[:, k] == values[:, k - 1]).view(-1)
        values, cols = values[:, :k], cols[:, :k]
    kth = values[:, k - 1 : k]
    if cut.numel():  # boundary ties beyond the kept ones: take the lowest-index tied columns
        sub, sub_kth = scores[cut], kth[cut]
        above, at = sub > sub_kth, sub == sub_kth
        need = k - above.sum(dim=1, keepdim=True)
        chosen = above | (at & (torch.cumsum(at, dim=1) <= need))
        cols = cols.clone()
        cols[cut] = torch.nonzero(chosen)[:, 1].view(-1, k)
    cols = torch.sort(cols, dim=1).values  # ascending column index, then a stable sort by score
    order = torch.sort(scores.gather(1, cols), dim=1, descending=True, stable=True).indices
    return cols.gather(1, order)
