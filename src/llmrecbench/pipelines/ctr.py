"""Train and evaluate one deep CTR cell (declared in ``llmrecbench.tasks.ctr``).

The model's item features come from the declared inputs only: title tokens from ``items.parquet``
(``text``), sentence-encoder vectors from the embeddings file (``semantic_embedding``); both are
stored inside the saved model. Early stopping follows valid AUC; the test cell writes
``predictions.parquet`` (user_id, item_id, label, score) from which every metric recomputes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl
import torch

from llmrecbench.data.ctr_pairs import CTRData, load_ctr_part
from llmrecbench.errors import InputError
from llmrecbench.metrics.ctr import auc, ctr_metrics
from llmrecbench.pipelines.common import build_model, checkpoint_fingerprint, count_rows, timed_batches, timing_record, train_config
from llmrecbench.provenance import file_digests
from llmrecbench.tables.cells import make_cell
from llmrecbench.tasks.ctr import CTRPrediction
from llmrecbench.training import fit

TOKEN = re.compile(r"[a-z0-9]+")


def load_parts(inputs: dict[str, str], parts=("train", "valid", "test")) -> dict[str, CTRData]:
    """The pair files as arrays, each history as long as the longest one the file stores."""
    n_items = count_rows(inputs["item_table"])
    return {p: load_ctr_part(inputs[p], n_items) for p in parts}


def title_tokens(item_table: str, title_len: int, max_vocab: int) -> tuple[torch.Tensor, int]:
    """[n_items, title_len] token ids of every item title (lower-cased ``[a-z0-9]+`` words; id 0
    pads; the ``max_vocab`` - 1 most frequent words, ties by word) and the vocabulary size."""
    items = pl.read_parquet(item_table)
    if "title" not in items.columns or items["title"].drop_nulls().len() == 0:
        raise InputError(item_table, "no item titles: the text item representation needs them")
    words = [TOKEN.findall((t or "").lower())[:title_len] for t in items.sort("item_id")["title"].to_list()]
    counts: dict[str, int] = {}
    for ws in words:
        for w in ws:
            counts[w] = counts.get(w, 0) + 1
    vocab = {w: k + 1 for k, (w, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_vocab - 1])}
    tokens = torch.zeros(len(words), title_len, dtype=torch.long)
    for row, ws in enumerate(words):
        ids = [vocab[w] for w in ws if w in vocab]
        tokens[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return tokens, len(vocab) + 1


def item_vectors(path: str, n_items: int) -> torch.Tensor:
    from llmrecbench.semantic_ids.pipeline import read_vectors

    ids, vectors = read_vectors(path)
    if len(ids) != n_items or not np.array_equal(ids, np.arange(n_items)):
        raise InputError(path, f"expected one vector per item 0..{n_items - 1}, found {len(ids)} rows")
    return torch.from_numpy(vectors)


def feature_inputs(spec: dict, inputs: dict[str, str], n_items: int, options: dict) -> tuple[dict, dict]:
    """(constructor arguments, buffers) of the model's item representation."""
    repr_ = spec.get("item_repr", "unique_id")
    if repr_ == "text":
        tokens, vocab = title_tokens(inputs["item_table"], int(options["title_len"]), int(options["max_vocab"]))
        return {"item_repr": repr_, "vocab_size": vocab, "title_len": tokens.shape[1]}, {"tokens": tokens}
    if repr_ == "semantic_embedding":
        if "item_embeddings" not in inputs:
            raise InputError(spec["class"], "the semantic_embedding representation needs `semantic: {encoder: ...}` in its model block")
        vectors = item_vectors(inputs["item_embeddings"], n_items)
        return {"item_repr": repr_, "vector_dim": vectors.shape[1]}, {"vectors": vectors}
    return {"item_repr": repr_}, {}


def predict(model, data: CTRData, batch_size: int) -> np.ndarray:
    return model.predict_data(data, batch_size).numpy().astype(np.float64)


def validation(valid: CTRData, options: dict):
    def validate(model) -> dict[str, float]:
        p = predict(model, valid, int(options["batch_size"]))
        return {"AUC": auc(valid.labels, p)}

    return validate


def train_ctr_model(spec: dict, inputs: dict[str, str], options: dict, *, seed: int, checkpoint_root: str, threads: int | None):
    parts = load_parts(inputs, ("train", "valid"))
    train, valid = parts["train"], parts["valid"]
    cfg = train_config(spec, seed, threads)
    args, buffers = feature_inputs(spec, inputs, train.n_items, options)
    model = build_model(spec, count_rows(inputs["user_table"]), train.n_items, seed=seed, **args)
    model.features.set_features(**buffers)
    summary = [train.n_items, train.n, valid.n, float(train.labels.sum()), file_digests([inputs["train"], inputs["valid"]])]
    fingerprint = checkpoint_fingerprint(spec, cfg, summary)
    log = fit(model, train, cfg, Path(checkpoint_root) / fingerprint, validate=validation(valid, options), monitor=CTRPrediction.monitor)
    log["train_fingerprint"] = fingerprint
    return model, log


def evaluate_ctr_model(model_path: str, spec: dict, inputs: dict[str, str], options: dict, *, identity: dict):
    from llmrecbench.models.ctr.base import CTRModel

    test = load_parts(inputs, ("test",))["test"]
    model = CTRModel.load(model_path)
    bs = int(options["batch_size"])
    hist, items = torch.from_numpy(test.history), torch.from_numpy(test.items)
    scores, seconds = timed_batches(lambda s: model.predict(hist[s], items[s]), test.n, bs)
    scores = scores.astype(np.float64)
    metrics = ctr_metrics(test.users, test.labels, scores)
    protocol = {
        "split": CTRPrediction.split,
        "pairs": "RecBench per-user held-out pairs; test and fine-tuning users disjoint",
        "history": f"user = mean of the history's item vectors (RecBench Eq. 2), at most {test.history.shape[1]} items",
        "item_repr": model.features.item_repr,
        "loss": "bce",
    }
    cell = make_cell(
        dataset=identity["dataset"], task=CTRPrediction.name, model=identity["model"], model_class=spec["class"],
        item_repr=spec.get("item_repr", "unique_id"), setting=spec.get("setting", "default"), seed=identity["seed"],
        protocol=protocol, metrics={m.name: metrics[m.name] for m in CTRPrediction.metric_columns},
        n_pairs=int(test.n), n_users=int(np.unique(test.users).size), n_items=int(test.n_items),
        extra_columns={"na_rate": 0.0, "gauc_users_skipped": metrics["gauc_users_skipped"]},
    )
    rows = pl.DataFrame({
        "user_id": pl.Series(test.users, dtype=pl.Int32),
        "item_id": pl.Series(test.items, dtype=pl.Int32),
        "label": pl.Series(test.labels.astype(np.int8), dtype=pl.Int8),
        "score": pl.Series(scores, dtype=pl.Float64),
    })
    timing = timing_record(seconds, test.n, bs, "pair", "wall time of model.predict (history mean, item features, network, sigmoid) over all test pairs in batches after one warm-up batch, divided by the number of pairs")
    return cell, rows, timing
