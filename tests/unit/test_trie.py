"""Semantic-ID trie and (conditional) beam search on toy vocabularies."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from llmrecbench.semantic_ids.trie import ItemTrie, constrained_beam_search, index_state, level_offset_tokens


def _table_logprobs(prefix: tuple[int, ...], vocab: int, seed: int) -> np.ndarray:
    """A fixed random log-softmax row per (seed, prefix): the toy 'decoder'."""
    logits = np.random.default_rng([seed, len(prefix), *prefix]).normal(scale=2.0, size=vocab)
    return logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()


def _step_fn(vocab: int, seed: int = 0):
    """Step function whose state is the per-row query id ([B*W] long): query b uses seed + b."""

    def step(prefixes: torch.Tensor, state: torch.Tensor):
        rows = [
            _table_logprobs(tuple(p), vocab, seed + int(q)) for p, q in zip(prefixes.tolist(), state.tolist())
        ]
        return torch.tensor(np.stack(rows)), state

    return step


def _exhaustive(trie: ItemTrie, vocab: int, seed: int) -> list[tuple[object, float]]:
    scored = []
    for codes, item in trie.items():
        s = sum(_table_logprobs(codes[:t], vocab, seed)[codes[t]] for t in range(len(codes)))
        scored.append((item, float(s)))
    return sorted(scored, key=lambda x: -x[1])


def _random_trie(n: int, depth: int, vocab: int, seed: int) -> ItemTrie:
    rng = np.random.default_rng(seed)
    all_codes = list(itertools.product(range(vocab), repeat=depth))
    pick = rng.choice(len(all_codes), size=n, replace=False)
    codes = [all_codes[i] for i in sorted(pick)]
    return ItemTrie(codes, item_ids=[f"item{i}" for i in range(n)])


# ---- trie ----------------------------------------------------------------------------------------
def test_trie_lookups():
    trie = ItemTrie([(0, 1, 2), (0, 1, 3), (2, 0, 0)], item_ids=["a", "b", "c"])
    assert len(trie) == 3 and trie.depth == 3 and trie.vocab_size == 4
    assert trie.allowed_next(()) == [0, 2]
    assert trie.allowed_next((0,)) == [1]
    assert trie.allowed_next((0, 1)) == [2, 3]
    assert trie.allowed_next((0, 1, 2)) == []  # complete
    assert trie.allowed_next((1,)) == []  # not a prefix
    assert trie.item_of((0, 1, 3)) == "b" and trie.item_of([2, 0, 0]) == "c"
    assert trie.codes_of("a") == (0, 1, 2)
    assert trie.get((0, 1)) is None
    with pytest.raises(KeyError):
        trie.item_of((0, 1, 4))


def test_trie_rejects_bad_input():
    with pytest.raises(ValueError, match="resolve collisions"):
        ItemTrie([(0, 1), (0, 1)])
    with pytest.raises(ValueError):
        ItemTrie([(0, 1), (0, 1, 2)])  # ragged
    with pytest.raises(ValueError):
        ItemTrie([(0, -1)])
    with pytest.raises(ValueError):
        ItemTrie([(0, 1), (1, 1)], item_ids=["x", "x"])


def test_children_table_matches_allowed_next():
    trie = _random_trie(30, 3, 5, seed=1)
    # walk all nodes breadth-first via prefixes
    prefixes = [()]
    for _ in range(trie.depth):
        prefixes += [p + (c,) for p in prefixes if len(p) == len(prefixes[-1]) for c in trie.allowed_next(p)]
    for p in prefixes:
        node = trie._node(p)
        row = trie.children_table(torch.tensor([node, -1]), 5)
        assert sorted(torch.nonzero(row[0] >= 0).flatten().tolist()) == trie.allowed_next(p)
        assert (row[1] == -1).all()


# ---- constrained beam search ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cbs_equals_exhaustive_when_beam_covers_all_items(seed):
    vocab = 4
    trie = _random_trie(12, 3, vocab, seed=seed)
    res = constrained_beam_search(_step_fn(vocab, seed), trie, beam_width=16, num_return=12, init_state=torch.tensor([0]))
    assert len(res) == 1
    got = res[0]
    want = _exhaustive(trie, vocab, seed)
    assert [i for i, _ in got] == [i for i, _ in want]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in want], rtol=0, atol=1e-9)


@pytest.mark.parametrize("beam", [1, 2, 3, 5])
def test_cbs_results_valid_ranked_and_within_beam(beam):
    vocab = 6
    trie = _random_trie(40, 4, vocab, seed=3)
    res = constrained_beam_search(_step_fn(vocab, 7), trie, beam_width=beam, batch_size=3, init_state=torch.arange(3))
    assert len(res) == 3
    for per_query in res:
        assert 1 <= len(per_query) <= beam
        items = [i for i, _ in per_query]
        assert all(i is not None and i in {it for _, it in trie.items()} for i in items)
        assert len(set(items)) == len(items)
        scores = [s for _, s in per_query]
        assert scores == sorted(scores, reverse=True)
        assert all(np.isfinite(scores))


def test_cbs_top1_of_greedy_is_best_prefix_path():
    """Beam width 1 is greedy decoding restricted to the trie."""
    vocab = 5
    trie = _random_trie(20, 3, vocab, seed=4)
    (res,) = constrained_beam_search(_step_fn(vocab, 11), trie, beam_width=1, init_state=torch.tensor([0]))
    prefix: tuple[int, ...] = ()
    for _ in range(trie.depth):
        lp = _table_logprobs(prefix, vocab, 11)
        allowed = trie.allowed_next(prefix)
        prefix = prefix + (max(allowed, key=lambda c: lp[c]),)
    assert res == [(trie.item_of(prefix), pytest.approx(res[0][1]))]


def test_batched_queries_match_single_query_runs():
    vocab = 5
    trie = _random_trie(25, 3, vocab, seed=5)
    batched = constrained_beam_search(_step_fn(vocab, 100), trie, beam_width=4, batch_size=3, init_state=torch.arange(3))
    for b in range(3):
        single = constrained_beam_search(_step_fn(vocab, 100 + b), trie, beam_width=4, init_state=torch.tensor([0]))
        assert batched[b] == single[0]


def test_fewer_valid_items_than_beam():
    trie = ItemTrie([(0, 0), (0, 1), (3, 2)], item_ids=["a", "b", "c"])
    (res,) = constrained_beam_search(_step_fn(4, 0), trie, beam_width=8, init_state=torch.tensor([0]))
    assert sorted(i for i, _ in res) == ["a", "b", "c"]


def test_state_is_reordered_with_the_beams():
    """The state the decoder returned for a row must come back aligned with that row's prefix."""
    vocab = 4
    trie = _random_trie(15, 3, vocab, seed=6)
    seen = []

    def step(prefixes, state):
        if state is not None and prefixes.shape[1] > 0:
            assert torch.equal(state["prefix"], prefixes[:, :-1])
        seen.append(prefixes.shape)
        lp = torch.tensor(np.stack([_table_logprobs(tuple(p), vocab, 0) for p in prefixes.tolist()]))
        return lp, {"prefix": prefixes.clone()}

    constrained_beam_search(step, trie, beam_width=3, batch_size=2)
    assert [s[1] for s in seen] == [0, 1, 2]
    assert all(s[0] == 6 for s in seen)


def test_decoder_vocab_larger_than_codes_is_masked():
    trie = ItemTrie([(0, 1), (1, 1)])

    def step(prefixes, state):
        lp = torch.full((prefixes.shape[0], 10), -10.0)
        lp[:, 9] = 0.0  # the decoder loves a token no item uses
        lp[:, 1] = -1.0
        lp[:, 0] = -5.0
        return lp, state

    (res,) = constrained_beam_search(step, trie, beam_width=4)
    assert res == [(1, pytest.approx(-2.0)), (0, pytest.approx(-6.0))]


def test_unconstrained_can_emit_invalid_sequences():
    trie = ItemTrie([(0, 0), (1, 1)], item_ids=["a", "b"])

    def step(prefixes, state):
        # first level prefers 0, second level prefers 1 whatever came before: (0, 1) is no item
        lp = torch.log_softmax(torch.tensor([[4.0, 1.0]]).expand(prefixes.shape[0], 2), dim=1)
        if prefixes.shape[1] == 1:
            lp = torch.log_softmax(torch.tensor([[1.0, 3.0]]).expand(prefixes.shape[0], 2), dim=1)
        return lp, state

    (free,) = constrained_beam_search(step, trie, beam_width=2, constrained=False, return_codes=True)
    assert free[0][0] is None and free[0][2] == (0, 1)
    (cbs,) = constrained_beam_search(step, trie, beam_width=2, constrained=True)
    assert [i for i, _ in cbs] == ["a", "b"]
    assert all(i is not None for i, _ in cbs)


def test_unconstrained_equals_constrained_when_all_sequences_are_items():
    vocab = 3
    codes = list(itertools.product(range(vocab), repeat=2))
    trie = ItemTrie(codes)
    a = constrained_beam_search(_step_fn(vocab, 9), trie, beam_width=4, init_state=torch.tensor([0]), constrained=False)
    b = constrained_beam_search(_step_fn(vocab, 9), trie, beam_width=4, init_state=torch.tensor([0]))
    assert a == b


def test_argument_checks():
    trie = ItemTrie([(0,), (1,)])
    step = _step_fn(2)
    with pytest.raises(ValueError):
        constrained_beam_search(step, trie, beam_width=0)
    with pytest.raises(ValueError):
        constrained_beam_search(step, trie, beam_width=2, num_return=3, init_state=torch.tensor([0]))

    def bad(prefixes, state):
        return torch.zeros(1, 2), state

    with pytest.raises(ValueError, match="shape"):
        constrained_beam_search(bad, trie, beam_width=2)


def test_helpers():
    lp = torch.arange(12.0).reshape(1, 12)
    assert level_offset_tokens(lp, 2, 4).tolist() == [[8.0, 9.0, 10.0, 11.0]]
    st = {"a": torch.tensor([10, 11, 12]), "b": (torch.tensor([[1], [2], [3]]), "keep"), "c": None}
    out = index_state(st, torch.tensor([2, 0]))
    assert out["a"].tolist() == [12, 10] and out["b"][0].tolist() == [[3], [1]] and out["b"][1] == "keep"
    assert out["c"] is None


def test_index_state_uses_reorder_cache():
    class Cache:
        def __init__(self):
            self.rows = torch.tensor([5, 6, 7])

        def reorder_cache(self, idx):
            self.rows = self.rows[idx]

    c = Cache()
    assert index_state((c, 3), torch.tensor([1, 1]))[0].rows.tolist() == [6, 6]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_excluded_items_are_never_returned_and_cost_no_beam(seed):
    """With a user's history excluded, the search returns the best non-history items: exactly the
    exhaustive ranking without them, as many as asked for (cutting after masking, not before)."""
    vocab = 4
    trie = _random_trie(30, 3, vocab, seed=seed)
    items = [it for _, it in trie.items()]
    excluded = [items[i] for i in np.random.default_rng(seed).choice(len(items), 12, replace=False)]
    want = [(i, s) for i, s in _exhaustive(trie, vocab, seed) if i not in excluded]
    res = constrained_beam_search(_step_fn(vocab, seed), trie, beam_width=30, num_return=18,
                                  init_state=torch.tensor([0]), exclude=[excluded])
    assert [i for i, _ in res[0]] == [i for i, _ in want]
    # a narrow beam still fills num_return with non-history items
    narrow = constrained_beam_search(_step_fn(vocab, seed), trie, beam_width=5, num_return=5,
                                     init_state=torch.tensor([0]), exclude=[excluded])
    assert len(narrow[0]) == 5 and not {i for i, _ in narrow[0]} & set(excluded)


def test_blocked_nodes_block_a_subtree_only_when_all_its_items_are_excluded():
    trie = ItemTrie([(0, 0), (0, 1), (1, 0)], item_ids=[10, 11, 12])
    node_0 = trie._node((0,))
    blocked = trie.blocked_nodes([[10], [10, 11], [99]])
    assert blocked[0, trie._node((0, 0))] and not blocked[0, node_0]
    assert blocked[1, node_0] and not blocked[1, trie._node((1,))]
    assert not blocked[2].any()
