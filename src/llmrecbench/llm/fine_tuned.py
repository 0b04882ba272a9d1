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
from llmrecbench.llm.generate import Stopwatch
from llmrecbench.llm.prompts import iter_batches
from llmrecbench.llm.refine import EncodeFn, Grounder
from llmrecbench.llm.cells import llm_cell, llm_timing
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.encoders import title_encoder
from llmrecbench.llm.item_decoding import ItemDecoder, item_beam_search
from llmrecbench.llm.prompt_files import item_catalog

log = logging.getLogger("llmrecbench")


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
) -> tuple[dict, pl.DataFrame, dict]:
    """Fine-tuned model on test prompt records: beam search -> ranked item list -> cell."""
    lm, meta = load_adapter(model_dir, adapter_dir, device=device)
    item_repr = records[0]["item_repr"]
    catalog = item_catalog(titles, item_repr, codes)
    K, L = decode.beam_width, decode.list_length
    if item_repr == "text":
        encode, enc_name = encoder or title_encoder()
        grounder = Grounder(titles, encode, min_similarity=decode.min_similarity)
        max_new = decode.max_new_tokens
    else:
        dec = ItemDecoder(lm, catalog)
        enc_name = None
    warm = [lm.prompt_ids(records[0]["prompt"])]
    if item_repr == "text":
        lm.beam_search(warm, beam_width=2, num_return=1, max_new_tokens=1)  # warm-up
    else:
        item_beam_search(lm, dec, warm, 2, 1, decode.constrained)
    watch = Stopwatch(lm.device)
    lists: list[list[int]] = []
    na: list[bool] = []
    generated: list[list[str]] = []  # decoded beams (text representation), for inspection
    counters = {"hypotheses": 0, "invalid_items": 0, "grounded_exact": 0, "grounded_nearest": 0, "duplicates": 0}
    for batch in iter_batches(records, decode.batch_size):
        with watch:
            prompts = [lm.prompt_ids(r["prompt"]) for r in batch]
            if item_repr == "text":
                hyps = lm.beam_search(prompts, beam_width=K, num_return=L, max_new_tokens=max_new,
                                      length_penalty=decode.length_penalty)
            else:
                hyps = item_beam_search(lm, dec, prompts, K, min(L, K), decode.constrained)
            for user_hyps in hyps:
                items: list[int] = []
                if item_repr == "text":
                    texts, seen = [], set()
                    for h in user_hyps:
                        t = lm.decode(h.tokens)
                        if t and t not in seen:
                            seen.add(t)
                            texts.append(t)
                    generated.append(texts)
                    grounded = grounder.ground(texts) if texts else []
                    for item_id, how, _ in grounded:
                        counters["hypotheses"] += 1
                        if item_id is None:
                            counters["invalid_items"] += 1
                        else:
                            counters["grounded_exact" if how == "exact" else "grounded_nearest"] += 1
                            if item_id in items:
                                counters["duplicates"] += 1
                            else:
                                items.append(item_id)
                else:
                    for item_id, _score in user_hyps:
                        counters["hypotheses"] += 1
                        if item_id is None:
                            counters["invalid_items"] += 1
                        elif item_id not in items:
                            items.append(item_id)
                lists.append(items[:L])
                na.append(not items)
        log.info("%s: %d/%d users, %.1f s", item_repr, len(lists), len(records), watch.seconds)
    counters["invalid_item_rate"] = counters["invalid_items"] / max(1, counters["hypotheses"])
    if enc_name:
        counters["encoder"] = enc_name
    decoding = f"beam{K}" + ("" if item_repr == "text" else "+trie(CBS)" if decode.constrained else "+codes")
    cell, topk = llm_cell(
        dataset=dataset, model_name=model_name, setting=setting, setting_label=setting_label,
        item_repr=item_repr, seed=seed, records=records, lists=lists, na=na, evaluation=evaluation,
        indexing=indexing,
        protocol_extra={"template": records[0]["template"], "decoding": decoding, "list_length": L},
        model_rec=meta["base_model"], decode=decode, counters=counters, n_items=len(titles),
    )
    cell["adapter"] = {"method": meta["method"], "train_fingerprint": meta.get("train_fingerprint")}
    if generated:
        topk = topk.with_columns(pl.Series("generated", generated, dtype=pl.List(pl.String)))
    timing = llm_timing(watch.seconds, len(records), decode.batch_size, lm.device,
                     f"wall time of {decoding} beam search + mapping to items over all users after a warm-up, "
                     "divided by users (CUDA synchronised on GPU)")
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
    )


def device_for(resources_gpu: int | None = None) -> str:
    return "cuda" if torch.cuda.is_available() and (resources_gpu is None or resources_gpu > 0) else "cpu"
