"""Full-ranking evaluation: every user's target is ranked against all items, in batches.

No per-user Python loop touches the scores: a batch of users is scored as one ``[B, N]``
tensor, history items are optionally masked with ``-inf`` by one scatter, and ranks come from
one comparison (:func:`llmrecbench.metrics.ranks_from_scores`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from llmrecbench.metrics import ranking_metrics, ranks_from_scores

# A scorer takes a batch of item-id histories (0-based ids, chronological) and returns
# float scores of shape [len(batch), n_items]; higher means more likely next.
ScoreFn = Callable[[Sequence[np.ndarray]], torch.Tensor]


@dataclass
class RankingResult:
    """Metrics plus the raw ranks and top-k lists they were computed from."""

    metrics: dict[str, float]
    ranks: np.ndarray  # [U] 1-based rank of the target
    topk: np.ndarray  # [U, k] item ids, best first
    n_target_in_history: int = 0
    protocol: dict = field(default_factory=dict)
    score_seconds: float = 0.0  # wall time inside score_fn after one warm-up batch


def history_mask_index(histories: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of every (user, history item) pair, for one scatter."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(histories) else np.empty(0, dtype=np.int64)
    return torch.from_numpy(rows), torch.from_numpy(cols.astype(np.int64))


@torch.no_grad()
def evaluate_full_ranking(
    score_fn: ScoreFn,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    ks: Sequence[int] = (1, 5, 10, 20),
    mask_history: bool = True,
    batch_size: int = 1024,
    topk: int = 20,
) -> RankingResult:
    """Rank each target among all ``n_items`` items and compute HR@k, NDCG@k and MRR.

    With ``mask_history`` every item in the user's input history gets score ``-inf`` before
    ranking (RecBole / S3-Rec full-sort protocol); a target that is itself in the history then
    ranks behind every unseen item, and how often that happens is reported.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories) != targets.shape[0]:
        raise ValueError("one target per history is required")
    all_ranks = np.empty(targets.shape[0], dtype=np.int64)
    all_topk = np.empty((targets.shape[0], topk), dtype=np.int64)
    in_history = 0
    score_seconds = 0.0
    if len(histories):
        score_fn(histories[:batch_size])  # warm-up (allocator, kernels) outside the timing
    for start in range(0, targets.shape[0], batch_size):
        batch_hist = histories[start : start + batch_size]
        batch_tgt = torch.from_numpy(targets[start : start + batch_size])
        t0 = time.perf_counter()
        scores = score_fn(batch_hist)
        if scores.is_cuda:
            torch.cuda.synchronize()
        score_seconds += time.perf_counter() - t0
        scores = scores.detach().float().cpu()
        if scores.shape != (len(batch_hist), n_items):
            raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected ({len(batch_hist)}, {n_items})")
        if mask_history:
            rows, cols = history_mask_index(batch_hist)
            hit = scores.new_zeros(scores.shape, dtype=torch.bool)
            hit[rows, cols] = True
            in_history += int(hit.gather(1, batch_tgt.view(-1, 1)).sum())
            scores = scores.masked_fill(hit, float("-inf"))
        all_ranks[start : start + len(batch_hist)] = ranks_from_scores(scores, batch_tgt).numpy()
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :topk]
        all_topk[start : start + len(batch_hist)] = order.numpy()
    return RankingResult(
        metrics=ranking_metrics(all_ranks, ks),
        ranks=all_ranks,
        topk=all_topk,
        n_target_in_history=in_history,
        protocol={"ranking": "full", "mask_history": bool(mask_history), "n_items": int(n_items)},
        score_seconds=score_seconds,
    )
