"""CTR task: labelled pairs (labels, held-out pairs, user-disjoint split, no leakage), AUC / GAUC /
logloss against hand-computed values, the deep CTR models learning a planted signal, bad input."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from llmrecbench.data.ctr_pairs import build_ctr_pairs, load_ctr_part
from llmrecbench.errors import ConfigError, InputError
from llmrecbench.metrics.ctr import ctr_metrics

OPTIONS = {
    "positive_min_rating": 4, "negative_max_rating": 2, "heldout_positives": 2, "max_heldout_negatives": 10,
    "negatives_per_user": 2, "max_history": 50, "test_user_share": 0.2, "valid_user_share": 0.1, "seed": 7,
}
CTR_CLASSES = ["ctr_dnn", "ctr_deepfm", "ctr_dcn", "ctr_dcnv2", "ctr_autoint", "ctr_pnn", "ctr_gdcn", "ctr_finalmlp", "ctr_masknet"]


def rated(n_users=30, n_items=40, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        items = rng.choice(n_items, size=12, replace=False)
        for t, i in enumerate(items):
            rows.append((u, int(i), t, 1000 + t, float(rng.integers(1, 6))))
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "item_id": pl.Int32, "position": pl.Int32, "timestamp": pl.Int64, "rating": pl.Float32}, orient="row")


def sequences(n_users=50, n_items=60, seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [(u, int(i), t) for u in range(n_users) for t, i in enumerate(rng.choice(n_items, size=6, replace=False))]
    return pl.DataFrame(rows, schema={"user_id": pl.Int32, "item_id": pl.Int32, "position": pl.Int32}, orient="row")


def test_rated_pairs_follow_the_labels_and_hold_out_the_last_clicks():
    inter = rated()
    parts, stats = build_ctr_pairs(inter, 40, OPTIONS, where="interactions.parquet")
    by_user = {u: f for (u,), f in inter.sort("timestamp").group_by("user_id", maintain_order=True)}
    users = {p: set(f["user_id"].to_list()) for p, f in parts.items()}
    assert not users["train"] & users["test"] and not users["valid"] & users["test"] and not users["train"] & users["valid"]
    for frame in parts.values():
        for u, i, label, history in frame.iter_rows():
            rating = dict(zip(by_user[u]["item_id"].to_list(), by_user[u]["rating"].to_list()))[i]
            assert (label == 1 and rating >= 4) or (label == 0 and rating <= 2)
            assert i not in history  # no held-out item in the user's history
            assert all(dict(zip(by_user[u]["item_id"].to_list(), by_user[u]["rating"].to_list()))[h] >= 4 for h in history)
        for (u,), g in frame.group_by("user_id"):
            clicks = [i for i, r in zip(by_user[u]["item_id"].to_list(), by_user[u]["rating"].to_list()) if r >= 4]
            assert set(g.filter(pl.col("label") == 1)["item_id"]) == set(clicks[-2:])
            assert g["history"][0].to_list() == clicks[:-2]
            assert g["label"].n_unique() == 2  # every kept user has both labels
    assert stats["parts"]["test"]["users"] == len(users["test"]) and stats["labels"] == "rating"


def test_positive_only_pairs_sample_never_seen_negatives_reproducibly():
    inter = sequences()
    parts, stats = build_ctr_pairs(inter, 60, OPTIONS, where="x")
    again, _ = build_ctr_pairs(inter, 60, OPTIONS, where="x")
    seqs = {u: f["item_id"].to_list() for (u,), f in inter.group_by("user_id", maintain_order=True)}
    for p, frame in parts.items():
        assert frame.equals(again[p])
        for (u,), g in frame.group_by("user_id"):
            assert g.filter(pl.col("label") == 1)["item_id"].to_list() == seqs[u][-2:]
            negs = g.filter(pl.col("label") == 0)["item_id"].to_list()
            assert len(negs) == 2 and not set(negs) & set(seqs[u])
            assert g["history"][0].to_list() == seqs[u][:-2]
    assert sum(s["users"] for s in stats["parts"].values()) == 50


def test_bad_ctr_input_is_one_clear_line():
    one_label = rated().with_columns(pl.lit(5.0, dtype=pl.Float32).alias("rating"))
    with pytest.raises(InputError, match="no user has both a click") as err:
        build_ctr_pairs(one_label, 40, OPTIONS, where="results/x/data/interactions.parquet")
    assert "\n" not in str(err.value) and "interactions.parquet" in str(err.value)
    for bad in (0, -1):
        with pytest.raises(ConfigError, match="negatives_per_user must be > 0"):
            build_ctr_pairs(sequences(), 60, {**OPTIONS, "negatives_per_user": bad}, where="x")


def test_history_with_unknown_items_is_refused(tmp_path):
    path = tmp_path / "test.parquet"
    pl.DataFrame({"user_id": [0], "item_id": [1], "label": [1], "history": [[2, 99]]},
                 schema={"user_id": pl.Int32, "item_id": pl.Int32, "label": pl.Int8, "history": pl.List(pl.Int32)}).write_parquet(path)
    with pytest.raises(InputError, match="history references unknown item id 99") as err:
        load_ctr_part(path, n_items=10, max_history=5)
    assert str(path) in str(err.value)
    data = load_ctr_part(path, n_items=100, max_history=3)
    assert data.history.tolist() == [[-1, 2, 99]]


def test_ctr_metrics_against_hand_computed_values():
    # user 0: scores 0.9 (1), 0.4 (0), 0.6 (0) -> AUC_0 = 2/2 = 1; user 1: 0.2 (1), 0.5 (0) -> AUC_1 = 0
    # user 2: one label only -> skipped by both GAUC forms
    users = np.array([0, 0, 0, 1, 1, 2])
    labels = np.array([1, 0, 0, 1, 0, 1])
    scores = np.array([0.9, 0.4, 0.6, 0.2, 0.5, 0.7])
    m = ctr_metrics(users, labels, scores)
    # overall: positives {0.9, 0.2, 0.7} vs negatives {0.4, 0.6, 0.5}: 0.9 and 0.7 beat all 3, 0.2 beats none -> 6/9
    assert m["AUC"] == pytest.approx(6 / 9)
    assert m["GAUC (RecBench)"] == pytest.approx((1.0 + 0.0) / 2)
    assert m["GAUC (FuxiCTR)"] == pytest.approx((3 * 1.0 + 2 * 0.0) / 5)
    expected = -np.mean([math.log(0.9), math.log(0.6), math.log(0.4), math.log(0.2), math.log(0.5), math.log(0.7)])
    assert m["logloss"] == pytest.approx(expected)
    assert m["gauc_users"] == 2 and m["gauc_users_skipped"] == 1


def test_user_aucs_equal_sklearn_per_user_loop_with_ties_and_one_label_users():
    """The vectorised Mann-Whitney user AUCs are RecBench's per-group ``roc_auc_score``."""
    from sklearn.metrics import roc_auc_score

    from llmrecbench.metrics.ctr import user_aucs

    rng = np.random.default_rng(0)
    users = rng.integers(0, 300, 5000)
    labels = rng.integers(0, 2, 5000)
    scores = rng.integers(0, 6, 5000) / 5.0  # few distinct values: many ties inside users
    values, counts, skipped = user_aucs(users, labels, scores)
    expected, sizes, alone = [], [], 0
    for u in np.unique(users):
        y, s = labels[users == u], scores[users == u]
        if y.min() == y.max():
            alone += 1
            continue
        expected.append(roc_auc_score(y, s))
        sizes.append(y.size)
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-12)
    assert counts.tolist() == sizes and skipped == alone
    single = user_aucs(np.array([3, 3, 3, 4]), np.array([1, 1, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4]))
    assert single[0].size == 0 and single[2] == 2


# every model over IDs; the four RecBench runs over all three representations also over text and vectors
MODEL_REPRS = [(c, "unique_id") for c in CTR_CLASSES] + [
    (c, r) for c in ("ctr_dnn", "ctr_deepfm", "ctr_dcnv2", "ctr_autoint") for r in ("text", "semantic_embedding")
]


@pytest.mark.parametrize(("cls", "item_repr"), MODEL_REPRS)
def test_ctr_models_learn_a_planted_click_rule_and_round_trip(cls, item_repr, tmp_path):
    """Items 0..19 are 'A', 20..39 'B'; a user clicks items of their history's kind. Every model,
    over every item representation, must rank the held-out pairs far above chance."""
    from llmrecbench.data.ctr_pairs import CTRData
    from llmrecbench.models import create_model
    from llmrecbench.models.ctr.base import CTRModel
    from llmrecbench.monitor import Monitor
    from llmrecbench.training import TrainConfig, fit

    rng = np.random.default_rng(0)
    n_items, n = 40, 3000
    kind = (np.arange(n_items) >= 20).astype(np.int64)

    def make(n):
        user_kind = rng.integers(0, 2, n)
        hist = np.stack([rng.choice(np.flatnonzero(kind == k), 5) for k in user_kind])
        items = rng.integers(0, n_items, n)
        return CTRData(np.arange(n), items, (kind[items] == user_kind).astype(np.float32), hist, n_items)

    train, valid = make(n), make(600)
    extra = {}
    if item_repr == "text":
        extra = {"vocab_size": 4, "title_len": 2}
    elif item_repr == "semantic_embedding":
        extra = {"vector_dim": 8}
    model = create_model(cls, n, n_items, seed=0, item_repr=item_repr, dim=16, **extra)
    if item_repr == "text":  # titles "kind-a x" / "kind-b x": the kind word is the signal
        model.features.set_features(tokens=torch.from_numpy(np.stack([kind + 1, np.full(n_items, 3)], 1)))
    elif item_repr == "semantic_embedding":
        vecs = rng.normal(size=(n_items, 8)).astype(np.float32)
        vecs[:, 0] = np.where(kind == 1, 2.0, -2.0)
        model.features.set_features(vectors=torch.from_numpy(vecs))

    def validate(m):
        from llmrecbench.metrics.ctr import auc

        return {"AUC": auc(valid.labels, m.predict_data(valid).numpy())}

    cfg = TrainConfig(loss="bce", lr=5e-3, batch_size=256, max_epochs=8, patience=8, seed=0)
    log = fit(model, train, cfg, tmp_path / "ckpt", validate=validate, monitor=Monitor("AUC", "max"), progress=False)
    assert log["best_valid"]["AUC"] > 0.9, (cls, item_repr, log["best_valid"])
    model.save(tmp_path / "m.pt")
    again = CTRModel.load(tmp_path / "m.pt")
    assert torch.equal(again.predict_data(valid), model.predict_data(valid))


@pytest.mark.parametrize("item_repr", ["unique_id", "text", "semantic_embedding"])
def test_shared_encoding_equals_per_position_encoding(item_repr):
    """fields() encodes each distinct item of a batch once; e_u and e_i equal the direct formulas."""
    from llmrecbench.models.ctr.features import ItemFeatures

    torch.manual_seed(0)
    feats = ItemFeatures(12, 4, item_repr, vocab_size=6, title_len=3, vector_dim=5)
    feats.set_features(tokens=torch.randint(0, 6, (12, 3)), vectors=torch.randn(12, 5))
    history = torch.tensor([[-1, 3, 3, 7], [-1, -1, -1, -1], [1, 2, 3, 4]])
    items = torch.tensor([3, 11, 0])
    user, item = feats.fields(history, items)
    for row in range(3):
        h = [i for i in history[row].tolist() if i >= 0]
        expected = torch.stack([feats.encode(torch.tensor([i]))[0] for i in h]).mean(0) if h else torch.zeros(4)
        assert torch.allclose(user[row], expected, atol=1e-6)
        assert torch.allclose(item[row], feats.encode(items[row : row + 1])[0], atol=1e-6)
