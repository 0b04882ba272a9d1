"""Train and evaluate one conventional cell of a text-generation task (explanation, review).

Validation generates for every valid pair and scores the papers' metrics (early stopping follows
the task's monitor, valid ROUGE-L (p5)); the test cell is scored from its generations frame by
:func:`score_generations`, the same function that re-scores a ``generations.parquet`` against the
test part (refusing one whose rows do not match it).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import polars as pl

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.errors import InputError
from llmrecbench.metrics.text_library import text_metrics
from llmrecbench.pipelines.common import build_model, checkpoint_fingerprint, count_rows, train_config
from llmrecbench.tables.cells import make_cell
from llmrecbench.training import fit

TOKENIZATION = "p5 columns: whitespace tokens, case kept; sacrebleu 13a; rouge-score lower-cased, Porter stemmer"


def paper_metrics(generated: list[str], references: list[str]) -> dict[str, float]:
    """BLEU-4 / ROUGE-1/2/L as P5 computed them (the validation metrics: no encoder, no libraries)."""
    from llmrecbench.metrics.text_p5 import bleu4_p5, rouge_p5

    return {"BLEU-4 (p5)": bleu4_p5(generated, references), **{f"{k} (p5)": v for k, v in rouge_p5(generated, references).items()}}


def validation(valid: TextPairs):
    def validate(model) -> dict[str, float]:
        return paper_metrics(model.generate(valid), valid.references)

    return validate


def _texts_digest(texts: list[str]) -> str:
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]


def train_text_model(task, spec: dict, inputs: dict[str, str], *, seed: int, checkpoint_root: str, threads: int | None):
    from llmrecbench.models import get_model_class

    train, valid = task.pairs(inputs["train"]), task.pairs(inputs["valid"])
    n_users, n_items = count_rows(inputs["user_table"]), count_rows(inputs["item_table"])
    cls = get_model_class(spec["class"])
    extra = cls.data_inputs(train, spec.get("hparams", {})) if hasattr(cls, "data_inputs") else {}
    model = build_model(spec, n_users, n_items, seed=seed, **extra)
    cfg = train_config(spec, seed, threads)
    fingerprint = checkpoint_fingerprint(spec, cfg, [n_users, n_items, train.n, valid.n, _texts_digest(train.references)])
    log = fit(model, train, cfg, Path(checkpoint_root) / fingerprint, validate=validation(valid), monitor=task.monitor)
    log["train_fingerprint"] = fingerprint
    return model, log


def generations_frame(pairs: TextPairs, generated: list[str]) -> pl.DataFrame:
    """generations.parquet: user_id, item_id, reference, generated (+ feature), in the test part's order."""
    cols = {
        "user_id": pl.Series(pairs.users, dtype=pl.Int32),
        "item_id": pl.Series(pairs.items, dtype=pl.Int32),
        "reference": pl.Series(pairs.references, dtype=pl.String),
        "generated": pl.Series(generated, dtype=pl.String),
    }
    if pairs.features is not None:
        cols["feature"] = pl.Series(pairs.features, dtype=pl.String)
    return pl.DataFrame(cols)


def check_generations(rows: pl.DataFrame, test: TextPairs, where: str) -> None:
    """The generations must be the test part's pairs, in its order: same length, ids and references."""
    missing = [c for c in ("user_id", "item_id", "reference", "generated") if c not in rows.columns]
    if missing:
        raise InputError(where, f"lacks columns {missing}")
    if rows.height != test.n:
        raise InputError(where, f"{rows.height} generations for the {test.n} pairs of the test split ({test.path})")
    for col, want in (("user_id", test.users), ("item_id", test.items), ("reference", test.references)):
        got = rows[col].to_list()
        if got != list(want):
            row = next(k for k, (a, b) in enumerate(zip(got, want)) if a != b)
            raise InputError(where, f"row {row}: {col} {got[row]!r} does not match the test split's {want[row]!r} ({test.path})")
    if rows["generated"].null_count():
        raise InputError(where, f"{rows['generated'].null_count()} generations are null (write '' for an empty answer)")


def score_generations(rows: pl.DataFrame, test: TextPairs, encode=None, where: str = "generations") -> dict[str, float]:
    """Every metric column of a text cell from its generations, checked against the test part."""
    check_generations(rows, test, where)
    return text_metrics(rows["generated"].to_list(), rows["reference"].to_list(), encode)


def rescore_generations_file(task, generations: str, test: str, encoder: str | None, encoder_cache: str) -> dict[str, float]:
    """Recompute a cell's metrics from its ``generations.parquet`` and the task's test part."""
    try:
        rows = pl.read_parquet(generations)
    except Exception as exc:
        raise InputError(generations, f"cannot read parquet ({type(exc).__name__}: {exc})") from exc
    return score_generations(rows, task.pairs(test), sentence_encoder(encoder, encoder_cache)[0], where=generations)


def sentence_encoder(model_id: str | None, cache: str):
    """(encode fn, provenance) of the cosine column, or (None, None) when it is switched off."""
    if not model_id:
        return None, None
    from llmrecbench.llm.encoders import title_encoder

    return title_encoder(model_id, cache)


def text_protocol(task, encoder_rec: dict | None, decoding: str) -> dict:
    return {
        "split": task.split,
        "reference": task.reference_column,
        "tokenization": TOKENIZATION,
        "decoding": decoding,
        "cosine_encoder": (encoder_rec or {}).get("model_id", "off"),
    }


def evaluate_text_model(task, model_path: str, spec: dict, inputs: dict[str, str], *, identity: dict):
    from llmrecbench.models.text.base import TextModel

    test = task.pairs(inputs["test"])
    model = TextModel.load(model_path)
    t0 = time.perf_counter()
    generated = model.generate(test)
    seconds = time.perf_counter() - t0
    rows = generations_frame(test, generated)
    options = task.options
    encode, encoder_rec = sentence_encoder(options["encoder"], options["encoder_cache"])
    metrics = score_generations(rows, test, encode, where=inputs["test"])
    decoding = getattr(model, "decoding", "greedy" if model.trainable else "deterministic (no decoding)")
    cell = make_cell(
        dataset=identity["dataset"], task=task.name, model=identity["model"], model_class=spec["class"],
        item_repr=spec.get("item_repr", "unique_id"), setting=spec.get("setting", "default"), seed=identity["seed"],
        protocol=text_protocol(task, encoder_rec, decoding), metrics=metrics,
        n_pairs=int(test.n), n_users=int(np.unique(test.users).size),
        counters={"empty_generations": int(sum(not g.strip() for g in generated))},
        extra_columns={"na_rate": 0.0},
        encoder=encoder_rec,
    )
    timing = {
        "latency_ms_per_user": 1000.0 * seconds / max(1, test.n), "score_seconds": seconds, "batch_size": None,
        "n_users": int(test.n), "unit": "pair", "device": "cpu",
        "method": "wall time of model.generate over all test pairs, divided by the number of pairs",
    }
    return cell, rows, timing
