"""Full-ranking evaluation: every user's target is ranked against all items, in batches.

No per-user Python loop touches the scores: a batch of users is scored as one ``[B, N]``
tensor, history items are optionally masked with ``-inf`` by one scatter, and ranks come from
one comparison (:func:`llmrecbench.metrics.ranks_from_scores`).

Generative models (TIGER, SID-SASRec) return a ranked list per user instead of scores over all
items; :func:`evaluate_generated_lists` ranks the target by its position in that list (items not
in the list rank beyond every k: rank ``inf``, 0 on every metric, 0 reciprocal rank) and feeds the
same metric functions.
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
    # generated lists only: entries that decode to no item, and all entries the decoder returned
    n_invalid: int = 0
    n_generated: int = 0
    n_users_without_item: int = 0  # users whose whole list holds no item (the N/A of LLM cells)


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
    warmup: bool = True,
) -> RankingResult:
    """Rank each target among all ``n_items`` items and compute HR@k, NDCG@k and MRR.

    With ``mask_history`` every item in the user's input history gets score ``-inf`` before
    ranking (RecBole / S3-Rec full-sort protocol); a target that is itself in the history then
    ranks behind every unseen item, and how often that happens is reported. ``topk=0`` stores no
    lists and skips their sort (validation during training needs only the ranks); ``warmup``
    scores one batch before the timed loop.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories) != targets.shape[0]:
        raise ValueError("one target per history is required")
    all_ranks = np.empty(targets.shape[0], dtype=np.int64)
    all_topk = np.empty((targets.shape[0], topk), dtype=np.int64)
    in_history = 0
    score_seconds = 0.0
    if warmup and len(histories):
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
        if topk:
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


# A generator takes a batch of histories and returns [len(batch), W] int64 item ids, best first;
# negative entries are not items (-1: an invalid generated sequence, -2: an empty slot).
GenerateFn = Callable[[Sequence[np.ndarray]], np.ndarray]
INVALID_ITEM, NO_ITEM = -1, -2


def drop_history_items(lists: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """Remove each row's history items from its list, keeping order; freed slots at the end get
    :data:`NO_ITEM` (the list-level counterpart of ``mask_history``)."""
    lists = np.asarray(lists, dtype=np.int64)
    rows, cols = history_mask_index(histories)
    hist = np.zeros(lists.shape, dtype=bool)
    if rows.numel():
        # (row, item) pairs of the history matched against (row, list entry) pairs, as one key each
        span = max(int(lists.max(initial=0)), int(cols.max())) + 1
        key_hist = rows.numpy() * span + cols.numpy()
        key_list = np.arange(lists.shape[0])[:, None] * span + np.maximum(lists, 0)
        hist = np.isin(key_list, key_hist) & (lists >= 0)
    keep_order = np.argsort(hist, axis=1, kind="stable")  # kept entries first, in order
    out = np.take_along_axis(lists, keep_order, axis=1)
    out[np.take_along_axis(hist, keep_order, axis=1)] = NO_ITEM
    return out


def ranks_from_lists(lists: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based position of each row's target in its list; ``inf`` where it is not in the list."""
    lists = np.asarray(lists, dtype=np.int64)
    hit = lists == np.asarray(targets, dtype=np.int64)[:, None]
    if hit.shape[1] == 0:  # nobody got a list
        return np.full(hit.shape[0], np.inf)
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1.0, np.inf)


@torch.no_grad()
def evaluate_generated_lists(
    generate_fn: GenerateFn,
    histories: Sequence[np.ndarray],
    targets: np.ndarray,
    n_items: int,
    ks: Sequence[int] = (1, 5, 10, 20),
    mask_history: bool = True,
    batch_size: int = 1024,
    topk: int = 20,
) -> RankingResult:
    """HR@k, NDCG@k and MRR of ranked lists from a generative model, by the same metric functions.

    The rank of a target is its position in the user's list after (with ``mask_history``) the
    history items are removed from it; a target not in the list gets rank ``inf``. An invalid
    entry (a generated code sequence that is no item) keeps its position and counts as a miss.
    ``n_invalid / n_generated`` is the invalid rate over every entry the generator returned.
    The stored top-k lists hold -1 for positions without an item.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories) != targets.shape[0]:
        raise ValueError("one target per history is required")
    all_ranks = np.empty(targets.shape[0], dtype=np.float64)
    all_topk = np.full((targets.shape[0], topk), INVALID_ITEM, dtype=np.int64)
    in_history = n_invalid = n_generated = n_without = 0
    seconds = 0.0
    for start in range(0, targets.shape[0], batch_size):
        batch_hist = histories[start : start + batch_size]
        batch_tgt = targets[start : start + batch_size]
        t0 = time.perf_counter()
        lists = np.asarray(generate_fn(batch_hist), dtype=np.int64)
        seconds += time.perf_counter() - t0
        if lists.ndim != 2 or lists.shape[0] != len(batch_hist):
            raise ValueError(f"generator returned shape {lists.shape}, expected ({len(batch_hist)}, W)")
        if (lists >= n_items).any() or (lists < NO_ITEM).any():
            raise ValueError(f"generator returned ids outside [0, {n_items}) and {{-1, -2}}")
        n_invalid += int((lists == INVALID_ITEM).sum())
        n_generated += int((lists != NO_ITEM).sum())
        n_without += int((lists < 0).all(axis=1).sum())
        if mask_history:
            in_history += sum(int(t in set(h.tolist())) for h, t in zip(batch_hist, batch_tgt))
            lists = drop_history_items(lists, batch_hist)
        all_ranks[start : start + len(batch_hist)] = ranks_from_lists(lists, batch_tgt)
        width = min(topk, lists.shape[1])
        all_topk[start : start + len(batch_hist), :width] = np.where(lists[:, :width] >= 0, lists[:, :width], INVALID_ITEM)
    return RankingResult(
        metrics=ranking_metrics(all_ranks, ks),
        ranks=all_ranks,
        topk=all_topk,
        n_target_in_history=in_history,
        protocol={"ranking": "generated_list", "mask_history": bool(mask_history), "n_items": int(n_items)},
        score_seconds=seconds,
        n_invalid=n_invalid,
        n_generated=n_generated,
        n_users_without_item=n_without,
    )
