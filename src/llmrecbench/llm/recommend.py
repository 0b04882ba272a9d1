"""LLM recommenders end to end: the library calls behind the ``rules/llm.smk`` scripts.

The work is split by job: ``decoding`` (options), ``prompt_files`` (prompt records, codes,
user sample), ``encoders`` (title grounding), ``cells`` (cell and timing records), ``zero_shot``
(LLMRec zero-shot), ``item_decoding`` (ID / semantic-ID code tables for constrained beam
search), ``fine_tuned`` (adapter training and beam search from an adapter). This module holds
the rule entry points :func:`run_finetune` and :func:`run_evaluate` and re-exports the public
names for callers of the earlier single module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import polars as pl

from llmrecbench.errors import ConfigError, InputError
from llmrecbench.llm.settings import seen_or_unseen, template_list
from llmrecbench.provenance import file_digests
from llmrecbench.llm.cells import llm_cell, llm_timing  # noqa: F401 - re-exported
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.encoders import HASHED_ENCODER, title_encoder  # noqa: F401 - re-exported
from llmrecbench.llm.fine_tuned import adapter_cell, device_for, train_adapter
from llmrecbench.llm.item_decoding import ItemDecoder, item_beam_search  # noqa: F401 - re-exported
from llmrecbench.llm.prompt_files import (  # noqa: F401 - re-exported
    build_prompt_file,
    eval_rows,
    item_catalog,
    load_split_and_titles,
    prompt_set,
    read_codes,
    select_records,
)
from llmrecbench.llm.settings import setting_spec  # noqa: F401 - re-exported for rules/ and tests
from llmrecbench.llm.zero_shot import refine_counters, zero_shot_cell  # noqa: F401 - re-exported

log = logging.getLogger("llmrecbench")


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
    from llmrecbench.llm.prompts import get_template, load_item_titles, read_jsonl

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
    # fallback names where the dataset has no titles (ID / semantic-ID settings only need the count,
    # and templates that show no item, as review summarization's, need no titles at all)
    shows_items = any(get_template(t).shows_items for t in expected)
    titles = load_item_titles(items_path, require_text=spec["item_repr"] == "text" and shows_items)
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
    adapter_dir: str | Path | None = None,
    codes_path: str | Path | None = None,
    item_index: str | Path | None = None,
) -> tuple[dict, pl.DataFrame, dict]:
    """Rule ``evaluate_llm``: one cell from the test prompts (seeded user sample). ID-token prompts
    name the item numbering they were written in; it is read from ``item_index`` and recorded."""
    from llmrecbench.data.indexing import ItemNumbering
    from llmrecbench.llm.prompts import NUMBERED_REPRS, load_item_titles, read_jsonl

    titles = load_item_titles(items_path)
    codes = read_codes(codes_path, len(titles)) if codes_path else None
    eval_users = spec.get("eval_users", llm_cfg.get("eval_users"))  # a setting may evaluate fewer users
    records = select_records(read_jsonl(prompts_path), eval_users, llm_cfg.get("eval_sample_seed", 2022))
    if records and records[0]["template"] != spec["eval_template"]:
        raise InputError(prompts_path, f"prompts use template {records[0]['template']!r}, the setting tests {spec['eval_template']!r}")
    decode = DecodeConfig.from_spec({**llm_cfg.get("decoding", {}), **spec.get("decoding", {})})
    encoder = title_encoder(llm_cfg.get("grounding_encoder", "sentence-transformers/all-MiniLM-L6-v2"),
                            llm_cfg.get("encoder_cache", "resources/models/encoders")) if spec["item_repr"] == "text" else None
    scheme = records[0].get("item_numbering") if records else None
    numbering = None
    if scheme is not None:
        if item_index is None:
            raise InputError(prompts_path, f"ID prompts in the {scheme} numbering, but no item_index file was given")
        numbering = ItemNumbering.read(item_index, scheme, len(titles))
    indexing = scheme or ("canonical" if spec["item_repr"] in NUMBERED_REPRS else "none (items shown by text or semantic ID)")
    common = dict(dataset=dataset, model_name=model_name, setting=setting, setting_label=spec["setting"], seed=seed,
                  evaluation=evaluation, indexing=indexing, decode=decode, device=device_for())
    if spec["method"] == "zeroshot":
        cell, topk, timing = zero_shot_cell(model_dir, records, titles, encoder=encoder, **common)
    else:
        if adapter_dir is None:
            raise ConfigError(f"llm setting {setting!r} ({spec['method']}) needs an adapter")
        cell, topk, timing = adapter_cell(model_dir, adapter_dir, records, titles, codes=codes, encoder=encoder,
                                          numbers=numbering.to_model if numbering is not None else None, **common)
        cell["adapter"]["setting"] = spec.get("adapter_setting", setting)  # who trained it (adapter_from)
    cell["protocol"]["eval_users"] = eval_users
    # template = what the model was trained (or, zero-shot, prompted) with; eval_template = test prompts
    cell["protocol"]["template"] = spec["template"]
    cell["protocol"]["eval_template"] = records[0]["template"]
    cell["protocol"]["eval_template_seen"] = seen_or_unseen(cell["protocol"]["eval_template"])
    return cell, topk, timing
