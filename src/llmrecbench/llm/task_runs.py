"""Rule entry points of the rating and direct LLM rows (``build_llm_prompts``, ``evaluate_llm``),
called through their :class:`~llmrecbench.tasks.base.Task` (seqrec's are in ``llm.recommend``).

Each takes the job's declared input files by name (``train``/``valid``/``test`` split files,
``item_table``, ``user_table``, ``codes``, the stage's ``*_candidates``, ``prompts``, ``model``,
``adapter``) and never looks into a folder for anything else.
"""

from __future__ import annotations

import logging
from pathlib import Path

from llmrecbench.errors import ConfigError, InputError
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.prompt_files import item_catalog, read_codes, select_records
from llmrecbench.llm.prompts import ItemCatalog, load_item_titles, parse_prompt_key, read_jsonl, write_jsonl
from llmrecbench.llm.settings import seen_or_unseen

log = logging.getLogger("llmrecbench")


def catalog_from_inputs(inputs: dict, item_repr: str) -> ItemCatalog:
    """The item catalogue of a job: titles (item_repr text needs them), else ``item <raw id>`` names."""
    titles = load_item_titles(inputs["item_table"], require_text=item_repr == "text")
    codes = read_codes(inputs["codes"], len(titles)) if inputs.get("codes") else None
    return item_catalog(titles, item_repr, codes)


def build_rating_prompt_file(inputs: dict, key: str, split: str, dest: str | Path, *, category: str | None = None) -> int:
    """One rating prompt file: every review of ``split`` under template-repr ``key``."""
    from llmrecbench.llm.task_prompts import rating_prompts
    from llmrecbench.pipelines.rating import load_part

    template_id, item_repr = parse_prompt_key(key)
    records = rating_prompts(load_part(inputs, split), catalog_from_inputs(inputs, item_repr), template_id, split, category=category)
    write_jsonl(records, dest)
    return len(records)


def build_direct_prompt_file(inputs: dict, key: str, split: str, dest: str | Path, prompt_cfg: dict, options: dict) -> int:
    """One direct prompt file: valid / test users with their cached candidates, or training prompts."""
    from llmrecbench.data.candidates import read_candidates
    from llmrecbench.llm.task_prompts import direct_prompts
    from llmrecbench.pipelines.seqrec import load_sequences

    template_id, item_repr = parse_prompt_key(key)
    data = load_sequences(inputs)
    cands = read_candidates(inputs[f"{split}_candidates"], data, stage=split) if split != "train" else None
    records = direct_prompts(
        data, catalog_from_inputs(inputs, item_repr), template_id, split, candidates=cands,
        max_history=prompt_cfg.get("max_history", 10), list_length=prompt_cfg.get("list_length", 10),
        max_examples_per_user=prompt_cfg.get("max_examples_per_user"), n_negatives=int(options["n_negatives"]),
        negatives_per_positive=int(prompt_cfg["yes_no_negatives"]), seed=int(options["candidate_seed"]),
    )
    write_jsonl(records, dest)
    return len(records)


def open_lm(model_dir: str | Path, adapter_dir: str | Path | None, device: str):
    """(CausalLM, model record, adapter record or None): the base model, or the base + a saved adapter."""
    from llmrecbench.llm.generate import CausalLM
    from llmrecbench.llm.loading import load_model, model_record

    if adapter_dir is None:
        model, tok, manifest = load_model(model_dir, device=device)
        return CausalLM(model, tok, chat=manifest.get("chat_template", True), device=device), model_record(manifest), None
    from llmrecbench.llm.finetune import load_adapter

    lm, meta = load_adapter(model_dir, adapter_dir, device=device)
    return lm, meta["base_model"], {"method": meta["method"], "train_fingerprint": meta.get("train_fingerprint")}


def read_test_prompts(path: str | Path, spec: dict) -> list[dict]:
    """Every test prompt record of ``path``, checked to be of the setting's evaluation template."""
    records = read_jsonl(path)
    if not records:
        raise InputError(path, "no test prompts")
    if records[0]["template"] != spec["eval_template"]:
        raise InputError(path, f"prompts use template {records[0]['template']!r}, the setting tests {spec['eval_template']!r}")
    return records


def test_records(inputs: dict, spec: dict, llm_cfg: dict) -> list[dict]:
    """The seeded sample of test prompt records (users, or rating pairs) the setting evaluates."""
    eval_users = spec.get("eval_users", llm_cfg.get("eval_users"))
    return select_records(read_test_prompts(inputs["prompts"], spec), eval_users, llm_cfg.get("eval_sample_seed", 2022))


def _finish(cell: dict, spec: dict, adapter: dict | None, eval_users) -> dict:
    if adapter is not None:
        cell["adapter"] = {**adapter, "setting": spec.get("adapter_setting")}
    cell["protocol"]["eval_users"] = eval_users
    cell["protocol"]["template"] = spec["template"]  # trained (or prompted) with
    cell["protocol"]["eval_template"] = spec["eval_template"]  # test prompts
    cell["protocol"]["eval_template_seen"] = seen_or_unseen(cell["protocol"]["eval_template"])
    return cell


def _setup(inputs: dict, spec: dict, llm_cfg: dict, select=test_records):
    """(test records chosen by ``select``, decoding, LM, model record, adapter record)."""
    from llmrecbench.llm.fine_tuned import device_for

    if spec["method"] != "zeroshot" and not inputs.get("adapter"):
        raise ConfigError(f"llm setting {spec['setting']!r} ({spec['method']}) needs an adapter")
    records = select(inputs, spec, llm_cfg)
    decode = DecodeConfig.from_spec({**llm_cfg.get("decoding", {}), **spec.get("decoding", {})})
    lm, model_rec, adapter = open_lm(inputs["model"], inputs.get("adapter"), device_for())
    return records, decode, lm, model_rec, adapter


def evaluate_rating_llm(inputs: dict, spec: dict, llm_cfg: dict, options: dict, *, identity: dict):
    """Rule ``evaluate_llm`` for the rating task: (cell, predictions, timing)."""
    from llmrecbench.llm.rating_rows import rating_llm_cell
    from llmrecbench.pipelines.common import count_rows
    from llmrecbench.pipelines.rating import load_part

    records, decode, lm, model_rec, adapter = _setup(inputs, spec, llm_cfg)
    train_mean = load_part(inputs, "train").global_mean()
    cell, rows, timing = rating_llm_cell(
        lm, records, identity=identity, spec=spec, decode=decode, options=options, train_mean=train_mean,
        model_rec=model_rec, n_items=count_rows(inputs["item_table"]),
    )
    return _finish(cell, spec, adapter, spec.get("eval_users", llm_cfg.get("eval_users"))), rows, timing


def evaluate_direct_llm(inputs: dict, spec: dict, llm_cfg: dict, options: dict, *, identity: dict):
    """Rule ``evaluate_llm`` for the direct task: (cell, ranked candidates, timing)."""
    from llmrecbench.llm.direct_rows import direct_llm_cell
    from llmrecbench.llm.encoders import title_encoder
    from llmrecbench.llm.prompts import get_template

    records, decode, lm, model_rec, adapter = _setup(inputs, spec, llm_cfg)
    catalog = catalog_from_inputs(inputs, spec["item_repr"])
    encoder = None
    if get_template(spec["eval_template"]).answer == "candidate_list":
        encoder = title_encoder(llm_cfg.get("grounding_encoder", "sentence-transformers/all-MiniLM-L6-v2"),
                                llm_cfg.get("encoder_cache", "resources/models/encoders"))
    cell, rows, timing = direct_llm_cell(
        lm, records, catalog, identity=identity, spec=spec, decode=decode, options=options,
        candidates_path=inputs["test_candidates"], model_rec=model_rec, encoder=encoder,
    )
    return _finish(cell, spec, adapter, spec.get("eval_users", llm_cfg.get("eval_users"))), rows, timing


def build_text_prompt_file(task, inputs: dict, key: str, split: str, dest: str | Path, prompt_cfg: dict) -> int:
    """One explanation / review prompt file: every pair of the task's ``split`` part under ``key``."""
    from llmrecbench.llm.prompts import get_template
    from llmrecbench.llm.task_prompts import text_prompts

    template_id, item_repr = parse_prompt_key(key)
    pairs = task.pairs(inputs[split])
    if get_template(template_id).shows_items:
        catalog = catalog_from_inputs(inputs, item_repr)
    else:  # review templates show no item: no titles needed, whatever the dataset provides
        titles = load_item_titles(inputs["item_table"], require_text=False)
        catalog = item_catalog(titles, item_repr, None)
    records = text_prompts(pairs, catalog, template_id, split, task.name, max_review_words=int(prompt_cfg["max_review_words"]))
    write_jsonl(records, dest)
    return len(records)


def evaluate_text_llm(task, inputs: dict, spec: dict, llm_cfg: dict, options: dict, *, identity: dict):
    """Rule ``evaluate_llm`` for the explanation and review tasks: (cell, generations, timing)."""
    from llmrecbench.llm.text_rows import text_llm_cell
    from llmrecbench.pipelines.text import sentence_encoder

    records, decode, lm, model_rec, adapter = _setup(inputs, spec, llm_cfg)
    encode, encoder_rec = sentence_encoder(options["encoder"], options["encoder_cache"])
    cell, rows, timing = text_llm_cell(
        lm, records, task, task.pairs(inputs["test"]), identity=identity, spec=spec, decode=decode,
        encode=encode, encoder_rec=encoder_rec, model_rec=model_rec,
    )
    return _finish(cell, spec, adapter, spec.get("eval_users", llm_cfg.get("eval_users"))), rows, timing


def build_ctr_prompt_file(inputs: dict, key: str, split: str, dest: str | Path, prompt_cfg: dict) -> int:
    """One CTR prompt file: every labelled pair of the task's ``split`` part under ``key``."""
    import polars as pl

    from llmrecbench.llm.task_prompts import ctr_prompts

    template_id, item_repr = parse_prompt_key(key)
    pairs = pl.read_parquet(inputs[split])
    records = ctr_prompts(pairs, catalog_from_inputs(inputs, item_repr), template_id, split, max_history=int(prompt_cfg["ctr_max_history"]))
    write_jsonl(records, dest)
    return len(records)


def ctr_test_records(inputs: dict, spec: dict, llm_cfg: dict) -> list[dict]:
    """Every test pair of a seeded sample of ``eval_users`` test users (whole users, so each keeps
    both labels and the per-user GAUC stays defined)."""
    import numpy as np

    from llmrecbench.llm.prompt_files import eval_rows

    records = read_test_prompts(inputs["prompts"], spec)
    users = np.unique([r["user_id"] for r in records])
    keep = set(users[eval_rows(len(users), spec.get("eval_users", llm_cfg.get("eval_users")), llm_cfg["eval_sample_seed"])].tolist())
    return [r for r in records if r["user_id"] in keep]


def evaluate_ctr_llm(inputs: dict, spec: dict, llm_cfg: dict, options: dict, *, identity: dict):
    """Rule ``evaluate_llm`` for the CTR task: (cell, predictions, timing)."""
    from llmrecbench.llm.ctr_rows import ctr_llm_cell
    from llmrecbench.pipelines.common import count_rows

    records, decode, lm, model_rec, adapter = _setup(inputs, spec, llm_cfg, select=ctr_test_records)
    cell, rows, timing = ctr_llm_cell(
        lm, records, identity=identity, spec=spec, decode=decode, model_rec=model_rec,
        n_items=count_rows(inputs["item_table"]),
    )
    return _finish(cell, spec, adapter, spec.get("eval_users", llm_cfg.get("eval_users"))), rows, timing
