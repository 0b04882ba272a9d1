"""Direct recommenders (BPR-MF, BPR-MLP, SimpleX): contract, persistence, sampling, and learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrecbench.data.candidates import sample_candidates
from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.metrics import candidate_metrics
from llmrecbench.models.direct import BPRMF, BPRMLP, DIRECT_MODELS, CandidateRanker, SimpleX
from llmrecbench.models.registry import get_model_class, model_family

CLASSES = {"bpr_mf": BPRMF, "bpr_mlp": BPRMLP, "simplex": SimpleX}
SMALL = {
    "bpr_mf": {"dim": 16, "reg": 1e-4},
    "bpr_mlp": {"dim": 16, "hidden": [32, 16], "dropout": 0.1},
    "simplex": {"dim": 16, "max_history": 6, "n_negatives": 32, "neg_weight": 10.0, "margin": 0.5, "dropout": 0.1},
}
# (loss, lr, epochs) of the plain Adam loop below
TRAIN = {"bpr_mf": ("bpr", 0.05, 10), "bpr_mlp": ("bpr", 0.02, 12), "simplex": ("ccl", 0.01, 6)}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny batches: one thread is several times faster than two on a shared 2-core machine."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _clustered(n_users: int = 400, n_clusters: int = 8, per_cluster: int = 40, length: int = 10, seed: int = 0,
               user_ids: np.ndarray | None = None) -> LeaveOneOutSequences:
    """Each user lives in one item cluster and interacts with ``length`` distinct items of it."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        c = rng.integers(n_clusters)
        seqs.append(c * per_cluster + rng.choice(per_cluster, length, replace=False))
    return LeaveOneOutSequences(
        user_ids=np.arange(n_users, dtype=np.int64) if user_ids is None else user_ids,
        train=[s[:-2] for s in seqs],
        valid_target=np.array([s[-2] for s in seqs], dtype=np.int64),
        test_target=np.array([s[-1] for s in seqs], dtype=np.int64),
        n_items=n_clusters * per_cluster,
    )


def _model(name: str, data: LeaveOneOutSequences, seed: int = 0, n_users: int | None = None) -> CandidateRanker:
    torch.manual_seed(seed)
    return CLASSES[name](n_users or int(data.user_ids.max()) + 1, data.n_items, **SMALL[name])


def _train(model: CandidateRanker, data: LeaveOneOutSequences, loss: str, lr: float, epochs: int, batch_size: int = 256,
           seed: int = 0) -> list[float]:
    examples = model.training_examples(data)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = examples["user"].shape[0]
    losses = []
    model.train()
    for _ in range(epochs):
        total = 0.0
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            batch = {k: v[idx] for k, v in examples.items()}
            value = model.training_loss(batch, loss, gen)
            opt.zero_grad()
            value.backward()
            opt.step()
            total += float(value.detach()) * len(idx)
        losses.append(total / n)
    return losses


def _test_metrics(model: CandidateRanker, data: LeaveOneOutSequences, cands) -> dict[str, float]:
    lists = np.asarray(cands["candidates"].to_list(), dtype=np.int64)
    scores = model.score_candidates(data.user_ids, lists)
    return candidate_metrics(scores, lists, data.test_target, seed=0, ks=(1, 5, 10))


def test_registered_as_direct_models():
    assert DIRECT_MODELS == tuple(sorted(CLASSES))
    for name, cls in CLASSES.items():
        assert get_model_class(name) is cls and cls.name == name
        assert cls.family == "direct" and model_family(name) == "direct" and cls.trainable
    assert BPRMF.losses == ("bpr",) and BPRMLP.losses == ("bpr",) and SimpleX.losses == ("ccl",)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_learns_clusters_beats_random(name):
    """HR@10 over 100 candidates: random ~0.10; the target's cluster holds ~10 of the 99 negatives,
    so a model that learned the clusters ranks it in the top 10 most of the time."""
    data = _clustered()
    cands = sample_candidates(data, "test", 99, seed=1)
    model = _model(name, data)
    before = _test_metrics(model, data, cands)
    loss, lr, epochs = TRAIN[name]
    losses = _train(model, data, loss, lr, epochs)
    after = _test_metrics(model, data, cands)
    assert losses[-1] < losses[0]
    assert after["HR@10"] > 0.4 and after["HR@10"] > before["HR@10"] + 0.2, (before, after)
    assert after["NDCG@10"] > 0.2


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_save_load_round_trip(name, tmp_path):
    data = _clustered(n_users=60)
    model = _model(name, data, seed=3)
    loss, lr, _ = TRAIN[name]
    _train(model, data, loss, lr, epochs=2)
    users = data.user_ids[:7]
    lists = np.asarray(sample_candidates(data, "test", 99)["candidates"].to_list())[:7]
    path = tmp_path / f"{name}.pt"
    model.save(path)
    for loaded in (CandidateRanker.load(path), CLASSES[name].load(path)):
        assert type(loaded) is type(model) and loaded.hparams == model.hparams
        assert (loaded.n_users, loaded.n_items) == (model.n_users, model.n_items)
        assert not loaded.training
        assert torch.equal(loaded.score_candidates(users, lists), model.score_candidates(users, lists))
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"name", "family", "n_users", "n_items", "hparams", "state_dict"}
    assert payload["family"] == "direct"
    other = next(c for n, c in CLASSES.items() if n != name)
    with pytest.raises(ConfigError, match=f"holds a '{name}' model"):
        other.load(path)


def test_simplex_history_is_saved_and_keyed_by_user_id(tmp_path):
    ids = np.arange(30, dtype=np.int64)[::-1] * 2 + 1  # ids 59, 57, ..., 1: not the rows
    data = _clustered(n_users=30, user_ids=ids)
    model = _model("simplex", data, n_users=60)
    model.training_examples(data)
    for row in (0, 7, 29):
        want = data.train[row][-6:] + 1
        assert model.history[ids[row], : want.size].tolist() == want.tolist()
        assert (model.history[ids[row], want.size :] == 0).all()
    assert (model.history[0] == 0).all()  # id 0 is no user of the split
    model.save(tmp_path / "s.pt")
    assert torch.equal(CandidateRanker.load(tmp_path / "s.pt").history, model.history)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_training_examples_and_negatives(name):
    ids = np.arange(50, dtype=np.int64) + 10
    data = _clustered(n_users=50, user_ids=ids)
    model = _model(name, data)
    ex = model.training_examples(data)
    assert set(ex) == {"user", "pos"} and ex["user"].dtype == torch.int64
    assert ex["user"].tolist() == np.repeat(ids, 8).tolist()
    assert ex["pos"].tolist() == np.concatenate(data.train).tolist()
    # negatives are uniform over the unseen items: never a training item of their user
    gen = torch.Generator().manual_seed(0)
    neg, ok = model.sample_unseen(ex["user"], 64, gen)
    assert neg.shape == (400, 64) and bool(ok.all())
    seen = {(int(u), int(i)) for u, i in zip(ex["user"], ex["pos"])}
    assert not any((int(u), int(j)) in seen for u, row in zip(ex["user"], neg) for j in row)
    # reproducible from the generator
    loss = TRAIN[name][0]
    batch = {k: v[:64] for k, v in ex.items()}
    torch.manual_seed(0)
    a = model.training_loss(batch, loss, torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    b = model.training_loss(batch, loss, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="unknown loss 'ce'"):
        model.training_loss(batch, "ce", gen)


def test_a_user_who_saw_almost_everything_gets_masked_negatives():
    data = LeaveOneOutSequences(
        user_ids=np.array([0, 1]), train=[np.arange(9), np.array([0, 1])], valid_target=np.array([9, 2]),
        test_target=np.array([9, 3]), n_items=10,
    )
    model = BPRMF(2, 10, dim=4)
    model.training_examples(data)
    neg, ok = model.sample_unseen(torch.tensor([0, 1]), 50, torch.Generator().manual_seed(0))
    assert (neg[0][ok[0]] == 9).all() and bool(ok[0].any())  # item 9: the only unseen one
    assert bool(ok[1].all()) and not bool(((neg[1] == 0) | (neg[1] == 1)).any())
    value = model.training_loss({"user": torch.tensor([0, 1]), "pos": torch.tensor([0, 0])}, "bpr", torch.Generator())
    assert torch.isfinite(value)


@pytest.mark.parametrize("name", sorted(CLASSES))
def test_score_candidates_contract(name):
    data = _clustered(n_users=20)
    model = _model(name, data)
    model.training_examples(data)
    model.train()
    lists = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
    scores = model.score_candidates(np.array([0, 5, 19]), lists)
    assert scores.shape == (3, 4) and scores.dtype == torch.float32 and not scores.requires_grad
    assert model.training  # mode restored
    # a user's scores do not depend on the other rows of the batch
    torch.testing.assert_close(model.score_candidates(np.array([5]), lists[1:2])[0], scores[1])
    with pytest.raises(ValueError, match=r"user ids must lie in \[0, 20\)"):
        model.score_candidates(np.array([20]), lists[:1])
    with pytest.raises(ValueError, match="item ids must lie"):
        model.score_candidates(np.array([0]), np.array([[320]]))
    with pytest.raises(ValueError, match=r"candidates must be \[B, C\]"):
        model.score_candidates(np.array([0, 1]), lists[:1])


def test_bad_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="n_users must be >= 1"):
        BPRMF(0, 10)
    data = _clustered(n_users=20)
    with pytest.raises(ConfigError, match="model has 100 items but the data has 320"):
        BPRMF(20, 100).training_examples(data)
    with pytest.raises(ValueError, match="user ids must lie"):
        BPRMF(10, 320).training_examples(data)
    with pytest.raises(RuntimeError, match="call training_examples"):
        BPRMF(20, 320).training_loss({"user": torch.tensor([0]), "pos": torch.tensor([1])}, "bpr", torch.Generator())


def test_simplex_shared_negative_pool_learns_and_masks_seen_items():
    data = _clustered()
    cands = sample_candidates(data, "test", 99, seed=1)
    torch.manual_seed(0)
    model = SimpleX(data.n_users, data.n_items, **dict(SMALL["simplex"], shared_negatives=True, n_negatives=200))
    _train(model, data, "ccl", 0.01, 6)
    assert _test_metrics(model, data, cands)["HR@10"] > 0.4
    # a pool item that is a training item of u contributes nothing to u's negative sum
    model.margin = -1.0  # every unmasked negative is active: term = (w/N) sum_j ok_uj (cos_uj + 1)
    users = torch.tensor([0, 1])
    pos = torch.tensor([int(data.train[0][0]), int(data.train[1][0])])
    gen = torch.Generator().manual_seed(3)
    pool = torch.randint(0, data.n_items, (200,), generator=torch.Generator().manual_seed(3))
    ok = ~model.seen(users.view(-1, 1), pool.view(1, -1))
    assert not bool(ok.all())  # the pool hits some of the users' own items
    model.eval()  # no dropout: the loss is a deterministic function of the pool
    value = model.training_loss({"user": users, "pos": pos}, "ccl", gen)
    with torch.no_grad():
        v = torch.nn.functional.normalize(model.user_vectors(users), dim=-1)
        unit = model.unit_items()
        cos_pos = (v * unit[pos + 1]).sum(-1)
        cos_neg = v @ unit[pool + 1].t()
        expected = ((1 - cos_pos) + ((cos_neg + 1) * ok).sum(-1) * (model.neg_weight / 200)).mean()
    torch.testing.assert_close(value.detach(), expected)


def test_simplex_exclude_positive_drops_the_item_from_its_own_history():
    data = _clustered(n_users=10)
    model = _model("simplex", data)
    model.training_examples(data)
    user, item = torch.tensor([3]), torch.tensor([int(data.train[3][-1])])
    others = data.train[3][-6:][data.train[3][-6:] != item.item()]
    with torch.no_grad():
        mean = model.item_emb(torch.as_tensor(others + 1)).mean(0, keepdim=True)
        expected = model.gamma * model.user_emb(user) + (1 - model.gamma) * model.W(mean)
        torch.testing.assert_close(model.user_vectors(user, exclude=item), expected)
        full = model.item_emb(torch.as_tensor(data.train[3][-6:] + 1)).mean(0, keepdim=True)
        torch.testing.assert_close(model.user_vectors(user), model.gamma * model.user_emb(user) + (1 - model.gamma) * model.W(full))
