"""The table cell and timing record of an LLM setting, built through the one cell writer
(:func:`llmrecbench.tables.cells.make_cell`), with the N/A rate and its status rule."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from llmrecbench.llm.generate import rank_array
from llmrecbench.llm.refine import ranks_from_lists
from llmrecbench.metrics import ranking_metrics
from llmrecbench.tables.cells import make_cell
from llmrecbench.llm.decoding import DecodeConfig


def masked_histories(records: Sequence[dict], evaluation: dict) -> list[list[int]] | None:
    """Per record the items a list must not hold under ``mask_history`` (None when off): the whole
    input history (``mask_items``), as for the conventional rows; prompt files built before that
    field existed fall back to the items shown in the prompt."""
    if not bool(evaluation.get("mask_history", True)):
        return None
    full = all("mask_items" in r for r in records)
    return [list(r["mask_items"] if full else r["history"]) for r in records]


def llm_cell(
    *,
    dataset: str,
    model_name: str,
    setting: str,
    setting_label: str,
    item_repr: str,
    seed: int,
    records: Sequence[dict],
    lists: Sequence[Sequence[int]],
    na: Sequence[bool],
    evaluation: dict,
    indexing: str,
    protocol_extra: dict,
    model_rec: dict,
    decode: DecodeConfig,
    counters: dict,
    n_items: int,
) -> tuple[dict, pl.DataFrame]:
    targets = [int(r["target_item_id"]) for r in records]
    full_history = all("mask_items" in r for r in records)
    histories = masked_histories(records, evaluation)
    mask = histories is not None
    # the lists were cut to k after their history items were skipped; removing them here again
    # is a no-op kept as a guard
    ranks = ranks_from_lists(lists, targets, histories)
    metrics = ranking_metrics(ranks, evaluation.get("ks", (1, 5, 10, 20)))
    na_rate = float(np.mean(na)) if len(na) else 0.0
    status, note = "ok", ""
    if na_rate >= decode.na_status_threshold:
        status = "n/a"
        note = f"N/A: {na_rate:.0%} of outputs could not be parsed/grounded to items (LLMRec convention)"
    protocol = {
        "split": "loo",
        "ranking": "generated_list",
        "mask_history": mask,
        "history_masking": "history items skipped before the list is cut to k" if mask else "none",
        "indexing": indexing,
        # outputs depend on the decode batch (left padding; the re-ask sampler is seeded per batch)
        "decode_batch_size": int(decode.batch_size),
        **protocol_extra,
    }
    if mask and not full_history:
        protocol["mask_scope"] = "prompt_history_only"
    cell = make_cell(
        dataset=dataset,
        task="seqrec",
        model=model_name,
        model_class="llm",
        item_repr=item_repr,
        setting=setting_label,
        seed=seed,
        protocol=protocol,
        metrics=metrics if status == "ok" else {},
        status=status,
        setting_key=setting,
        metrics_if_counted=metrics,
        n_users=len(records),
        n_items=int(n_items),
        note=note,
        extra_columns={"na_rate": na_rate},
        llm=model_rec,
        counters=counters,
    )
    topk = pl.DataFrame(
        {
            "user_id": np.asarray([r["user_id"] for r in records], dtype=np.int32),
            "target_item_id": np.asarray(targets, dtype=np.int32),
            "rank": np.where(np.isfinite(ranks), ranks, -1).astype(np.int32),
            "topk_item_ids": rank_array(lists, decode.list_length).astype(np.int32),
            "na": np.asarray(na, dtype=bool),
        },
        schema_overrides={"topk_item_ids": pl.Array(pl.Int32, decode.list_length)},
    )
    return cell, topk


def llm_timing(seconds: float, n: int, batch_size: int, device, method: str) -> dict:
    return {
        "latency_ms_per_user": 1000.0 * seconds / max(1, n),
        "score_seconds": seconds,
        "batch_size": int(batch_size),
        "n_users": int(n),
        "device": str(device),
        "method": method,
    }
