"""Conventional sequential recommenders: registry, scoring contract, persistence, losses."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrecbench.errors import ConfigError
from llmrecbench.models import SequentialRecommender, available_models, create_model, get_model_class, pad_histories

N_ITEMS = 40
TRAINABLE = ["sasrec", "gru4rec", "bert4rec", "caser"]
SMALL = {
    "sasrec": {"max_len": 12, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32},
    "gru4rec": {"max_len": 12, "embedding": 16, "hidden": 24},
    "bert4rec": {"max_len": 12, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32},
    "caser": {"L": 4, "hidden": 16, "n_v": 2, "n_h": 4},
    "pop": {},
}


def _sequences(n_users: int = 60, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, N_ITEMS, size=rng.integers(3, 20)) for _ in range(n_users)]


def _model(name: str, seed: int = 0) -> SequentialRecommender:
    model = create_model(name, N_ITEMS, seed=seed, **SMALL[name])
    if name == "pop":
        model.fit_closed_form(_sequences())
    return model


def test_registry_lists_all_models_by_family():
    # semantic models (sasrec_sbert, sid_sasrec, tiger): tests/unit/test_semantic_models.py
    from llmrecbench.models.ctr.base import CTRModel
    from llmrecbench.models.direct.base import CandidateRanker
    from llmrecbench.models.rating.base import RatingModel
    from llmrecbench.models.registry import model_family
    from llmrecbench.models.text.base import TextModel

    by_family = {}
    for name in available_models():
        by_family.setdefault(model_family(name), []).append(name)
    assert by_family == {
        "sequential": ["bert4rec", "caser", "fdsa", "gru4rec", "hgn", "index_leak", "pop", "s3rec", "sasrec", "sasrec_sbert", "sid_sasrec", "tiger"],
        "rating": ["bias", "global_mean", "mf", "mlp"],
        "direct": ["bpr_mf", "bpr_mlp", "simplex"],
        "explanation": ["item_retrieval", "nrt", "peter"],
        "summarization": ["lead"],
        "ctr": ["ctr_autoint", "ctr_dcn", "ctr_dcnv2", "ctr_deepfm", "ctr_dnn", "ctr_finalmlp", "ctr_gdcn", "ctr_masknet", "ctr_pnn"],
    }
    base = {
        "sequential": SequentialRecommender,
        "rating": RatingModel,
        "direct": CandidateRanker,
        "explanation": TextModel,
        "summarization": TextModel,
        "ctr": CTRModel,
    }
    for name in available_models():
        cls = get_model_class(name)
        assert issubclass(cls, base[cls.family]) and cls.name == name


def test_unknown_model_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown model 'nope'; known: bert4rec, bias, bpr_mf, bpr_mlp, caser, ctr_autoint"):
        get_model_class("nope")


def test_pad_histories_left_pads_truncates_and_shifts():
    out = pad_histories([np.array([0, 1]), np.array([5, 6, 7, 8])], 3)
    assert out.dtype == torch.int64
    assert out.tolist() == [[0, 1, 2], [7, 8, 9]]


@pytest.mark.parametrize("name", sorted(SMALL))
def test_score_shape_and_padding_invariance(name):
    model = _model(name)
    short = np.array([3, 1, 4])
    longer = np.arange(30) % N_ITEMS  # longer than max_len: truncated, forces padding of `short`
    alone = model.score([short])
    batched = model.score([short, longer, np.array([7])])
    assert alone.shape == (1, N_ITEMS) and batched.shape == (3, N_ITEMS)
    torch.testing.assert_close(batched[0], alone[0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(batched).all()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_save_load_round_trip(name, tmp_path):
    model = _model(name, seed=3)
    hist = [np.array([1, 2, 3]), np.array([9, 8])]
    path = tmp_path / f"{name}.pt"
    model.save(path)
    loaded = SequentialRecommender.load(path)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    assert torch.equal(loaded.score(hist), model.score(hist))
    assert torch.equal(get_model_class(name).load(path).score(hist), model.score(hist))


@pytest.mark.parametrize("loss", ["ce", "bce"])
@pytest.mark.parametrize("name", TRAINABLE)
def test_losses_decrease(name, loss):
    model = _model(name)
    examples = model.training_examples(_sequences(32))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            value = float(model.training_loss(examples, loss, torch.Generator().manual_seed(7)))
        model.train()
        return value

    before = eval_loss()
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        value = model.training_loss(examples, loss, gen)
        opt.zero_grad()
        value.backward()
        opt.step()
    after = eval_loss()
    assert np.isfinite(before) and after < 0.97 * before, (before, after)


@pytest.mark.parametrize("name", TRAINABLE)
def test_unknown_loss_is_a_config_error(name):
    model = _model(name)
    examples = model.training_examples(_sequences(4))
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        model.training_loss(examples, "hinge", torch.Generator())
