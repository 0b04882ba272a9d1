"""Candidate ranks and top-k lists: hand-computed ranks, seeded tie-break, consistency with the metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from llmrecbench.metrics import (
    candidate_metrics,
    candidate_ranks,
    candidate_topk,
    ranking_metrics,
    target_columns,
    tie_keys,
)


def test_tie_keys_are_seeded_row_permutations():
    keys = tie_keys((50, 7), seed=3)
    assert keys.shape == (50, 7) and keys.dtype == np.int64
    assert (np.sort(keys, axis=1) == np.arange(7)).all()
    assert np.array_equal(keys, tie_keys((50, 7), seed=3))
    assert not np.array_equal(keys, tie_keys((50, 7), seed=4))
    assert len({tuple(r) for r in keys.tolist()}) > 40  # rows differ


def test_hand_computed_ranks_without_ties():
    scores = np.array([[0.1, 0.9, 0.5, 0.3], [2.0, -1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 5.0]])
    cands = np.array([[10, 11, 12, 13], [7, 3, 9, 1], [4, 5, 6, 8]])
    targets = np.array([12, 7, 8])  # scores 0.5 (one above), 2.0 (top), 5.0 (top)
    assert candidate_ranks(scores, cands, targets, seed=0).tolist() == [2, 1, 1]


def test_hand_computed_ranks_with_ties_follow_the_keys():
    """scores (0.5, 0.9, 0.5, 0.5, 0.1), target at column 2: one candidate above, and the
    columns 0 and 3 tie with it: rank = 2 + [key_0 < key_2] + [key_3 < key_2]."""
    scores = np.array([[0.5, 0.9, 0.5, 0.5, 0.1]])
    cands = np.array([[20, 21, 22, 23, 24]])
    for seed in range(20):
        k = tie_keys((1, 5), seed)[0]
        expected = 2 + int(k[0] < k[2]) + int(k[3] < k[2])
        assert candidate_ranks(scores, cands, np.array([22]), seed).tolist() == [expected]
    got = {int(candidate_ranks(scores, cands, np.array([22]), s)[0]) for s in range(20)}
    assert got == {2, 3, 4}  # the tie-break depends on the seed, not on the item ids


def test_ties_are_broken_at_random_not_by_item_id():
    """All scores equal, the target the lowest id of every list: id order ranks it first in every
    row; the seeded keys give a uniform rank over 1..C (HR@10 ~ 0.1, mean rank ~ 50.5)."""
    rng = np.random.default_rng(0)
    n, c = 20_000, 100
    cands = np.stack([rng.choice(10_000, c, replace=False) for _ in range(200)] * (n // 200))
    targets = cands.min(axis=1)
    scores = np.zeros((n, c))
    by_id = 1 + (cands < targets[:, None]).sum(axis=1)  # the rank an item-id tie-break would give
    assert (by_id == 1).all()
    ranks = candidate_ranks(scores, cands, targets, seed=5)
    assert abs(ranks.mean() - 50.5) < 1.0
    assert abs(ranking_metrics(ranks, (10,))["HR@10"] - 0.1) < 0.01
    assert np.array_equal(ranks, candidate_ranks(scores, cands, targets, seed=5))
    assert not np.array_equal(ranks, candidate_ranks(scores, cands, targets, seed=6))


def test_topk_is_the_order_of_the_ranks():
    rng = np.random.default_rng(1)
    n, c = 3000, 100
    cands = np.stack([rng.permutation(500)[:c] for _ in range(n)])
    targets = cands[np.arange(n), rng.integers(0, c, n)]
    scores = rng.integers(0, 4, (n, c)).astype(np.float32)  # heavy ties
    ranks = candidate_ranks(scores, cands, targets, seed=9)
    full = candidate_topk(scores, cands, seed=9, k=c)
    pos = (full == targets[:, None]).argmax(axis=1) + 1
    assert np.array_equal(pos, ranks)
    metrics = ranking_metrics(ranks, (1, 5, 10))
    for k in (1, 5, 10):
        top = candidate_topk(scores, cands, seed=9, k=k)
        assert top.shape == (n, k)
        assert np.array_equal(top, full[:, :k])
        hr = float((top == targets[:, None]).any(axis=1).mean())
        assert hr == metrics[f"HR@{k}"]
    # scores never increase along a list
    col = {int(i): j for j, i in enumerate(cands[0])}
    assert all(scores[0, col[int(a)]] >= scores[0, col[int(b)]] for a, b in zip(full[0][:-1], full[0][1:]))


def test_metrics_from_hand_ranks():
    scores = np.array([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    cands = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 3]])
    m = candidate_metrics(scores, cands, np.array([1, 2, 3]), seed=0, ks=(1, 2))
    assert m["HR@1"] == pytest.approx(1 / 3) and m["HR@2"] == pytest.approx(2 / 3)
    assert m["NDCG@2"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    assert m["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)


def test_torch_scores_and_float32_are_accepted():
    scores = torch.tensor([[0.25, 0.75, 0.5]], dtype=torch.float32)
    cands = np.array([[5, 6, 7]])
    assert candidate_ranks(scores, cands, np.array([7]), seed=0).tolist() == [2]
    assert candidate_topk(scores, torch.from_numpy(cands), seed=0, k=2).tolist() == [[6, 7]]


def test_errors():
    scores = np.array([[0.1, np.nan, 0.3]])
    cands = np.array([[1, 2, 3]])
    with pytest.raises(ValueError, match="NaN score"):
        candidate_ranks(scores, cands, np.array([1]), seed=0)
    with pytest.raises(ValueError, match="NaN score"):
        candidate_topk(scores, cands, seed=0, k=1)
    ok = np.array([[0.1, 0.2, 0.3]])
    with pytest.raises(ValueError, match="occurs 0 times"):
        candidate_ranks(ok, cands, np.array([9]), seed=0)
    with pytest.raises(ValueError, match="occurs 2 times"):
        target_columns(np.array([[1, 1, 3]]), np.array([1]))
    with pytest.raises(ValueError, match=r"must both be \[U, C\]"):
        candidate_ranks(ok, np.array([[1, 2]]), np.array([1]), seed=0)
    with pytest.raises(ValueError, match="k must be in 1..3"):
        candidate_topk(ok, cands, seed=0, k=4)
