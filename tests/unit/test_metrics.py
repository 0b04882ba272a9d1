"""Ranking metrics against hand-computed values and their limits."""

import math

import numpy as np
import pytest
import torch

from llmrecbench.metrics import hit_rate_at_k, mrr, ndcg_at_k, ranking_metrics, ranks_from_scores


def test_hand_computed_values():
    ranks = [1, 3, 11]
    assert hit_rate_at_k(ranks, 1) == pytest.approx(1 / 3)
    assert hit_rate_at_k(ranks, 5) == pytest.approx(2 / 3)
    assert hit_rate_at_k(ranks, 10) == pytest.approx(2 / 3)
    assert hit_rate_at_k(ranks, 20) == pytest.approx(1.0)
    # NDCG@5: (1/log2(2) + 1/log2(4) + 0) / 3 = (1 + 0.5) / 3
    assert ndcg_at_k(ranks, 5) == pytest.approx(0.5)
    # NDCG@20 adds 1/log2(12)
    assert ndcg_at_k(ranks, 20) == pytest.approx((1 + 0.5 + 1 / math.log2(12)) / 3)
    assert mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 11) / 3)


def test_limits():
    perfect = np.ones(50)
    assert ranking_metrics(perfect) == {k: 1.0 for k in ranking_metrics(perfect)}
    hopeless = np.full(50, 10_000)
    m = ranking_metrics(hopeless)
    assert all(v == 0.0 for k, v in m.items() if k != "MRR")
    assert m["MRR"] == pytest.approx(1e-4)
    assert ranking_metrics([np.inf, 1])["NDCG@10"] == pytest.approx(0.5)
    assert hit_rate_at_k([], 10) == 0.0


def test_monotone_in_k():
    ranks = np.random.default_rng(0).integers(1, 100, size=500)
    prev_hr = prev_ndcg = 0.0
    for k in (1, 5, 10, 20, 50):
        hr, nd = hit_rate_at_k(ranks, k), ndcg_at_k(ranks, k)
        assert hr >= prev_hr and nd >= prev_ndcg and nd <= hr
        prev_hr, prev_ndcg = hr, nd


def test_rank_below_one_rejected():
    with pytest.raises(ValueError):
        hit_rate_at_k([0, 1], 5)


def test_ranks_from_scores_ties_by_index():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.1], [1.0, 1.0, 1.0, 1.0]])
    # row 0: target 2 ties with item 0 (lower index wins) and is beaten by item 1 -> rank 3
    # row 1: all tied, target 3 -> rank 4
    ranks = ranks_from_scores(scores, torch.tensor([2, 3]))
    assert ranks.tolist() == [3, 4]
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    assert order[0].tolist().index(2) + 1 == 3


@pytest.mark.parametrize("values", [None, 3, 1])  # continuous scores, few distinct values, all equal
def test_topk_stable_equals_the_stable_full_sort(values):
    """The top-k lists equal the first k of a stable descending sort, ties by lower item id,
    including rows where -inf masking leaves fewer than k finite scores."""
    from llmrecbench.metrics.ranking import topk_stable

    gen = torch.Generator().manual_seed(7)
    scores = torch.rand(64, 500, generator=gen) if values is None else torch.randint(0, values, (64, 500), generator=gen).float()
    scores[0, 5:] = float("-inf")  # only 5 finite items, k = 20
    scores[1, ::2] = float("-inf")
    for k in (1, 20, 499, 500):
        expected = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
        assert torch.equal(topk_stable(scores, k), expected)
    ranks = ranks_from_scores(scores, torch.arange(64))
    full = torch.sort(scores, dim=1, descending=True, stable=True).indices
    assert torch.equal(ranks, (full == torch.arange(64).view(-1, 1)).int().argmax(dim=1) + 1)
