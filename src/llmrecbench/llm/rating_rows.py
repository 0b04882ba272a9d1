"""LLM rows of rating prediction: a greedy answer per test review, read by the answer reader.

The reader (:func:`llmrecbench.llm.readers.read_rating`) takes the first number of the answer if
it lies in the rating range; otherwise the pair is N/A. The cell reports two versions:

* ``RMSE`` / ``MAE`` over the parsed answers only: what P5 did, silently dropping unparseable
  answers (the cell's ``protocol.na_policy`` says so, and ``na_rate`` is beside it);
* ``RMSE_na_as_mean`` / ``MAE_na_as_mean`` over every pair, the training mean standing in for
  each N/A (comparable with the conventional rows, which answer every pair).

With an N/A rate at or above ``na_status_threshold`` the cell is N/A (LLMRec's convention).
``predictions.parquet`` holds every pair: user_id, item_id, rating, prediction (null when N/A),
parsed, answer (the raw text).
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from llmrecbench.llm.cells import llm_timing
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.generate import CausalLM, Stopwatch
from llmrecbench.llm.prompts import iter_batches
from llmrecbench.llm.readers import read_rating
from llmrecbench.metrics.rating import rating_metrics
from llmrecbench.tables.cells import make_cell

log = logging.getLogger("llmrecbench")

NA_POLICY = (
    "RMSE/MAE over parsed answers only (as P5, which dropped unparseable answers); "
    "RMSE_na_as_mean/MAE_na_as_mean over all pairs with the train mean for N/A"
)


def filled_metrics(pred: np.ndarray, parsed: np.ndarray, target: np.ndarray, train_mean: float) -> dict[str, float]:
    """RMSE / MAE over every pair with ``train_mean`` standing in for the N/A predictions."""
    filled = np.where(parsed, pred, train_mean)
    m = rating_metrics(filled, target)
    return {"RMSE_na_as_mean": m["RMSE"], "MAE_na_as_mean": m["MAE"]}


def rating_llm_cell(
    lm: CausalLM,
    records: list[dict],
    *,
    identity: dict,
    spec: dict,
    decode: DecodeConfig,
    options: dict,
    train_mean: float,
    model_rec: dict,
    n_items: int,
) -> tuple[dict, pl.DataFrame, dict]:
    """One rating-task LLM cell (module docstring) from the test prompt records."""
    low, high = (float(v) for v in options["rating_range"])
    lm.generate_text([lm.prompt_ids(records[0]["prompt"])], max_new_tokens=1)  # warm-up
    watch = Stopwatch(lm.device)
    answers: list[str] = []
    for batch in iter_batches(records, decode.batch_size):
        with watch:
            answers += lm.generate_text([lm.prompt_ids(r["prompt"]) for r in batch], decode.answer_max_new_tokens)
        if len(answers) % (50 * decode.batch_size) < decode.batch_size:
            log.info("rating: %d/%d pairs, %.1f s", len(answers), len(records), watch.seconds)
    values = [read_rating(a, low, high) for a in answers]
    parsed = np.asarray([v is not None for v in values], dtype=bool)
    pred = np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)
    target = np.asarray([r["rating"] for r in records], dtype=np.float64)
    na_rate = float(1.0 - parsed.mean()) if len(parsed) else 0.0
    parsed_metrics = rating_metrics(pred[parsed], target[parsed]) if parsed.any() else {}
    status, note = "ok", ""
    if not parsed.any() or na_rate >= decode.na_status_threshold:
        status, note = "n/a", f"N/A: {na_rate:.0%} of answers held no rating in [{low:g}, {high:g}] (LLMRec convention)"
    protocol = {
        "split": "ratio_8_1_1",
        "decoding": f"greedy, {decode.answer_max_new_tokens} new tokens",
        "reader": f"first number of the answer, N/A outside [{low:g}, {high:g}]",
        "na_policy": NA_POLICY,
    }
    cell = make_cell(
        dataset=identity["dataset"], task="rating", model=identity["model"], model_class="llm",
        item_repr=records[0]["item_repr"], setting=spec["setting"], seed=identity["seed"], protocol=protocol,
        metrics=parsed_metrics if status == "ok" else {}, status=status, note=note, setting_key=identity["setting"],
        metrics_if_counted=parsed_metrics, n_pairs=len(records), n_users=len({r["user_id"] for r in records}),
        n_items=int(n_items), train_mean=float(train_mean),
        extra_columns={"na_rate": na_rate, **filled_metrics(pred, parsed, target, train_mean)},
        llm=model_rec, counters={"n_na": int((~parsed).sum()), "n_parsed": int(parsed.sum())},
    )
    rows = pl.DataFrame({
        "user_id": pl.Series([r["user_id"] for r in records], dtype=pl.Int32),
        "item_id": pl.Series([r["item_id"] for r in records], dtype=pl.Int32),
        "rating": pl.Series(target, dtype=pl.Float32),
        "prediction": pl.Series(values, dtype=pl.Float64),
        "parsed": pl.Series(parsed, dtype=pl.Boolean),
        "answer": pl.Series(answers, dtype=pl.String),
    })
    timing = llm_timing(watch.seconds, len(records), decode.batch_size, lm.device,
                        "wall time of greedy answers over all test pairs after a warm-up, divided by pairs")
    return cell, rows, timing
