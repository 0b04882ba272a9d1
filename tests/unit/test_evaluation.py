"""Full-ranking evaluator: masking, ranks and top-k lists agree with a per-user reference."""

import numpy as np
import torch

from llmrecbench.evaluation import evaluate_full_ranking
from llmrecbench.metrics import ranking_metrics


def _reference(scores, histories, targets, mask):
    ranks = []
    for s, h, t in zip(scores, histories, targets):
        s = s.copy()
        if mask:
            s[list(h)] = -np.inf
        order = sorted(range(len(s)), key=lambda j: (-s[j], j))
        ranks.append(order.index(t) + 1)
    return np.array(ranks)


def test_matches_per_user_reference():
    rng = np.random.default_rng(1)
    n_users, n_items = 37, 23
    table = rng.standard_normal((n_users, n_items)).astype(np.float32)
    table[:, 5] = table[:, 6]  # ties
    histories = [rng.choice(n_items, size=rng.integers(1, 6), replace=False) for _ in range(n_users)]
    targets = rng.integers(0, n_items, size=n_users)
    row_of = {id(h): i for i, h in enumerate(histories)}

    def score(batch):
        return torch.from_numpy(table[[row_of[id(h)] for h in batch]])

    for mask in (True, False):
        res = evaluate_full_ranking(score, histories, targets, n_items, mask_history=mask, batch_size=8, topk=5)
        ref = _reference(table, histories, targets, mask)
        assert res.ranks.tolist() == ref.tolist()
        assert res.metrics == ranking_metrics(ref)
        in_hist = sum(t in h for h, t in zip(histories, targets))
        assert res.n_target_in_history == (in_hist if mask else 0)
        for i in range(n_users):
            if res.ranks[i] <= 5:
                assert res.topk[i, res.ranks[i] - 1] == targets[i]


def test_batches_larger_than_the_ranking_chunk_match_the_reference():
    """A batch of 300 rows is ranked in chunks of RANK_CHUNK_ROWS (128, 128, 44): ranks, top-k lists
    and the in-history count are those of the per-user reference."""
    from llmrecbench.evaluation import RANK_CHUNK_ROWS

    rng = np.random.default_rng(2)
    n_users, n_items = 300, 40
    assert n_users > 2 * RANK_CHUNK_ROWS
    table = rng.integers(0, 6, size=(n_users, n_items)).astype(np.float32)  # many ties
    histories = [rng.choice(n_items, size=rng.integers(1, 8), replace=False) for _ in range(n_users)]
    targets = rng.integers(0, n_items, size=n_users)
    row_of = {id(h): i for i, h in enumerate(histories)}
    res = evaluate_full_ranking(lambda batch: torch.from_numpy(table[[row_of[id(h)] for h in batch]]), histories, targets,
                                n_items, batch_size=n_users, topk=5, warmup=False)
    assert res.ranks.tolist() == _reference(table, histories, targets, True).tolist()
    for i in range(n_users):
        s = table[i].copy()
        s[list(histories[i])] = -np.inf
        assert res.topk[i].tolist() == sorted(range(n_items), key=lambda j: (-s[j], j))[:5]
    assert res.n_target_in_history == sum(t in h for h, t in zip(histories, targets))


def test_latency_protocol_warms_up_times_every_batch_and_batch_one():
    """time_step: one untimed warm-up batch through the whole step, every batch timed once (the
    outputs returned in order), then the first users one at a time; batch and device recorded."""
    from llmrecbench.evaluation import time_step

    calls = []

    def step(rows):
        calls.append((rows.start, rows.stop))
        return rows.stop - rows.start

    outputs, latency = time_step(step, 10, 4, "cpu", batch1_users=2)
    assert calls == [(0, 4), (0, 4), (4, 8), (8, 10), (0, 1), (1, 2)]
    assert outputs == [4, 4, 2]
    assert latency.batch_size == 4 and latency.device == "cpu" and latency.n_batch1 == 2
    assert latency.ms_per_user >= 0 and latency.ms_per_user_batch1 >= 0
    record = latency.record("m")
    assert record["latency_ms_per_user"] == latency.ms_per_user and record["scope"].startswith("input histories")
    assert latency.protocol() == {"latency_batch_size": 4, "latency_device": "cpu"}
