"""Trainer: early stopping, determinism, exact resume after a kill, learning a planted pattern."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrecbench.data.sequences import LeaveOneOutSequences
from llmrecbench.errors import ConfigError
from llmrecbench.evaluation import evaluate_full_ranking
from llmrecbench.models import create_model
from llmrecbench.training import TrainConfig, fit
from llmrecbench.pipelines.seqrec import validation
from llmrecbench.tasks.seqrec import SeqRec

SEQREC_EVALUATION = {"mask_history": True, "batch_size": 1024}


def seq_fit(model, data, cfg, checkpoint_dir, **kw):
    """The trainer with the seqrec task's validation (valid NDCG@10, full ranking) and monitor."""
    return fit(model, data.train, cfg, checkpoint_dir, validate=validation(data, SEQREC_EVALUATION, cfg.seed), monitor=SeqRec.monitor, **kw)

N_ITEMS = 30
SMALL = {
    "sasrec": {"max_len": 10, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32, "dropout": 0.1, "attn_dropout": 0.1},
    "gru4rec": {"max_len": 10, "embedding": 16, "hidden": 16},
    "bert4rec": {"max_len": 10, "hidden": 16, "n_layers": 1, "n_heads": 2, "inner": 32},
    "caser": {"L": 3, "hidden": 16, "n_v": 2, "n_h": 4},
}


def _data(n_users: int = 200, planted: bool = True, seed: int = 0) -> LeaveOneOutSequences:
    """Each user walks i, i+1, i+2, ... (mod N_ITEMS) from a random start (or random items)."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        length = int(rng.integers(5, 12))
        if planted:
            seqs.append((int(rng.integers(0, N_ITEMS)) + np.arange(length)) % N_ITEMS)
        else:
            seqs.append(rng.integers(0, N_ITEMS, size=length))
    return LeaveOneOutSequences(
        user_ids=np.arange(n_users),
        train=[s[:-2].astype(np.int64) for s in seqs],
        valid_target=np.array([s[-2] for s in seqs], dtype=np.int64),
        test_target=np.array([s[-1] for s in seqs], dtype=np.int64),
        n_items=N_ITEMS,
    )


def _strip(log: dict) -> dict:
    out = {k: v for k, v in log.items() if k not in ("seconds", "resumed_from_epoch")}
    out["epochs"] = [{k: v for k, v in e.items() if "seconds" not in k} for e in log["epochs"]]
    return out


def test_sasrec_learns_planted_successor_pattern(tmp_path):
    data = _data()
    model = create_model("sasrec", N_ITEMS, seed=0, **SMALL["sasrec"])
    cfg = TrainConfig(lr=1e-2, batch_size=32, max_epochs=15, patience=15, seed=0)
    log = seq_fit(model, data, cfg, tmp_path, progress=False)
    assert log["best_valid"]["NDCG@10"] > 0.95
    test = evaluate_full_ranking(model.score, data.histories("test"), data.test_target, N_ITEMS, ks=(1, 10))
    assert test.metrics["NDCG@10"] > 0.95 and test.metrics["HR@1"] > 0.9


def test_pop_goes_through_fit(tmp_path):
    data = _data(planted=False)
    model = create_model("pop", N_ITEMS)
    log = seq_fit(model, data, TrainConfig(), tmp_path, progress=False)
    counts = np.bincount(np.concatenate(data.train), minlength=N_ITEMS)
    assert np.array_equal(model.counts.numpy(), counts)
    assert log["epochs"] == [] and 0.0 <= log["best_valid"]["NDCG@10"] <= 1.0


@pytest.mark.parametrize(("name", "loss"), [("sasrec", "ce"), ("bert4rec", "ce"), ("gru4rec", "bce"), ("caser", "ce")])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, name, loss):
    data = _data(planted=False)
    cfg = TrainConfig(loss=loss, lr=5e-3, batch_size=32, max_epochs=3, patience=10, seed=1)

    full = create_model(name, N_ITEMS, seed=0, **SMALL[name])
    full_log = seq_fit(full, data, cfg, tmp_path / "a", progress=False)

    class Killed(Exception):
        pass

    def kill_after_first(epoch, entry):
        if epoch == 1:
            raise Killed

    victim = create_model(name, N_ITEMS, seed=0, **SMALL[name])
    with pytest.raises(Killed):
        seq_fit(victim, data, cfg, tmp_path / "b", progress=False, on_epoch_end=kill_after_first)
    torch.manual_seed(12345)  # whatever ran in between must not matter
    resumed = create_model(name, N_ITEMS, seed=99, **SMALL[name])  # weights come from the checkpoint
    resumed_log = seq_fit(resumed, data, cfg, tmp_path / "b", progress=False)

    assert resumed_log["resumed_from_epoch"] == 1 and full_log["resumed_from_epoch"] is None
    assert _strip(resumed_log) == _strip(full_log)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    data = _data(planted=False)
    states = []
    for run, seed in enumerate([0, 0, 1]):
        model = create_model("sasrec", N_ITEMS, seed=0, **SMALL["sasrec"])
        seq_fit(model, data, TrainConfig(lr=5e-3, batch_size=32, max_epochs=2, seed=seed), tmp_path / str(run), progress=False)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert not all(torch.equal(states[0][k], states[2][k]) for k in states[0])


def test_early_stopping_keeps_best_epoch(tmp_path):
    data = _data(planted=False)
    model = create_model("caser", N_ITEMS, seed=0, **SMALL["caser"])
    log = seq_fit(model, data, TrainConfig(lr=1e-12, batch_size=64, max_epochs=10, patience=2), tmp_path, progress=False)
    assert log["stopped_early"] and len(log["epochs"]) == 3 and log["best_epoch"] == 1
    # a finished run re-run with the same config trains nothing more
    again = seq_fit(create_model("caser", N_ITEMS, seed=5, **SMALL["caser"]), data,
                TrainConfig(lr=1e-12, batch_size=64, max_epochs=10, patience=2), tmp_path, progress=False)
    assert again["resumed_from_epoch"] == 3 and len(again["epochs"]) == 3


def test_checkpoint_of_another_config_is_ignored(tmp_path):
    data = _data(planted=False)
    seq_fit(create_model("caser", N_ITEMS, seed=0, **SMALL["caser"]), data, TrainConfig(max_epochs=1, batch_size=64), tmp_path, progress=False)
    log = seq_fit(create_model("caser", N_ITEMS, seed=0, **SMALL["caser"]), data, TrainConfig(max_epochs=1, batch_size=64, lr=2e-3), tmp_path, progress=False)
    assert log["resumed_from_epoch"] is None


def test_bad_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown loss 'bpr'; known: ce, bce"):
        seq_fit(create_model("caser", N_ITEMS, seed=0, **SMALL["caser"]), _data(), TrainConfig(loss="bpr", max_epochs=1), tmp_path)
    with pytest.raises(ConfigError, match="batch_size"):
        TrainConfig(batch_size=0)


def test_train_config_defaults_are_the_schema_defaults():
    """One source of defaults: TrainConfig's are the schema's `models.*.train` defaults."""
    from dataclasses import fields

    from llmrecbench.config import load_schema

    train = load_schema()["properties"]["models"]["additionalProperties"]["properties"]["train"]["properties"]
    cfg = TrainConfig()
    for name, prop in train.items():
        assert getattr(cfg, name) == prop["default"], name
    assert {f.name for f in fields(TrainConfig)} >= set(train)


def test_monitor_min_stops_on_a_rising_metric(tmp_path):
    """Early stopping follows the monitor's direction: with mode min (RMSE, logloss) the best epoch
    is the lowest value, and a rising value stops training after `patience` epochs."""
    from llmrecbench.monitor import Monitor

    values = iter([0.9, 0.8, 0.85, 0.95, 0.99, 1.0])
    model = create_model("caser", N_ITEMS, seed=0, **SMALL["caser"])
    log = fit(model, _data().train, TrainConfig(max_epochs=6, patience=2, batch_size=64), tmp_path,
              validate=lambda m: {"RMSE": next(values)}, monitor=Monitor("RMSE", "min"), progress=False)
    assert log["best_epoch"] == 2 and log["stopped_early"] and len(log["epochs"]) == 4
    assert [e["valid_RMSE"] for e in log["epochs"]] == [0.9, 0.8, 0.85, 0.95]


def test_learning_curve_points_change_no_weight_and_survive_a_resume(tmp_path):
    """curve_every_steps validates inside epochs without touching training: same weights and
    epoch log as a run without it; points at every N-th step and each epoch's end; a resumed run
    keeps the points of the epochs it restored."""
    data = _data(planted=False)
    base = TrainConfig(lr=5e-3, batch_size=32, max_epochs=2, patience=10, seed=1)
    plain = create_model("sasrec", N_ITEMS, seed=0, **SMALL["sasrec"])
    plain_log = seq_fit(plain, data, base, tmp_path / "plain", progress=False)
    assert "curve" not in plain_log
    cfg = TrainConfig(lr=5e-3, batch_size=32, max_epochs=2, patience=10, seed=1, curve_every_steps=2)
    curved = create_model("sasrec", N_ITEMS, seed=0, **SMALL["sasrec"])
    log = seq_fit(curved, data, cfg, tmp_path / "curved", progress=False)
    assert _strip(log)["epochs"] == _strip(plain_log)["epochs"]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), curved.state_dict().values()))
    per_epoch = -(-log["n_examples"] // cfg.batch_size)
    expected = sorted({*range(2, 2 * per_epoch + 1, 2), per_epoch, 2 * per_epoch})  # an epoch's end: one point
    assert [p["step"] for p in log["curve"]] == expected
    assert log["curve"][-1]["valid_NDCG@10"] == log["epochs"][-1]["valid_NDCG@10"]
    assert all(a["seconds"] <= b["seconds"] for a, b in zip(log["curve"], log["curve"][1:]))

    class Killed(Exception):
        pass

    def kill_after_first(epoch, entry):
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        seq_fit(create_model("sasrec", N_ITEMS, seed=0, **SMALL["sasrec"]), data, cfg, tmp_path / "b", progress=False,
                on_epoch_end=kill_after_first)
    resumed = seq_fit(create_model("sasrec", N_ITEMS, seed=0, **SMALL["sasrec"]), data, cfg, tmp_path / "b", progress=False)
    strip = lambda c: [{k: v for k, v in p.items() if k != "seconds"} for p in c]  # noqa: E731
    assert strip(resumed["curve"]) == strip(log["curve"])
