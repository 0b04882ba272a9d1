"""Prompt files and the item catalogue behind them: semantic-ID codes, prompt records of a split,
the seeded sample of test users, and the ``build_llm_prompts`` rule's library call."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl

from llmrecbench.errors import InputError
from llmrecbench.llm.prompts import NUMBERED_REPRS, ItemCatalog, build_prompts, parse_prompt_key


def item_catalog(titles: Sequence[str], item_repr: str, codes: np.ndarray | None = None,
                 numbers: np.ndarray | None = None) -> ItemCatalog:
    """The items as prompts show them; ``numbers`` (canonical id -> model id) numbers ID tokens and number text."""
    return ItemCatalog(list(titles), item_repr=item_repr, codes=codes, numbers=numbers if item_repr in NUMBERED_REPRS else None)


def read_codes(path: str | Path, n_items: int) -> np.ndarray:
    """Semantic-ID codes ``[n_items, levels]`` from a parquet with ``item_id`` and ``code_0..code_L``
    columns (rules/semantic.smk) or one list column ``codes``."""
    path = Path(path)
    try:
        df = pl.read_parquet(path).sort("item_id")
    except Exception as exc:
        raise InputError(path, f"cannot read semantic-ID codes ({type(exc).__name__}: {exc})") from exc
    col = next((c for c in ("codes", "semantic_id", "sid") if c in df.columns), None)
    levels = sorted((c for c in df.columns if c.startswith("code_") and c[5:].isdigit()), key=lambda c: int(c[5:]))
    if (col is None and not levels) or df.height != n_items or df["item_id"].to_list() != list(range(n_items)):
        raise InputError(path, f"needs item_id 0..{n_items - 1} and codes for all {n_items} items (has {df.height} rows, columns {df.columns})")
    if col is None:  # rules/semantic.smk layout: one column per level, code_0 .. code_L
        return df.select(levels).to_numpy().astype(np.int64)
    return np.asarray(df[col].to_list(), dtype=np.int64)


def prompt_set(data, titles, key: str, split: str, codes=None, numbering=None, **kw) -> list[dict]:
    """Prompt records for the ``{template}`` key ``<template id>-<item repr>[.<indexing>]`` and split.
    Numbered records (ID tokens, number text) show items in ``numbering`` (an ``ItemNumbering``,
    the one the key names) and name it (``item_numbering``)."""
    template_id, item_repr = parse_prompt_key(key, allow_indexing=numbering is not None)
    numbers = numbering.to_model if numbering is not None and item_repr in NUMBERED_REPRS else None
    records = build_prompts(data, item_catalog(titles, item_repr, codes, numbers), template_id, split, **kw)
    if numbers is not None:
        for r in records:
            r["item_numbering"] = numbering.scheme
    return records


def eval_rows(n: int, eval_users: int | None, seed: int) -> np.ndarray:
    """Seeded sample of test users (same sample for every model and training seed)."""
    if not eval_users or eval_users >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=eval_users, replace=False))


def select_records(records: list[dict], eval_users: int | None, seed: int) -> list[dict]:
    return [records[i] for i in eval_rows(len(records), eval_users, seed).tolist()]


def load_split_and_titles(split_files: dict[str, str], items_path: str | Path):
    """Leave-one-out sequences from the declared ``train``/``valid``/``test`` files, and item titles."""
    from llmrecbench.llm.prompts import load_item_titles
    from llmrecbench.pipelines.seqrec import load_sequences

    return load_sequences({**split_files, "item_table": str(items_path)}), load_item_titles(items_path)


def build_prompt_file(
    split_files: dict[str, str],
    items_path: str | Path,
    key: str,
    split: str,
    dest: str | Path,
    prompt_cfg: dict,
    codes_path: str | Path | None = None,
    numbering=None,
) -> int:
    """Rule ``build_llm_prompts``: write one prompt file; return its number of records."""
    from llmrecbench.llm.prompts import write_jsonl

    data, titles = load_split_and_titles(split_files, items_path)
    codes = read_codes(codes_path, data.n_items) if codes_path else None
    records = prompt_set(
        data, titles, key, split, codes=codes, numbering=numbering,
        max_history=prompt_cfg.get("max_history", 10),
        list_length=prompt_cfg.get("list_length", 10),
        max_examples_per_user=prompt_cfg.get("max_examples_per_user") if split == "train" else None,
    )
    write_jsonl(records, dest)
    return len(records)
