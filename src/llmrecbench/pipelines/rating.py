"""Train and evaluate one cell of the rating-prediction task (declared in ``llmrecbench.tasks.rating``).

Validation and test both score ``clip(prediction, 1, 5)``; the trainer stops early on valid RMSE
(lower is better), so the validation metric is the test metric's own function.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from llmrecbench.data.ratings import RatingData, load_ratings
from llmrecbench.metrics.rating import clip_ratings, rating_metrics
from llmrecbench.pipelines.common import build_model, checkpoint_fingerprint, count_rows, timed_batches, timing_record, train_config
from llmrecbench.tables.cells import make_cell
from llmrecbench.tasks.rating import RatingPrediction
from llmrecbench.training import fit


def load_part(inputs: dict[str, str], part: str) -> RatingData:
    return load_ratings(inputs[part], count_rows(inputs["user_table"]), count_rows(inputs["item_table"]))


def predict(model, data: RatingData, options: dict) -> np.ndarray:
    """Clipped predictions of every (user, item) pair of ``data``."""
    low, high = options["rating_range"]
    raw = model.predict(data.users, data.items, batch_size=options["batch_size"]).detach().float().cpu().numpy()
    return np.asarray(clip_ratings(raw, low, high), dtype=np.float64)


def validation(valid: RatingData, options: dict):
    def validate(model) -> dict[str, float]:
        return rating_metrics(predict(model, valid, options), valid.ratings)

    return validate


def train_rating_model(spec: dict, inputs: dict[str, str], options: dict, *, seed: int, checkpoint_root: str, threads: int | None):
    train, valid = load_part(inputs, "train"), load_part(inputs, "valid")
    cfg = train_config(spec, seed, threads)
    model = build_model(spec, train.n_users, train.n_items, seed=seed)
    fingerprint = checkpoint_fingerprint(spec, cfg, [train.n_users, train.n_items, train.n, valid.n, float(train.ratings.sum())])
    log = fit(
        model, train, cfg, Path(checkpoint_root) / fingerprint,
        validate=validation(valid, options), monitor=RatingPrediction.monitor,
    )
    log["train_fingerprint"] = fingerprint
    return model, log


def evaluate_rating_model(model_path: str, spec: dict, inputs: dict[str, str], options: dict, *, identity: dict):
    from llmrecbench.models.rating.base import RatingModel

    test = load_part(inputs, "test")
    model = RatingModel.load(model_path)
    low, high = options["rating_range"]
    bs = int(options["batch_size"])
    users, items = test.users, test.items
    raw, seconds = timed_batches(lambda s: model.predict(users[s], items[s], batch_size=bs), test.n, bs)
    pred = np.asarray(clip_ratings(raw, low, high), dtype=np.float64)
    metrics = rating_metrics(pred, test.ratings)
    protocol = {
        "split": RatingPrediction.split,
        "clip": [float(low), float(high)],
        "loss": spec.get("train", {}).get("loss", "mse"),
        "na_policy": "none (every pair gets a prediction)",
    }
    cell = make_cell(
        dataset=identity["dataset"], task=RatingPrediction.name, model=identity["model"], model_class=spec["class"],
        item_repr=spec.get("item_repr", "unique_id"), setting=spec.get("setting", "default"), seed=identity["seed"],
        protocol=protocol, metrics=metrics,
        n_pairs=int(test.n), n_users=int(np.unique(users).size), n_items=int(test.n_items),
        # every pair is predicted, so the N/A-as-train-mean columns of the LLM rows equal RMSE / MAE
        extra_columns={"na_rate": 0.0, "RMSE_na_as_mean": metrics["RMSE"], "MAE_na_as_mean": metrics["MAE"]},
    )
    rows = pl.DataFrame({
        "user_id": pl.Series(users, dtype=pl.Int32),
        "item_id": pl.Series(items, dtype=pl.Int32),
        "rating": pl.Series(test.ratings, dtype=pl.Float32),
        "prediction": pl.Series(pred, dtype=pl.Float64),
        "raw_prediction": pl.Series(raw, dtype=pl.Float64),
    })
    timing = timing_record(seconds, test.n, bs, "pair", "wall time of model.predict over all test pairs in batches after one warm-up batch, divided by the number of pairs")
    return cell, rows, timing
