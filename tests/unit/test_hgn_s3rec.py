"""HGN (user-aware gating) and S3-Rec (self-supervised pre-training, then SASRec): formulas on
hand-set weights, masking and segment invariants, title-word attributes, and training through
``train_sequential`` (learning a planted pattern, exact resume after a kill in either stage)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

import llmrecbench.training.trainer as trainer
from llmrecbench.data.attributes import title_word_attributes, title_words
from llmrecbench.errors import ConfigError, InputError
from llmrecbench.models import SequentialRecommender, create_model
from llmrecbench.pipelines.seqrec import train_sequential
from tests.unit.test_trainer import N_ITEMS, _data  # the planted-successor data of the trainer tests

EVALUATION = {"mask_history": True, "batch_size": 1024}
HGN_SMALL = {"L": 3, "hidden": 16}
S3_SMALL = {"max_len": 10, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32, "dropout": 0.1, "attn_dropout": 0.1}


def _item_table(n_items: int = N_ITEMS) -> pl.DataFrame:
    colours = ["red", "blue", "green"]
    return pl.DataFrame({"item_id": np.arange(n_items, dtype=np.int32),
                         "title": [f"Nail Polish {colours[i % 3]} {i}" for i in range(n_items)]})


def _attributes(n_items: int = N_ITEMS) -> np.ndarray:
    return title_word_attributes(_item_table(n_items), n_items, {"min_count": 2}).ids


# --- HGN -------------------------------------------------------------------------------------
def test_hgn_encode_is_the_papers_formula_on_hand_set_weights():
    model = create_model("hgn", 3, n_users=2, seed=0, L=2, hidden=2)
    with torch.no_grad():
        model.user_emb.weight[:] = torch.tensor([[0.5, -1.0], [0.0, 0.0]])
        model.item_emb.weight[:] = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        model.gate_item.weight[:] = torch.tensor([[1.0, 0.0], [0.0, -1.0]])
        model.gate_item.bias[:] = torch.tensor([0.0, 0.5])
        model.gate_user.weight[:] = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        model.instance_item[:] = torch.tensor([1.0, -1.0])
        model.instance_user[:] = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    u = np.array([0.5, -1.0])
    E = np.array([[1.0, 0.0], [0.0, 2.0]])  # history (items 0, 1) = shifted ids 1, 2
    F = E * sig(E @ np.array([[1.0, 0.0], [0.0, -1.0]]).T + np.array([0.0, 0.5]) + u @ np.array([[0.0, 1.0], [1.0, 0.0]]).T)
    g = sig(F @ np.array([1.0, -1.0]) + u @ np.array([[1.0, 0.0], [0.0, 1.0]]))
    s = (g[:, None] * F).sum(0) / g.sum()
    expected = u + s + E.sum(0)
    got = model.encode(torch.tensor([[1, 2]]), torch.tensor([0]))[0].detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # a padded position adds nothing and takes no instance weight
    short = model.encode(torch.tensor([[0, 2]]), torch.tensor([0]))[0].detach().numpy()
    F2, g2 = F[1], g[1]
    np.testing.assert_allclose(short, u + F2 + E[1], rtol=1e-6)
    assert g2 > 0


def test_hgn_scores_need_user_ids_and_are_padding_invariant(tmp_path):
    model = create_model("hgn", N_ITEMS, n_users=5, seed=0, **HGN_SMALL)
    with pytest.raises(ConfigError, match="needs the user ids"):
        model.score([np.array([1, 2])])
    with pytest.raises(ConfigError, match=r"user ids must lie in 0..4"):
        model.score([np.array([1, 2])], users=np.array([5]))
    alone = model.score([np.array([3, 1])], users=np.array([2]))
    batched = model.score([np.array([3, 1]), np.arange(20) % N_ITEMS], users=np.array([2, 4]))
    torch.testing.assert_close(batched[0], alone[0])
    assert not torch.allclose(alone, model.score([np.array([3, 1])], users=np.array([3])))  # the user matters
    model.save(tmp_path / "hgn.pt")
    loaded = SequentialRecommender.load(tmp_path / "hgn.pt")
    assert loaded.n_users == 5 and torch.equal(loaded.score([np.array([3, 1])], users=np.array([2])), alone)


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_hgn_training_examples_carry_the_user_and_losses_decrease(loss):
    data = _data(40, planted=False)
    model = create_model("hgn", N_ITEMS, n_users=data.n_users, seed=0, **HGN_SMALL)
    ex = model.training_examples(data)
    assert ex["input"].shape[0] == sum(len(s) - 1 for s in data.train) == ex["user"].shape[0]
    first = data.train[0] + 1
    assert ex["input"][0].tolist() == [0, 0, int(first[0])] and int(ex["target"][0]) == first[1] and int(ex["user"][0]) == 0
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    before = float(model.training_loss(ex, loss, torch.Generator().manual_seed(0)).detach())
    for _ in range(50):
        value = model.training_loss(ex, loss, torch.Generator().manual_seed(0))
        opt.zero_grad()
        value.backward()
        opt.step()
    assert float(model.training_loss(ex, loss, torch.Generator().manual_seed(0)).detach()) < 0.97 * before


# --- S3-Rec: attributes and pre-training data ------------------------------------------------
def test_title_word_attributes_by_hand():
    items = pl.DataFrame({"item_id": [2, 0, 1, 3], "title": ["Red nail polish", "RED Lipstick, red!", None, "nail 2020 kit"]})
    attrs = title_word_attributes(items, 4, {"min_count": 2, "min_chars": 3})
    # counts over titles: red 2, nail 2, polish 1, lipstick 1, kit 1 ('2020' is digits only)
    assert attrs.vocabulary == ("nail", "red")  # ties by the word
    assert attrs.ids.tolist() == [[1, -1], [-1, -1], [1, 0], [0, -1]]
    assert attrs.summary() == {"n_attributes": 2, "items_with_attributes": 3}
    assert title_words("Red red, RED-dye 12", 3) == ["red", "dye"]
    no_text = title_word_attributes(pl.DataFrame({"item_id": [0, 1]}), 2)
    assert no_text.n_attributes == 0 and no_text.ids.shape == (2, 0)
    with pytest.raises(InputError, match=r"items\.parquet: expected one row per item id 0\.\.2"):
        title_word_attributes(items.head(2), 3, where="items.parquet")


def test_s3rec_masks_and_segments_keep_to_the_real_items():
    model = create_model("s3rec", N_ITEMS, item_attributes=_attributes(), seed=0, **S3_SMALL)
    data = _data(64, planted=False)
    with model.pretraining():
        seq = model.training_examples(data.train)["seq"]
    for trial in range(20):
        gen = torch.Generator().manual_seed(trial)
        mask = model._item_masks(seq, gen)
        assert not (mask & (seq == 0)).any() and mask.any(1).all()
        in_seg, neg_ids, has = model._segments(seq, gen)
        n = (seq != 0).sum(1)
        seg_len = in_seg.sum(1)
        assert not (in_seg & (seq == 0)).any()  # inside the real part
        assert torch.equal(has, n >= 2) and (seg_len[has] >= 1).all() and (seg_len <= n // 2).all()
        for row in range(seq.shape[0]):  # contiguous, and the negative is a slice of the long sequence
            cols = torch.nonzero(in_seg[row]).flatten()
            if cols.numel():
                assert torch.equal(cols, torch.arange(int(cols[0]), int(cols[0]) + cols.numel()))
                neg = neg_ids[row, cols]
                long = model._long_sequence
                starts = [i for i in range(long.numel() - neg.numel() + 1) if torch.equal(long[i : i + neg.numel()], neg)]
                assert starts


def test_s3rec_objectives_follow_the_attributes():
    with_attrs = create_model("s3rec", N_ITEMS, item_attributes=_attributes(), seed=0, **S3_SMALL)
    assert with_attrs.objectives() == ("aap", "mip", "map", "sp")
    assert with_attrs.protocol()["pretraining"] == "AAP+MIP+MAP+SP"
    # labels: item i's row (shifted id i + 1) holds its title words
    attrs = _attributes()
    assert torch.equal(with_attrs.attr_labels[1].nonzero().flatten(), torch.from_numpy(np.sort(attrs[0][attrs[0] >= 0])))
    bare = create_model("s3rec", N_ITEMS, item_attributes=np.zeros((N_ITEMS, 0), dtype=np.int64), seed=0, **S3_SMALL)
    assert bare.objectives() == ("mip", "sp") and bare.protocol()["attributes"] == "none (no item text)"
    no_sp = create_model("s3rec", N_ITEMS, item_attributes=attrs, seed=0, sp_weight=0.0, **S3_SMALL)
    assert no_sp.objectives() == ("aap", "mip", "map")


def test_s3rec_pretraining_lowers_its_validation_loss_and_round_trips(tmp_path):
    data = _data(120, planted=True)
    model = create_model("s3rec", N_ITEMS, item_attributes=_attributes(), seed=0, **S3_SMALL)
    validate = model.pretrain_validation(data.histories("test"), seed=3)
    before = validate(model)["pretrain_loss"]
    assert validate(model)["pretrain_loss"] == before  # fixed masks: deterministic
    with model.pretraining():
        ex = model.training_examples(data.train)
        opt = torch.optim.Adam(model.parameters(), lr=5e-3)
        for step in range(60):
            loss = model.training_loss(ex, "ce", torch.Generator().manual_seed(step))
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert model.stage == "finetune" and validate(model)["pretrain_loss"] < 0.8 * before
    model.save(tmp_path / "s3.pt")
    loaded = SequentialRecommender.load(tmp_path / "s3.pt")
    hist = [np.array([1, 2, 3]), np.array([7])]
    assert np.array_equal(loaded.item_attributes, model.item_attributes)
    assert torch.equal(loaded.score(hist), model.score(hist))


# --- through train_sequential ------------------------------------------------------------------
def _spec(name: str) -> dict:
    if name == "hgn":
        return {"class": "hgn", "hparams": HGN_SMALL, "train": {"loss": "ce", "lr": 0.01, "batch_size": 64, "max_epochs": 6, "patience": 6}}
    return {"class": "s3rec", "hparams": {**S3_SMALL, "pretrain_epochs": 2, "pretrain_lr": 0.005},
            "attributes": {"min_count": 2},
            "train": {"loss": "ce", "lr": 0.01, "batch_size": 64, "max_epochs": 6, "patience": 6}}


@pytest.fixture
def item_table(tmp_path):
    path = tmp_path / "items.parquet"
    _item_table().write_parquet(path)
    return path


@pytest.mark.parametrize("name", ["hgn", "s3rec"])
def test_train_sequential_learns_the_planted_successor(tmp_path, item_table, name):
    data = _data()
    model, log = train_sequential(_spec(name), data, EVALUATION, seed=0, checkpoint_root=tmp_path, item_table=item_table)
    assert log["best_valid"]["NDCG@10"] > 0.5, log["best_valid"]
    if name == "s3rec":
        pre = log["pretraining"]
        assert len(pre["epochs"]) == 2 and pre["monitor"] == {"name": "pretrain_loss", "mode": "min"}
        assert pre["epochs"][1]["valid_pretrain_loss"] < pre["epochs"][0]["valid_pretrain_loss"]
        assert model.protocol()["attributes"].startswith("title words")


@pytest.mark.parametrize(("name", "kill_at"), [("hgn", 2), ("s3rec", 1), ("s3rec", 3)])
def test_train_sequential_resumes_after_a_kill_to_the_same_weights(tmp_path, item_table, name, kill_at, monkeypatch):
    """s3rec: kill_at 1 dies in pre-training, 3 in fine-tuning (after the 2 pre-training epochs)."""
    data = _data(planted=False)
    spec = _spec(name)
    spec["train"]["max_epochs"] = 3
    full, full_log = train_sequential(spec, data, EVALUATION, seed=1, checkpoint_root=tmp_path / "a", item_table=item_table)

    real, saves = trainer._save_checkpoint, []

    def killed(path, state):
        real(path, state)
        saves.append(path)
        if len(saves) == kill_at:
            raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(trainer, "_save_checkpoint", killed)
        with pytest.raises(KeyboardInterrupt):
            train_sequential(spec, data, EVALUATION, seed=1, checkpoint_root=tmp_path / "b", item_table=item_table)
    torch.manual_seed(12345)
    resumed, resumed_log = train_sequential(spec, data, EVALUATION, seed=1, checkpoint_root=tmp_path / "b", item_table=item_table)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k
    strip = lambda es: [{k: v for k, v in e.items() if "seconds" not in k} for e in es]  # noqa: E731
    assert strip(resumed_log["epochs"]) == strip(full_log["epochs"])
