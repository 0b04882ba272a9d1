"""LLM rows of CTR prediction (RecBench Groups D-F): P(YES) of every test pair, no generation.

A pair's prompt ends with "Answer (Yes/No):"; one forward pass of the left-padded batch gives
the next-token logits z at the last prompt token, and the score is
    P(YES) = exp(z_yes) / (exp(z_yes) + exp(z_no)) = sigmoid(log P(yes) - log P(no)),
where yes / no sum the first tokens of "Yes"/"yes" and "No"/"no"
(:func:`llmrecbench.llm.readers.yes_logit_margin`). Every pair gets a score, so there is no N/A.
The cell's metrics are the conventional rows' (:func:`llmrecbench.metrics.ctr.ctr_metrics`);
``predictions.parquet`` has user_id, item_id, label, score, as theirs.
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import torch

from llmrecbench.llm.cells import llm_timing
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.generate import CausalLM, Stopwatch
from llmrecbench.llm.readers import yes_logit_margin, yes_no_token_ids
from llmrecbench.metrics.ctr import ctr_metrics
from llmrecbench.tables.cells import make_cell
from llmrecbench.tasks.ctr import CTRPrediction

log = logging.getLogger("llmrecbench")


def p_yes(lm: CausalLM, prompts: list[list[int]], yes_ids: list[int], no_ids: list[int]) -> np.ndarray:
    """P(YES | yes or no) of each tokenised prompt (one left-padded forward pass)."""
    with torch.no_grad():
        logits, _, _ = lm.forward(*lm.left_pad(prompts))
        return torch.sigmoid(yes_logit_margin(logits[:, -1, :], yes_ids, no_ids)).double().cpu().numpy()


def ctr_llm_cell(lm: CausalLM, records: list[dict], *, identity: dict, spec: dict, decode: DecodeConfig,
                 model_rec: dict, n_items: int) -> tuple[dict, pl.DataFrame, dict]:
    """One CTR LLM cell (module docstring) from the test prompt records (whole prompts: their
    length is bounded by the history shown, ``llm.prompts.ctr_max_history``)."""
    size = max(1, decode.pair_batch_size)
    ids = [lm.prompt_ids(r["prompt"]) for r in records]
    yes_no = yes_no_token_ids(lm.tok)
    p_yes(lm, ids[:size], *yes_no)  # warm-up: one full batch
    watch = Stopwatch(lm.device)
    scores: list[np.ndarray] = []
    for start in range(0, len(ids), size):
        with watch:
            scores.append(p_yes(lm, ids[start : start + size], *yes_no))
        if start % (20 * size) == 0:
            log.info("ctr: %d/%d pairs, %.1f s", start + len(scores[-1]), len(ids), watch.seconds)
    score = np.concatenate(scores) if scores else np.empty(0)
    users = np.asarray([r["user_id"] for r in records])
    labels = np.asarray([r["label"] for r in records], dtype=np.float64)
    metrics = ctr_metrics(users, labels, score)
    headline = {m.name: metrics[m.name] for m in CTRPrediction.metric_columns}  # every pair scored: no N/A
    protocol = {
        "split": "user_disjoint",
        "scoring": "P(YES) = softmax over the last-token logits of the YES and NO tokens; no generation",
        "history": f"at most {max((len(r['history']) for r in records), default=0)} items shown",
        "longest_prompt_tokens": max((len(x) for x in ids), default=0),
    }
    cell = make_cell(
        dataset=identity["dataset"], task="ctr", model=identity["model"], model_class="llm",
        item_repr=records[0]["item_repr"], setting=spec["setting"], seed=identity["seed"], protocol=protocol,
        metrics=headline, metrics_if_counted=headline, setting_key=identity["setting"],
        n_pairs=len(records), n_users=int(np.unique(users).size), n_items=int(n_items), llm=model_rec,
        extra_columns={"na_rate": 0.0, "gauc_users_skipped": metrics["gauc_users_skipped"]},
    )
    rows = pl.DataFrame({
        "user_id": pl.Series(users, dtype=pl.Int32),
        "item_id": pl.Series([r["item_id"] for r in records], dtype=pl.Int32),
        "label": pl.Series(labels.astype(np.int8), dtype=pl.Int8),
        "score": pl.Series(score, dtype=pl.Float64),
    })
    timing = llm_timing(watch.seconds, len(records), size, lm.device,
                        "wall time of the P(YES) forward passes over all test pairs after a one-batch warm-up, divided by pairs")
    return cell, rows, timing
