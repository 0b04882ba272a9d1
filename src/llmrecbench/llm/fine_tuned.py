"""Fine-tuned LLMs: adapter training on prompt records, and beam search (title, or trie-constrained
over item / semantic-ID tokens) from a saved adapter to a ranked list and a cell."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import polars as pl
import torch

from llmrecbench.llm.finetune import FinetuneConfig, finetune, load_adapter
from llmrecbench.evaluation import time_step
from llmrecbench.llm.refine import EncodeFn, Grounder
from llmrecbench.llm.cells import llm_cell, masked_histories
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.encoders import title_encoder
from llmrecbench.llm.item_decoding import ItemDecoder, item_beam_search
from llmrecbench.llm.prompt_files import item_catalog
from llmrecbench.llm.prompts import ItemCatalog
from llmrecbench.llm.readers import read_item_number

log = logging.getLogger("llmrecbench")


def _add_item(item_id: int, skip: frozenset, items: list[int], count: dict) -> None:
    """Append a read item to a user's list unless it is a history item or already listed (counted)."""
    if item_id in skip:
        count["history_items_skipped"] += 1
    elif item_id in items:
        count["duplicates"] += 1
    else:
        items.append(item_id)


def adapter_cell(
    model_dir: str | Path,
    adapter_dir: str | Path,
    records: list[dict],
    titles: Sequence[str],
    *,
    dataset: str,
    model_name: str,
    setting: str,
    setting_label: str,
    seed: int,
    evaluation: dict,
    indexing: str,
    decode: DecodeConfig,
    codes: np.ndarray | None = None,
    encoder: tuple[EncodeFn, dict] | None = None,
    device: str = "cpu",
    numbers: np.ndarray | None = None,
) -> tuple[dict, pl.DataFrame, dict]:
    """Fine-tuned model on test prompt records: beam search -> ranked item list -> cell.
    ``numbers``: the numbering the ID-token prompts were written in (item i is ``<item_{numbers[i]}>``)."""
    lm, meta = load_adapter(model_dir, adapter_dir, device=device)
    item_repr = records[0]["item_repr"]
    catalog = item_catalog(titles, item_repr, codes, numbers)
    K, L = decode.beam_width, decode.list_length
    text_beams = item_repr in ("text", "number_text")  # free beam search over text, then read items
    if item_repr == "text":
        encode, enc_name = encoder or title_encoder()
        grounder = Grounder(titles, encode, min_similarity=decode.min_similarity)
        max_new = decode.max_new_tokens
    elif item_repr == "number_text":  # P5's protocol: unconstrained beams, each read as an item number
        enc_name = None
        canonical_of = np.arange(len(titles)) if numbers is None else np.argsort(np.asarray(numbers))
        max_new = decode.number_max_new_tokens
    else:
        dec = ItemDecoder(lm, catalog)
        enc_name = None
    # history items are skipped before a list is cut to L: ID / semantic-ID search masks their trie
    # paths (L other items remain); title beams return all K hypotheses, history ones dropped
    histories = masked_histories(records, evaluation)
    counters = {"hypotheses": 0, "invalid_items": 0, "grounded_exact": 0, "grounded_nearest": 0, "duplicates": 0,
                "history_items_skipped": 0}

    def step(rows: slice) -> tuple[list[list[int]], list[bool], list[list[str]], dict]:
        """Beam search and mapping to items of one batch of users (and its counters)."""
        batch = records[rows]
        exclude = None if histories is None else histories[rows]
        count = dict.fromkeys(counters, 0)
        lists, na, generated = [], [], []
        prompts = [lm.prompt_ids(r["prompt"]) for r in batch]
        if text_beams:
            hyps = lm.beam_search(prompts, beam_width=K, num_return=K if exclude is not None else L,
                                  max_new_tokens=max_new, length_penalty=decode.length_penalty)
        else:
            hyps = item_beam_search(lm, dec, prompts, K, min(L, K), decode.constrained, exclude=exclude)
        for u, user_hyps in enumerate(hyps):
            skip = frozenset(exclude[u]) if exclude is not None else frozenset()
            items: list[int] = []
            if text_beams:
                texts, seen = [], set()
                for h in user_hyps:
                    t = lm.decode(h.tokens)
                    if t and t not in seen:
                        seen.add(t)
                        texts.append(t)
                generated.append(texts)
            if item_repr == "number_text":
                for t in texts:
                    count["hypotheses"] += 1
                    index = read_item_number(t, len(titles))
                    if index is None:
                        count["invalid_items"] += 1
                        continue
                    count["grounded_exact"] += 1
                    # the 1-based index -> model id -> canonical item
                    _add_item(int(canonical_of[index - 1]), skip, items, count)
            elif item_repr == "text":
                for group, how, _ in (grounder.ground(texts) if texts else []):
                    count["hypotheses"] += 1
                    if not group:
                        count["invalid_items"] += 1
                        continue
                    count["grounded_exact" if how == "exact" else "grounded_nearest"] += 1
                    for item_id in group:  # every item sharing the title, lowest id first
                        _add_item(item_id, skip, items, count)
            else:
                for item_id, _score in user_hyps:
                    count["hypotheses"] += 1
                    if item_id is None:
                        count["invalid_items"] += 1
                    elif item_id in skip:
                        count["history_items_skipped"] += 1
                    elif item_id not in items:
                        items.append(item_id)
            lists.append(items[:L])
            na.append(not items)  # N/A after masking: no non-history item
        log.info("%s: users %d-%d of %d", item_repr, rows.start, rows.stop, len(records))
        return lists, na, generated, count

    outputs, latency = time_step(step, len(records), decode.batch_size, str(lm.device), decode.latency_users)
    lists = [x for o in outputs for x in o[0]]
    na = [x for o in outputs for x in o[1]]
    generated = [x for o in outputs for x in o[2]]  # decoded beams (text representation), for inspection
    for o in outputs:
        for k, v in o[3].items():
            counters[k] += v
    counters["invalid_item_rate"] = counters["invalid_items"] / max(1, counters["hypotheses"])
    if enc_name:
        counters["encoder"] = enc_name
    decoding = f"beam{K}" + ("" if item_repr == "text" else "+read_item_number" if item_repr == "number_text"
                             else "+trie(CBS)" if decode.constrained else "+codes")
    cell, topk = llm_cell(
        dataset=dataset, model_name=model_name, setting=setting, setting_label=setting_label,
        item_repr=item_repr, seed=seed, records=records, lists=lists, na=na, evaluation=evaluation,
        indexing=indexing,
        protocol_extra={"template": records[0]["template"], "decoding": decoding, "list_length": L,
                        "reproducibility": reproducibility(lm.device), **latency.protocol()},
        model_rec=meta["base_model"], decode=decode, counters=counters, n_items=len(titles),
    )
    cell["adapter"] = {"method": meta["method"], "train_fingerprint": meta.get("train_fingerprint")}
    if generated:
        topk = topk.with_columns(pl.Series("generated", generated, dtype=pl.List(pl.String)))
    timing = latency.record(f"{decoding} beam search + mapping to items per batch of users (llmrecbench.evaluation.Latency)")
    timing["n_users"] = len(records)
    timing["beam_width"] = K
    return cell, topk, timing


def train_adapter(
    model_dir: str | Path,
    train_records: list[dict],
    titles: Sequence[str],
    spec: dict,
    seed: int,
    adapter_dir: str | Path,
    checkpoint_root: str | Path,
    codes: np.ndarray | None = None,
    device: str = "cpu",
) -> dict:
    """Fine-tune per ``spec['finetune']`` on training prompts; new tokens follow the item repr."""
    item_repr = train_records[0]["item_repr"]
    catalog = item_catalog(titles, item_repr, codes)
    cfg = FinetuneConfig.from_spec({k: v for k, v in spec.get("finetune", {}).items()}, seed)
    return finetune(
        model_dir, train_records, catalog.new_tokens(), cfg, adapter_dir, checkpoint_root, device=device,
        extra_meta={"item_repr": item_repr, "template": "+".join(dict.fromkeys(r["template"] for r in train_records))},
        entity_strings=catalog_entities(catalog) if cfg.objective == "blank_infilling" else (),
    )


def catalog_entities(catalog: ItemCatalog) -> list[str]:
    """Every item as prompts show it (blank infilling's item entities; user ids are found by pattern)."""
    return [catalog.render(i) for i in range(catalog.n_items)]


def device_for(resources_gpu: int | None = None) -> str:
    """``cuda`` where a GPU is visible (and the rule asked for one), else ``cpu``. On CUDA the
    deterministic switches are set: ``CUBLAS_WORKSPACE_CONFIG`` (set by ``rule_context`` before
    cuBLAS starts) and ``torch.use_deterministic_algorithms`` (warn-only for ops without a
    deterministic kernel); :func:`reproducibility` records what holds."""
    if torch.cuda.is_available() and (resources_gpu is None or resources_gpu > 0):
        torch.use_deterministic_algorithms(True, warn_only=True)
        return "cuda"
    return "cpu"


def reproducibility(device: str) -> str:
    """How far a cell's outputs are bit-reproducible on ``device`` (one label for its protocol)."""
    import os

    if str(device).startswith("cuda"):
        on = os.environ.get("CUBLAS_WORKSPACE_CONFIG") in (":4096:8", ":16:8") and torch.are_deterministic_algorithms_enabled()
        return "cuda, deterministic switches on (same GPU model and versions)" if on else "cuda, not bit-reproducible"
    return "cpu, bit-reproducible (fixed seed and threads)"
