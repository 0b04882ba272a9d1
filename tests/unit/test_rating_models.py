"""Rating predictors: registry, closed-form baselines against hand/numpy solutions, training of MF
on a synthetic low-rank matrix, seeding, and save/load round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrecbench.data.ratings import RatingData
from llmrecbench.errors import ConfigError
from llmrecbench.metrics import rmse
from llmrecbench.models.rating import RATING_MODELS, BiasBaseline, BiasedMF, GlobalMean, MLPRating, RatingModel
from llmrecbench.models.registry import create_model, get_model_class, model_family

CLASSES = {"global_mean": GlobalMean, "bias": BiasBaseline, "mf": BiasedMF, "mlp": MLPRating}


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is fastest and immune to a busy machine."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def _low_rank(n_users=60, n_items=50, rank=3, density=0.5, seed=0) -> tuple[RatingData, RatingData]:
    """Observed entries of r_ui = 3 + b_u + b_i + <x_u, y_i> + noise (clipped to [1, 5]), 85/15 split."""
    rng = np.random.default_rng(seed)
    x, y = rng.normal(0, 0.8, (n_users, rank)), rng.normal(0, 0.8, (n_items, rank))
    full = 3.0 + rng.normal(0, 0.3, (n_users, 1)) + rng.normal(0, 0.3, (1, n_items)) + x @ y.T + rng.normal(0, 0.1, (n_users, n_items))
    full = np.clip(full, 1, 5)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    held = rng.random(u.size) < 0.15

    def part(m: np.ndarray) -> RatingData:
        return RatingData(u[m], i[m], full[u[m], i[m]], n_users, n_items)

    return part(~held), part(held)


def _adam(model: RatingModel, train: RatingData, steps: int = 300, lr: float = 0.03, batch_size: int = 256, seed: int = 0) -> RatingModel:
    """A plain seeded Adam loop over shuffled mini-batches of model.training_examples(train)."""
    examples = model.training_examples(train)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    step = 0
    while step < steps:
        for idx in torch.randperm(train.n, generator=gen).split(batch_size):
            loss = model.training_loss({k: v[idx] for k, v in examples.items()}, "mse", gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == steps:
                break
    model.eval()
    return model


def _fitted(name: str, train: RatingData, seed: int = 0) -> RatingModel:
    small = {"mf": {"dim": 8, "reg": 0.01}, "mlp": {"dim": 8, "hidden": [16, 8], "dropout": 0.1}}.get(name, {})
    model = create_model(name, train.n_users, train.n_items, seed=seed, **small)
    if model.trainable:
        return _adam(model, train, steps=50, seed=seed)
    model.fit_closed_form(train)
    return model


def test_registered_as_rating_family():
    for name in RATING_MODELS:
        cls = get_model_class(name)
        assert cls is CLASSES[name] and cls.name == name and issubclass(cls, RatingModel)
        assert model_family(name) == "rating" and cls.losses == ("mse",)
    assert [n for n in RATING_MODELS if CLASSES[n].trainable] == ["mf", "mlp"]


def test_global_mean_predicts_the_training_mean():
    train = RatingData(np.array([0, 1, 1]), np.array([0, 0, 1]), np.array([5.0, 3.0, 1.0]), 3, 2)
    model = GlobalMean(3, 2)
    model.fit_closed_form(train)
    assert model.predict(np.array([2, 0]), np.array([1, 1])).tolist() == [3.0, 3.0]


def _ridge_biases(train: RatingData, reg_user: float, reg_item: float) -> tuple[np.ndarray, np.ndarray]:
    """argmin sum (r - mu - b_u - b_i)^2 + reg_user |b_u|^2 + reg_item |b_i|^2 by np.linalg.lstsq on the
    augmented system [X; sqrt(diag(reg))] b = [r - mu; 0]."""
    n, nu, ni = train.n, train.n_users, train.n_items
    x = np.zeros((n, nu + ni))
    x[np.arange(n), train.users] = 1.0
    x[np.arange(n), nu + train.items] = 1.0
    reg = np.sqrt(np.r_[np.full(nu, reg_user), np.full(ni, reg_item)])
    a = np.vstack([x, np.diag(reg)])
    rhs = np.r_[train.ratings - train.global_mean(), np.zeros(nu + ni)]
    b = np.linalg.lstsq(a, rhs, rcond=None)[0]
    return b[:nu], b[nu:]


# a 4 x 3 matrix with holes (0 = unrated):   i0 i1 i2
HAND = np.array([[5, 3, 0], [4, 0, 1], [0, 2, 2], [5, 4, 0]], dtype=np.float64)


def _hand_data() -> RatingData:
    u, i = np.nonzero(HAND)
    return RatingData(u, i, HAND[u, i], 4, 3)


def test_bias_one_round_is_koren_by_hand():
    train = _hand_data()
    mu = 26 / 8  # 3.25
    model = BiasBaseline(4, 3, reg_user=1.0, reg_item=2.0, n_iter=1)
    model.fit_closed_form(train)
    # items first with b_u = 0: b_i = sum_u (r_ui - mu) / (2 + |R(i)|)
    b_i = np.array([(5 + 4 + 5 - 3 * mu) / 5, (3 + 2 + 4 - 3 * mu) / 5, (1 + 2 - 2 * mu) / 4])
    # then users: b_u = sum_i (r_ui - mu - b_i) / (1 + |R(u)|)
    b_u = np.array(
        [
            (5 - mu - b_i[0] + 3 - mu - b_i[1]) / 3,
            (4 - mu - b_i[0] + 1 - mu - b_i[2]) / 3,
            (2 - mu - b_i[1] + 2 - mu - b_i[2]) / 3,
            (5 - mu - b_i[0] + 4 - mu - b_i[1]) / 3,
        ]
    )
    np.testing.assert_allclose(model.item_bias.numpy(), b_i, rtol=1e-6)
    np.testing.assert_allclose(model.user_bias.numpy(), b_u, rtol=1e-6)
    assert float(model.predict([1], [1])[0]) == pytest.approx(mu + b_u[1] + b_i[1], rel=1e-6)


@pytest.mark.parametrize("reg_user, reg_item", [(1.0, 2.0), (15.0, 10.0), (0.1, 0.1)])
def test_bias_rounds_converge_to_the_ridge_least_squares_solution(reg_user, reg_item):
    train = _hand_data()
    model = BiasBaseline(4, 3, reg_user=reg_user, reg_item=reg_item, n_iter=500)
    model.fit_closed_form(train)
    b_u, b_i = _ridge_biases(train, reg_user, reg_item)
    np.testing.assert_allclose(model.user_bias.numpy(), b_u, atol=1e-5)
    np.testing.assert_allclose(model.item_bias.numpy(), b_i, atol=1e-5)


def test_bias_leaves_unrated_ids_at_zero_and_predictions_are_not_clipped():
    train = RatingData(np.array([0, 0]), np.array([0, 0]), np.array([5.0, 5.0]), 2, 2)
    model = BiasBaseline(2, 2, reg_user=0.0, reg_item=0.0, n_iter=3)
    model.fit_closed_form(train)
    assert model.user_bias[1].item() == 0.0 and model.item_bias[1].item() == 0.0
    model.user_bias[0] = 2.0  # predict() reports the raw value; clipping is the caller's
    assert model.predict([0], [1]).item() == pytest.approx(7.0)


def test_mf_training_beats_the_global_mean_and_the_biases_on_held_out_entries():
    train, held = _low_rank()
    base = {name: _fitted(name, train) for name in ("global_mean", "bias")}
    torch.manual_seed(0)
    mf = _adam(BiasedMF(train.n_users, train.n_items, dim=8, init_std=0.1, reg=0.01), train, steps=300)
    err = {name: rmse(m.predict(held.users, held.items), held.ratings) for name, m in {**base, "mf": mf}.items()}
    assert err["mf"] < 0.7 * err["global_mean"] and err["mf"] < 0.8 * err["bias"], err
    assert float(mf.mu) == pytest.approx(train.global_mean(), rel=1e-6)


def test_mlp_training_beats_the_global_mean():
    train, held = _low_rank()
    gm = _fitted("global_mean", train)
    mlp = _adam(create_model("mlp", train.n_users, train.n_items, seed=0, dim=8, hidden=[32, 16], dropout=0.0), train, steps=150, lr=0.01)
    assert rmse(mlp.predict(held.users, held.items), held.ratings) < 0.9 * rmse(gm.predict(held.users, held.items), held.ratings)


def test_mf_loss_is_mse_plus_l2_on_the_batch_embeddings():
    train, _ = _low_rank(n_users=10, n_items=8)
    model = BiasedMF(10, 8, dim=4, reg=0.3)
    examples = model.training_examples(train)
    batch = {k: v[:16] for k, v in examples.items()}
    with torch.no_grad():
        model.user_bias.weight.normal_()
        u, i, r = batch["user"], batch["item"], batch["rating"]
        p, q = model.user_factors.weight[u], model.item_factors.weight[i]
        bu, bi = model.user_bias.weight[u, 0], model.item_bias.weight[i, 0]
        pred = model.mu + bu + bi + (p * q).sum(1)
        want = ((pred - r) ** 2).mean() + 0.3 * (p.pow(2).sum(1) + q.pow(2).sum(1) + bu**2 + bi**2).mean()
        assert model.training_loss(batch, "mse", torch.Generator()).item() == pytest.approx(want.item(), rel=1e-5)
    with pytest.raises(ConfigError, match="unknown rating loss 'bce'"):
        model.training_loss(batch, "bce", torch.Generator())


@pytest.mark.parametrize("name", ["mf", "mlp"])
def test_same_seed_same_predictions(name):
    train, held = _low_rank(n_users=30, n_items=20)
    a, b, c = _fitted(name, train, seed=3), _fitted(name, train, seed=3), _fitted(name, train, seed=4)
    pa, pb, pc = (m.predict(held.users, held.items) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


@pytest.mark.parametrize("name", RATING_MODELS)
def test_save_load_round_trip_gives_identical_predictions(tmp_path, name):
    train, held = _low_rank(n_users=30, n_items=20)
    model = _fitted(name, train)
    path = tmp_path / name / "model.pt"
    model.save(path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # written atomically, no temp left
    payload = torch.load(path, weights_only=True)
    assert set(payload) == {"name", "family", "n_users", "n_items", "hparams", "state_dict"} and payload["family"] == "rating"
    for loader in (RatingModel, CLASSES[name]):
        loaded = loader.load(path)
        assert type(loaded) is CLASSES[name] and not loaded.training and loaded.hparams == model.hparams
        assert torch.equal(loaded.predict(held.users, held.items), model.predict(held.users, held.items))
    other = BiasedMF if name != "mf" else MLPRating
    with pytest.raises(ConfigError, match="not"):
        other.load(path)


def test_predict_checks_ids_and_batches_consistently():
    train, held = _low_rank(n_users=30, n_items=20)
    model = _fitted("mf", train)
    assert torch.equal(model.predict(held.users, held.items, batch_size=7), model.predict(torch.from_numpy(held.users), held.items))
    assert model.predict(held.users, held.items).dtype == torch.float32
    with pytest.raises(ValueError, match=r"item ids must lie in \[0, 20\)"):
        model.predict([0], [20])
    with pytest.raises(ValueError, match="differ in length"):
        model.predict([0, 1], [0])


def test_data_of_another_shape_and_wrong_fitting_route_are_refused():
    train, _ = _low_rank(n_users=30, n_items=20)
    with pytest.raises(ConfigError, match="30 x 20"):
        BiasedMF(31, 20).training_examples(train)
    with pytest.raises(TypeError, match="closed form"):
        BiasBaseline(30, 20).training_examples(train)
    with pytest.raises(TypeError, match="gradient descent"):
        BiasedMF(30, 20).fit_closed_form(train)
    with pytest.raises(ConfigError, match="positive"):
        GlobalMean(0, 3)
