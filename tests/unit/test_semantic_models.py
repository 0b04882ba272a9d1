"""Models over semantic representations: sasrec_sbert, sid_sasrec (CBS / unconstrained), tiger.

Tiny synthetic catalogues (40 items, 2 x 4 RQ codes + the collision level) train in seconds.
Checked: constrained decoding returns only real items (and no duplicates), unconstrained decoding
reports what is not an item, beam search with a full-width beam equals exhaustive scoring,
training is deterministic for a seed, save/load gives identical rankings, and the generated-list
evaluator and the seqrec cell use the same metric functions as full ranking.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.evaluation import (
    INVALID_ITEM,
    NO_ITEM,
    drop_history_items,
    evaluate_generated_lists,
    ranks_from_lists,
)
from llmrecbench.metrics import ranking_metrics
from llmrecbench.models import SequentialRecommender, create_model
from llmrecbench.semantic_ids.rqvae import resolve_collisions
from llmrecbench.pipelines.seqrec import evaluate_cell
from llmrecbench.tables.merge import merge_cells
from llmrecbench.training import TrainConfig, fit
from llmrecbench.pipelines.seqrec import validation
from llmrecbench.tasks.seqrec import SeqRec

SEQREC_EVALUATION = {"mask_history": True, "batch_size": 1024}


def seq_fit(model, data, cfg, checkpoint_dir, **kw):
    """The trainer with the seqrec task's validation (valid NDCG@10, full ranking) and monitor."""
    return fit(model, data.train, cfg, checkpoint_dir, validate=validation(data, SEQREC_EVALUATION, cfg.seed), monitor=SeqRec.monitor, **kw)

N_ITEMS = 40
GENERATIVE = ["sid_sasrec", "tiger"]
SMALL = {
    "sid_sasrec": {"max_len": 10, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32, "dropout": 0.1, "attn_dropout": 0.1},
    "tiger": {"max_items": 5, "d_model": 16, "d_ff": 32, "n_layers": 1, "n_decoder_layers": 1, "n_heads": 2, "d_kv": 8, "valid_users": 0},
    "sasrec_sbert": {"max_len": 10, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32, "dropout": 0.1, "attn_dropout": 0.1},
    "fdsa": {"max_len": 10, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32, "dropout": 0.1, "attn_dropout": 0.1},
}
TEXT_MODELS = ["sasrec_sbert", "fdsa"]  # over the items' text vectors
EVALUATION = {"ks": [1, 5, 10, 20], "mask_history": True, "batch_size": 64, "topk": 20, "latency_users": 3}


def _codes() -> np.ndarray:
    """[40, 3] unique semantic IDs: 2 random levels of 4 codes + a collision level (as RQ-VAE gives)."""
    raw = np.random.default_rng(0).integers(0, 4, size=(N_ITEMS, 2))
    codes, _ = resolve_collisions(raw, 4)
    return codes


def _text_vectors() -> np.ndarray:
    v = np.random.default_rng(1).normal(size=(N_ITEMS, 12)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _data(n_users: int = 120) -> LeaveOneOutSequences:
    """Users walk the catalogue (item i is followed by i + 1), from random starts: learnable."""
    rng = np.random.default_rng(2)
    seqs = [(rng.integers(0, N_ITEMS) + np.arange(rng.integers(5, 10))) % N_ITEMS for _ in range(n_users)]
    return LeaveOneOutSequences(
        user_ids=np.arange(n_users),
        train=[s[:-2] for s in seqs],
        valid_target=np.array([s[-2] for s in seqs]),
        test_target=np.array([s[-1] for s in seqs]),
        n_items=N_ITEMS,
    )


def _model(name: str, seed: int = 0) -> SequentialRecommender:
    inputs = {"item_embeddings": _text_vectors()} if name in TEXT_MODELS else {"semantic_codes": _codes()}
    return create_model(name, N_ITEMS, seed=seed, **SMALL[name], **inputs)


def _trained(name: str, tmp_path, seed: int = 0, epochs: int = 4) -> tuple[SequentialRecommender, dict]:
    model = _model(name, seed)
    cfg = TrainConfig(lr=1e-2, batch_size=32, max_epochs=epochs, patience=epochs, seed=seed)
    log = seq_fit(model, _data(), cfg, tmp_path / f"ckpt_{name}_{seed}", progress=False)
    return model, log


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("semantic_models")
    return {name: _trained(name, root) for name in [*GENERATIVE, *TEXT_MODELS]}


# --- generated-list evaluation ---------------------------------------------------------------
def test_ranks_from_lists_positions_and_misses():
    lists = np.array([[3, 1, 2], [5, INVALID_ITEM, 4], [7, 8, NO_ITEM]])
    assert ranks_from_lists(lists, np.array([2, 4, 9])).tolist() == [3.0, 3.0, np.inf]


def test_drop_history_items_keeps_order_and_pads():
    lists = np.array([[4, 1, INVALID_ITEM, 2, 9], [0, 1, 2, 3, 4]])
    out = drop_history_items(lists, [np.array([1, 9]), np.array([7])])
    assert out.tolist() == [[4, INVALID_ITEM, 2, NO_ITEM, NO_ITEM], [0, 1, 2, 3, 4]]


def test_generated_list_metrics_equal_the_metric_functions():
    histories = [np.array([0]), np.array([1]), np.array([2]), np.array([3])]
    targets = np.array([5, 6, 7, 0])
    lists = np.array([[5, 6, 7], [INVALID_ITEM, 6, 1], [1, 2, 8], [4, 5, 6]])  # 1st, 2nd, miss, miss
    result = evaluate_generated_lists(lambda h, exclude=None: lists[: len(h)], histories, targets, 10, ks=(1, 2, 3), topk=3, batch_size=4)
    # user 3's list: history item 1 dropped -> 2 moves up; user 4: target not listed
    assert result.ranks.tolist() == [1.0, 2.0, np.inf, np.inf]
    assert result.metrics == ranking_metrics([1, 2, np.inf, np.inf], (1, 2, 3))
    assert result.n_invalid == 1 and result.n_generated == 12 and result.n_users_without_item == 0
    only_invalid = evaluate_generated_lists(lambda h, exclude=None: np.full((len(h), 2), INVALID_ITEM), histories, targets, 10, ks=(1,))
    assert only_invalid.n_users_without_item == 4 and only_invalid.metrics["HR@1"] == 0.0
    assert result.topk[2].tolist() == [1, 8, INVALID_ITEM]  # 2 was history; freed slot shown as -1


def test_generated_list_rejects_bad_ids():
    with pytest.raises(ValueError, match="outside"):
        evaluate_generated_lists(lambda h, exclude=None: np.array([[12]]), [np.array([0])], np.array([1]), 10)


# --- decoding --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATIVE)
def test_constrained_outputs_are_valid_distinct_items(name, trained):
    model, _ = trained[name]
    histories = _data().histories("test")
    lists = model.recommend(histories, beam_width=20, constrained=True)
    assert lists.shape == (len(histories), 20)
    assert (lists >= 0).all() and (lists < N_ITEMS).all()  # zero invalid items
    assert all(len(set(row)) == len(row) for row in lists.tolist())


@pytest.mark.parametrize("name", GENERATIVE)
def test_history_is_excluded_while_decoding_so_the_list_keeps_its_width(name, trained):
    """Masking before the cut: with the history excluded the list still holds beam_width items,
    none from the history; at full width it is the exhaustive ranking with the history removed."""
    model, _ = trained[name]
    histories = _data().histories("test")
    lists = model.recommend(histories, beam_width=12, exclude=histories)
    assert (lists >= 0).all()
    assert not any(set(row) & set(h.tolist()) for row, h in zip(lists.tolist(), histories))
    # at full width the search is exact: the exhaustive ranking with the history taken out
    full = model.recommend(histories, beam_width=N_ITEMS)
    masked = model.recommend(histories, beam_width=N_ITEMS, exclude=histories)
    for row, ranked, h in zip(masked.tolist(), full.tolist(), histories):
        kept = [i for i in ranked if i not in set(h.tolist())]
        assert row == kept + [NO_ITEM] * (N_ITEMS - len(kept))


@pytest.mark.parametrize("name", GENERATIVE)
def test_unconstrained_outputs_are_items_or_marked_invalid(name, trained):
    model, _ = trained[name]
    lists = model.recommend(_data().histories("test"), beam_width=12, constrained=False)
    assert ((lists == INVALID_ITEM) | ((lists >= 0) & (lists < N_ITEMS))).all()
    untrained = _model(name).recommend(_data().histories("test"), beam_width=12, constrained=False)
    assert (untrained == INVALID_ITEM).any()  # 4 x 4 x 4 code sequences, only 40 are items


@pytest.mark.parametrize("name", GENERATIVE)
def test_full_width_beam_equals_exhaustive_ranking(name, trained):
    """With beam width = catalogue size the beam search is exact: it must rank every item by
    the teacher-forced log-probability of its codes (checks the KV cache / prefix conditioning)."""
    model, _ = trained[name]
    histories = _data().histories("test")[:4]
    lists = model.recommend(histories, beam_width=N_ITEMS, chunk_users=3)
    codes = torch.from_numpy(_codes())
    for hist, ranked in zip(histories, lists):
        if name == "tiger":
            logp = model.sequence_logprob([hist] * N_ITEMS, np.arange(N_ITEMS))
        else:
            with torch.no_grad():
                model.eval()
                h = model.encode(torch.from_numpy(np.asarray(hist[-model.max_len :]) + 1)[None])[:, -1]
                logp = -model.code_nll(h.expand(N_ITEMS, -1), codes)
        exhaustive = torch.sort(logp, descending=True, stable=True).indices.numpy()
        assert ranked.tolist() == exhaustive.tolist()


@pytest.mark.parametrize("name", GENERATIVE)
def test_recommend_does_not_depend_on_chunking(name, trained):
    model, _ = trained[name]
    histories = _data().histories("test")
    assert np.array_equal(model.recommend(histories, chunk_users=7), model.recommend(histories, chunk_users=1000))


# --- training, determinism, persistence ------------------------------------------------------
@pytest.mark.parametrize("name", [*GENERATIVE, *TEXT_MODELS])
def test_training_learns_the_walk(name, trained):
    _, log = trained[name]
    losses = [e["loss"] for e in log["epochs"]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert log["best_valid"]["HR@10"] > 0.5, log["best_valid"]  # random: 10/40


@pytest.mark.parametrize("name", [*GENERATIVE, *TEXT_MODELS])
def test_same_seed_same_model_and_rankings(name, trained, tmp_path):
    model, log = trained[name]
    again, log2 = _trained(name, tmp_path)
    assert [e["loss"] for e in log["epochs"]] == [e["loss"] for e in log2["epochs"]]
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    histories = _data().histories("test")
    if model.generative:
        assert np.array_equal(model.recommend(histories), again.recommend(histories))
    else:
        assert torch.equal(model.score(histories), again.score(histories))


@pytest.mark.parametrize("name", [*GENERATIVE, *TEXT_MODELS])
def test_save_load_gives_identical_rankings(name, trained, tmp_path):
    model, _ = trained[name]
    path = tmp_path / f"{name}.pt"
    model.save(path)
    loaded = SequentialRecommender.load(path)  # needs no codes / embeddings file: they are saved
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    histories = _data().histories("test")
    if model.generative:
        for constrained in (True, False):
            assert np.array_equal(loaded.recommend(histories, constrained=constrained), model.recommend(histories, constrained=constrained))
    else:
        assert torch.equal(loaded.score(histories), model.score(histories))


def test_sid_sasrec_concat_input_and_untied_output(tmp_path):
    """The concatenated-codes input and untied output tables: exact beam search, save/load."""
    model = create_model("sid_sasrec", N_ITEMS, seed=0, semantic_codes=_codes(), **SMALL["sid_sasrec"], item_input="concat", tie_output=False)
    seq_fit(model, _data(), TrainConfig(lr=1e-2, batch_size=32, max_epochs=2, patience=2), tmp_path / "ckpt", progress=False)
    histories = _data().histories("test")
    lists = model.recommend(histories[:2], beam_width=N_ITEMS)
    with torch.no_grad():
        h = model.encode(torch.from_numpy(np.asarray(histories[0][-model.max_len :]) + 1)[None])[:, -1]
        logp = -model.code_nll(h.expand(N_ITEMS, -1), torch.from_numpy(_codes()))
    assert lists[0].tolist() == torch.sort(logp, descending=True, stable=True).indices.tolist()
    model.save(tmp_path / "m.pt")
    assert np.array_equal(SequentialRecommender.load(tmp_path / "m.pt").recommend(histories), model.recommend(histories))
    with pytest.raises(ConfigError, match="item_input"):
        create_model("sid_sasrec", N_ITEMS, semantic_codes=_codes(), item_input="mean")


def test_sasrec_sbert_starts_from_the_projected_text_vectors():
    model = _model("sasrec_sbert")
    table = model.item_table()
    assert torch.equal(table[0], torch.zeros(16))
    torch.testing.assert_close(table[1:], model.text_proj(model.text_vectors))
    # similar texts -> similar initial item vectors (a linear map of the centred text vectors)
    assert model.score([np.array([1, 2])]).shape == (1, N_ITEMS)


def test_fdsa_fuses_an_item_and_a_feature_stream():
    """FDSA's score is <W_o [A_t; F_t] + b_o, e_i>: changing only the text vectors changes it
    (the feature stream is used), and the ID table is the output layer."""
    model = _model("fdsa")
    hist = [np.array([1, 2, 3])]
    base = model.score(hist)
    other = create_model("fdsa", N_ITEMS, seed=0, item_embeddings=-_text_vectors(), **SMALL["fdsa"])
    assert not torch.allclose(base, other.score(hist))
    seq = torch.tensor([[0] * 7 + [2, 3, 4]])
    with torch.no_grad():
        model.eval()
        o = model.fuse(torch.cat([model.items.encode(seq), model.features.encode(seq)], -1))[:, -1]
    torch.testing.assert_close(base, o @ model.items.item_emb.weight[1:].t())


def test_bad_inputs_are_config_errors():
    with pytest.raises(ConfigError, match="semantic_codes must be"):
        create_model("sid_sasrec", N_ITEMS, semantic_codes=_codes()[:5])
    with pytest.raises(ValueError, match="resolve collisions"):
        create_model("tiger", N_ITEMS, semantic_codes=np.zeros((N_ITEMS, 2), dtype=np.int64))
    with pytest.raises(ConfigError, match="item_embeddings must be"):
        create_model("sasrec_sbert", N_ITEMS, item_embeddings=_text_vectors()[:3])
    with pytest.raises(ConfigError, match="token cross-entropy"):
        model = _model("tiger")
        model.training_loss(model.training_examples(_data().train), "bce", torch.Generator())


# --- the seqrec cell -------------------------------------------------------------------------
@pytest.mark.parametrize("constrained", [True, False])
def test_generative_cell_reports_invalid_rate(constrained, trained):
    model, _ = trained["sid_sasrec"]
    data = _data()
    spec = {"class": "sid_sasrec", "item_repr": "semantic_id", "setting": "CBS", "decoding": {"beam_width": 20, "constrained": constrained}}
    cell, topk, timing = evaluate_cell(model, data, dataset="toy", model_name="m", spec=spec, seed=0, evaluation=EVALUATION)
    assert cell["protocol"]["ranking"] == "generated_list" and cell["protocol"]["constrained"] is constrained
    rate = cell["extra_columns"]["invalid_rate"]
    assert 0.0 <= cell["extra_columns"]["na_rate"] <= rate if not constrained else cell["extra_columns"]["na_rate"] == 0.0
    assert rate == cell["n_invalid"] / cell["n_generated"]
    if constrained:
        assert cell["n_invalid"] == 0 and rate == 0.0
    # the stored lists reproduce the metrics (a target outside the list has rank null)
    lists = np.stack(topk["topk_item_ids"].to_list())
    ranks = ranks_from_lists(lists, topk["target_item_id"].to_numpy())
    assert cell["metrics"] == ranking_metrics(ranks, EVALUATION["ks"])
    stored = topk["rank"].to_numpy()
    assert np.array_equal(np.where(np.isnan(stored.astype(float)), np.inf, stored), ranks)
    assert "beam search" in timing["method"]
    # one latency protocol: the whole step, at the decoder's real batch, also at batch 1
    assert timing["device"] == "cpu" and timing["n_users_batch1"] == 3 and timing["latency_ms_per_user_batch1"] > 0
    assert cell["protocol"]["latency_batch_size"] == timing["batch_size"] == min(64, model.decode_chunk)


def test_table_merges_cells_with_and_without_invalid_rate():
    base = {"dataset": "d", "task": "seqrec", "item_repr": "x", "seed": 1, "protocol": {"split": "loo"}, "metrics": {"NDCG@10": 0.1}}
    table = merge_cells([{**base, "model": "a", "setting": "CE"}, {**base, "model": "b", "setting": "CBS", "extra_columns": {"invalid_rate": 0.0}}])
    assert table.filter(pl.col("model") == "b")["invalid_rate"].item() == 0.0
    assert table.filter(pl.col("model") == "a")["invalid_rate"].item() is None


# --- TIGER's user token ------------------------------------------------------------------------
def _user_tiger(seed: int = 0, buckets: int = 16) -> SequentialRecommender:
    return create_model("tiger", N_ITEMS, seed=seed, **SMALL["tiger"], user_buckets=buckets, semantic_codes=_codes())


def test_tiger_user_token_goes_right_before_the_history():
    from llmrecbench.models.base import pad_histories

    model = _user_tiger(buckets=7)
    assert model.user_aware and not type(model).user_aware  # per instance: hashed, no user table
    seq = pad_histories([np.array([0, 1]), np.array([2])], model.max_items)
    tokens, mask = model.encoder_inputs(seq, users=np.array([3, 10]))
    depth = model.depth
    user = model.user_tokens(np.array([3, 10]))
    assert ((user >= model.user_offset) & (user < model.user_offset + 7)).all()
    assert user.tolist() == [model.user_offset + (u * 2654435761) % 2**32 % 7 for u in (3, 10)]
    item = model.item_tokens
    assert tokens[0].tolist() == [user[0].item(), *item[1].tolist(), *item[2].tolist(), 1]  # user, items, EOS
    assert tokens[1].tolist() == [0] * depth + [user[1].item(), *item[3].tolist(), 1]  # left padding first
    assert mask.tolist() == (tokens != 0).tolist()
    plain = _model("tiger")
    assert plain.encoder_inputs(seq)[0].shape[1] == tokens.shape[1] - 1  # no user token without buckets
    with pytest.raises(ConfigError, match="user ids"):
        model.encoder_inputs(seq)


def test_tiger_with_user_tokens_trains_on_ids_and_reads_them(tmp_path):
    """Trained on the LeaveOneOutSequences (its ids become tokens), validated and tested with the
    users' ids; recommend without them is a config error, and the ids change the output."""
    data = _data()
    model = _user_tiger()
    assert model.training_examples(data)["user"].shape[0] == model.training_examples(data)["target"].shape[0]
    cfg = TrainConfig(lr=1e-2, batch_size=32, max_epochs=3, patience=3, seed=0)
    log = fit(model, data, cfg, tmp_path / "ckpt", validate=validation(data, SEQREC_EVALUATION, 0), monitor=SeqRec.monitor,
              progress=False)
    assert log["best_valid"]["HR@10"] > 0.3, log["best_valid"]  # random: 10/40
    histories = data.histories("test")[:6]
    with pytest.raises(ConfigError, match="users="):
        model.recommend(histories)
    lists = model.recommend(histories, users=data.user_ids[:6])
    assert ((lists >= 0) & (lists < N_ITEMS)).all()
    same_items = np.arange(6)
    a = model.sequence_logprob(histories, same_items, users=data.user_ids[:6])
    b = model.sequence_logprob(histories, same_items, users=data.user_ids[:6] + 1)
    assert not torch.allclose(a, b)
    spec = {"class": "tiger", "item_repr": "semantic_id", "setting": "CBS", "decoding": {"beam_width": 20, "constrained": True}}
    cell, topk, _ = evaluate_cell(model, data, dataset="toy", model_name="tiger_u", spec=spec, seed=0, evaluation=EVALUATION)
    lists = np.stack(topk["topk_item_ids"].to_list())
    assert cell["metrics"] == ranking_metrics(ranks_from_lists(lists, topk["target_item_id"].to_numpy()), EVALUATION["ks"])
