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
from llmrecbench.metrics.ranking import topk_stable

# A scorer takes a batch of item-id histories (0-based ids, chronological) and returns
# float scores of shape [len(batch), n_items]; higher means more likely next.
ScoreFn = Callable[[Sequence[np.ndarray]], torch.Tensor]


LATENCY_SCOPE = "input histories -> ranked item lists (scoring or decoding, history masking, ranking, top-k)"


@dataclass
class Latency:
    """One latency protocol for every row (RecBench's averaged inference time per sample).

    ``ms_per_user``: wall time of the whole per-batch step, input histories to ranked lists
    (:data:`LATENCY_SCOPE`), over all test users at ``batch_size``, after one untimed warm-up
    batch through the same step, CUDA synchronised; divided by the users. ``ms_per_user_batch1``:
    the same step one user at a time over the first ``n_batch1`` users (after the warm-up).
    """

    batch_size: int
    device: str
    ms_per_user: float
    ms_per_user_batch1: float | None = None
    n_batch1: int = 0

    def record(self, method: str) -> dict:
        """The ``timing.json`` fields (``latency_ms_per_user`` is what tables and plots read)."""
        return {
            "latency_ms_per_user": self.ms_per_user,
            "latency_ms_per_user_batch1": self.ms_per_user_batch1,
            "batch_size": int(self.batch_size),
            "n_users_batch1": int(self.n_batch1),
            "device": self.device,
            "scope": LATENCY_SCOPE,
            "method": method,
        }

    def protocol(self) -> dict:
        """What the cell's protocol records (the measurement's conditions, not its value)."""
        return {"latency_batch_size": int(self.batch_size), "latency_device": self.device}


def _synchronise(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_step(step: Callable[[slice], object], n: int, batch_size: int, device: str, batch1_users: int,
              batch1_rows: Sequence[int] | None = None) -> tuple[list, Latency]:
    """Run ``step(rows)`` over ``n`` users in batches and time it by the :class:`Latency` protocol.
    Returns the per-batch outputs (in order) and the latency. The batch-1 pass runs rows
    ``batch1_rows[:batch1_users]`` (default: the first ``batch1_users``)."""
    outputs: list = []
    if n == 0:
        return outputs, Latency(batch_size, device, 0.0)
    step(slice(0, min(batch_size, n)))  # warm-up: the whole step once, untimed
    _synchronise(device)
    seconds = 0.0
    for start in range(0, n, batch_size):
        t0 = time.perf_counter()
        outputs.append(step(slice(start, min(start + batch_size, n))))
        _synchronise(device)
        seconds += time.perf_counter() - t0
    one = min(int(batch1_users), n)
    batch1 = None
    if one:
        t0 = time.perf_counter()
        for u in (range(one) if batch1_rows is None else batch1_rows[:one]):
            step(slice(int(u), int(u) + 1))
        _synchronise(device)
        batch1 = 1000.0 * (time.perf_counter() - t0) / one
    return outputs, Latency(batch_size, device, 1000.0 * seconds / n, batch1, one)


def run_batches(step: Callable[[slice], object], n: int, batch_size: int, timed: bool, device: str,
                batch1_users: int, batch1_rows: Sequence[int] | None = None) -> tuple[list, Latency | None]:
    """``step`` over ``n`` users in batches: timed by :func:`time_step`, or untimed (latency None)."""
    if timed:
        return time_step(step, n, batch_size, device, batch1_users, batch1_rows)
    return [step(slice(s, min(s + batch_size, n))) for s in range(0, n, batch_size)], None


@dataclass
class RankingResult:
    """Metrics plus the raw ranks and top-k lists they were computed from."""

    metrics: dict[str, float]
    ranks: np.ndarray  # [U] 1-based rank of the target
    topk: np.ndarray  # [U, k] item ids, best first
    n_target_in_history: int = 0
    protocol: dict = field(default_factory=dict)
    latency: Latency | None = None  # None when not timed (validation)
    # generated lists only: entries that decode to no item, and all entries the decoder returned
    n_invalid: int = 0
    n_generated: int = 0
    n_users_without_item: int = 0  # users whose whole list holds no item (the N/A of LLM cells)

    @property
    def score_seconds(self) -> float:
        return 0.0 if self.latency is None else self.latency.ms_per_user * len(self.ranks) / 1000.0


def history_mask_index(histories: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column indices of every (user, history item) pair, for one scatter."""
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    rows = np.repeat(np.arange(len(histories)), lengths)
    cols = np.concatenate(histories) if len(histories) else np.empty(0, dtype=np.int64)
    return torch.from_numpy(rows), torch.from_numpy(cols.astype(np.int64))


RANK_CHUNK_ROWS = 128  # 128 x 12,101 float32 = 6 MB: the copy and its bool masks fit the L3 cache


def rank_batch(scores: torch.Tensor, histories: Sequence[np.ndarray], targets: np.ndarray, mask_history: bool,
               topk: int) -> tuple[np.ndarray, np.ndarray | None, int]:
    """The ranking part of full-ranking evaluation for one batch: (target ranks, top-k lists or
    None, number of targets that are history items). With ``mask_history``, -inf is written into a
    copy of the scores at the (user, history item) pairs (no ``[B, N]`` mask is built). On the CPU
    rows go in chunks of ``RANK_CHUNK_ROWS`` so that the copy and the passes over it stay in cache
    (1.2x faster on Beauty's batches; same ranks and lists)."""
    targets = np.asarray(targets, dtype=np.int64)
    if scores.device.type == "cpu" and scores.shape[0] > RANK_CHUNK_ROWS:
        parts = [rank_batch(scores[i : i + RANK_CHUNK_ROWS], histories[i : i + RANK_CHUNK_ROWS],
                            targets[i : i + RANK_CHUNK_ROWS], mask_history, topk)
                 for i in range(0, scores.shape[0], RANK_CHUNK_ROWS)]
        lists = np.concatenate([p[1] for p in parts]) if topk else None
        return np.concatenate([p[0] for p in parts]), lists, sum(p[2] for p in parts)
    in_history = 0
    if mask_history:
        scores = scores.to(torch.float32, copy=True)
        r, c = history_mask_index(histories)
        rn, cn = r.numpy(), c.numpy()
        in_history = int(np.unique(rn[cn == targets[rn]]).size)
        scores.index_put_((r.to(scores.device), c.to(scores.device)), torch.tensor(float("-inf"), device=scores.device))
    else:
        scores = scores.float()
    ranks = ranks_from_scores(scores, torch.from_numpy(targets)).cpu().numpy()
    lists = topk_stable(scores, topk).cpu().numpy() if topk else None
    return ranks, lists, in_history


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
    batch1_users: int = 0,
    device: str = "cpu",
    users: np.ndarray | None = None,
) -> RankingResult:
    """Rank each target among all ``n_items`` items and compute HR@k, NDCG@k and MRR.

    With ``mask_history`` every item in the user's input history gets score ``-inf`` before
    ranking (RecBole / S3-Rec full-sort protocol); a target that is itself in the history then
    ranks behind every unseen item, and how often that happens is reported. ``topk=0`` stores no
    lists (validation during training needs only the ranks). ``warmup`` (test cells) times the
    whole step by the :class:`Latency` protocol, on ``device`` where the model runs, with
    ``batch1_users`` users also one at a time; without it nothing is timed. With ``users`` (one id
    per history) the scorer is called as ``score_fn(histories, users=ids)`` (``SequentialRecommender.score``: user-aware models read them).

    Users are scored in order of history length (stable), so that a batch holds histories of
    similar length and models that trim left padding to the batch's longest history skip most of
    it (SASRec's full test evaluation on Beauty: 4.7 s -> 1.8 s); a user's scores do not depend
    on who shares the batch (up to float rounding), and ranks and lists come back in the input
    order. The batch-1 pass times the first ``batch1_users`` users of the input order.
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories) != targets.shape[0]:
        raise ValueError("one target per history is required")
    if users is not None and len(users) != len(histories):
        raise ValueError("one user id per history is required")
    lengths = np.fromiter((len(h) for h in histories), dtype=np.int64, count=len(histories))
    order = np.argsort(lengths, kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(order.shape[0])

    def step(rows: slice):
        idx = order[rows]
        batch_hist = [histories[i] for i in idx]
        scores = (score_fn(batch_hist) if users is None else score_fn(batch_hist, users=np.asarray(users)[idx])).detach()
        if scores.shape != (len(batch_hist), n_items):
            raise ValueError(f"scorer returned shape {tuple(scores.shape)}, expected ({len(batch_hist)}, {n_items})")
        return rank_batch(scores, batch_hist, targets[idx], mask_history, topk)

    outputs, latency = run_batches(step, targets.shape[0], batch_size, warmup, device, batch1_users, position)
    all_ranks = np.concatenate([o[0] for o in outputs])[position] if outputs else np.empty(0, dtype=np.int64)
    all_topk = (np.concatenate([o[1] for o in outputs])[position] if outputs and topk
                else np.empty((targets.shape[0], topk), dtype=np.int64))
    return RankingResult(
        metrics=ranking_metrics(all_ranks, ks),
        ranks=all_ranks,
        topk=all_topk,
        n_target_in_history=sum(o[2] for o in outputs),
        protocol={"ranking": "full", "mask_history": bool(mask_history), "n_items": int(n_items),
                  "batch_order": "history_length"},
        latency=latency,
    )


# A generator takes a batch of histories (and ``exclude=``: per user the items it must not
# return, or None) and returns [len(batch), W] int64 item ids, best first; negative entries are
# not items (-1: an invalid generated sequence, -2: an empty slot).
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
    warmup: bool = False,
    batch1_users: int = 0,
    device: str = "cpu",
    users: np.ndarray | None = None,
) -> RankingResult:
    """HR@k, NDCG@k and MRR of ranked lists from a generative model, by the same metric functions.

    With ``mask_history`` the generator is asked to exclude the user's history items while it
    decodes (``exclude=``), so the list is cut to its width *after* masking, as a full-ranking row
    masks and then takes its top k; any history item that still comes back is removed. The rank
    of a target is its position in that list; a target not in the list gets rank ``inf``. An
    invalid entry (a generated code sequence that is no item) keeps its position and counts as a
    miss. ``n_invalid / n_generated`` is the invalid rate over every entry the generator returned.
    The stored top-k lists hold -1 for positions without an item. ``warmup`` times the step by the
    :class:`Latency` protocol (``batch_size`` should then be the decoder's real batch). With
    ``users`` (one id per history) the generator is also called with ``users=`` (a user-aware
    model reads them).
    """
    targets = np.asarray(targets, dtype=np.int64)
    if len(histories) != targets.shape[0]:
        raise ValueError("one target per history is required")
    if users is not None and len(users) != len(histories):
        raise ValueError("one user id per history is required")

    def step(rows: slice):
        batch_hist = histories[rows]
        batch_tgt = targets[rows]
        who = {} if users is None else {"users": np.asarray(users)[rows]}
        lists = np.asarray(generate_fn(batch_hist, exclude=batch_hist if mask_history else None, **who), dtype=np.int64)
        if lists.ndim != 2 or lists.shape[0] != len(batch_hist):
            raise ValueError(f"generator returned shape {lists.shape}, expected ({len(batch_hist)}, W)")
        if (lists >= n_items).any() or (lists < NO_ITEM).any():
            raise ValueError(f"generator returned ids outside [0, {n_items}) and {{-1, -2}}")
        counts = (int((lists == INVALID_ITEM).sum()), int((lists != NO_ITEM).sum()), int((lists < 0).all(axis=1).sum()))
        in_history = 0
        if mask_history:
            in_history = sum(int(t in set(h.tolist())) for h, t in zip(batch_hist, batch_tgt))
            lists = drop_history_items(lists, batch_hist)
        ranks = ranks_from_lists(lists, batch_tgt)
        width = min(topk, lists.shape[1])
        shown = np.full((len(batch_hist), topk), INVALID_ITEM, dtype=np.int64)
        shown[:, :width] = np.where(lists[:, :width] >= 0, lists[:, :width], INVALID_ITEM)
        return ranks, shown, in_history, counts

    outputs, latency = run_batches(step, targets.shape[0], batch_size, warmup, device, batch1_users)
    all_ranks = np.concatenate([o[0] for o in outputs]) if outputs else np.empty(0, dtype=np.float64)
    all_topk = np.concatenate([o[1] for o in outputs]) if outputs else np.full((0, topk), INVALID_ITEM, dtype=np.int64)
    n_invalid, n_generated, n_without = (sum(o[3][j] for o in outputs) for j in range(3))
    return RankingResult(
        metrics=ranking_metrics(all_ranks.astype(np.float64), ks),
        ranks=all_ranks.astype(np.float64),
        topk=all_topk,
        n_target_in_history=sum(o[2] for o in outputs),
        protocol={"ranking": "generated_list", "mask_history": bool(mask_history), "n_items": int(n_items),
                  "history_masking": "history paths masked during decoding, then the list is cut" if mask_history else "none"},
        latency=latency,
        n_invalid=n_invalid,
        n_generated=n_generated,
        n_users_without_item=n_without,
    )
