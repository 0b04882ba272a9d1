"""LLMRec zero-shot recommendation: greedy answer, output refinement and re-asks, grounding to items."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import polars as pl

from llmrecbench.evaluation import time_step
from llmrecbench.llm.generate import CausalLM
from llmrecbench.llm.prompts import REASK
from llmrecbench.llm.refine import EncodeFn, Grounder, RefinedList, refine
from llmrecbench.llm.loading import load_model, model_record
from llmrecbench.llm.cells import llm_cell, masked_histories
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.encoders import title_encoder
from llmrecbench.llm.fine_tuned import reproducibility

log = logging.getLogger("llmrecbench")


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
    histories = masked_histories(records, evaluation)
    skip = [frozenset(h) for h in histories] if histories is not None else [frozenset()] * len(records)

    def step(rows: slice) -> tuple[list[RefinedList], list[str]]:
        """Generation, refinement and re-asks of one batch of users."""
        batch, batch_skip = records[rows], skip[rows]
        answers = lm.generate_text([lm.prompt_ids(r["prompt"]) for r in batch], decode.zero_shot_max_new_tokens)
        refined = [refine(a, grounder, n_req, ex) for a, ex in zip(answers, batch_skip)]
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
                rl = refine(a, grounder, n_req, batch_skip[j])
                rl.attempts = attempt + 1
                refined[j], answers[j] = rl, a
        log.info("zero-shot: users %d-%d of %d", rows.start, rows.stop, len(records))
        return refined, answers

    outputs, latency = time_step(step, len(records), decode.batch_size, str(lm.device), decode.latency_users)
    results: list[RefinedList] = [r for refined, _ in outputs for r in refined]
    raw_answers: list[str] = [a for _, answers in outputs for a in answers]
    counters = refine_counters(results)
    counters["encoder"] = enc_name
    cell, topk = llm_cell(
        dataset=dataset, model_name=model_name, setting=setting, setting_label=setting_label,
        item_repr="text", seed=seed, records=records, lists=[r.item_ids for r in results],
        na=[r.is_na for r in results], evaluation=evaluation, indexing=indexing,
        protocol_extra={
            "template": records[0]["template"], "decoding": "greedy",
            "list_length": n_req, "max_reasks": decode.max_reasks, "grounding": f"exact|faiss>={decode.min_similarity}",
            "reproducibility": reproducibility(lm.device),
            **latency.protocol(),
        },
        model_rec=model_record(manifest), decode=DecodeConfig(**{**decode.__dict__, "list_length": n_req}),
        counters=counters, n_items=len(titles),
    )
    topk = topk.with_columns(pl.Series("answer", raw_answers))
    timing = latency.record("generation + refinement + re-asks per batch of users (llmrecbench.evaluation.Latency)")
    timing["n_users"] = len(records)
    return cell, topk, timing


def refine_counters(results: Sequence[RefinedList]) -> dict:
    gen = sum(r.n_generated for r in results)
    return {
        "n_na": int(sum(r.is_na for r in results)),
        "parse": {k: int(sum(r.parse == k for r in results)) for k in ("list", "repaired", "quoted", "lines", "none")},
        "generated_titles": int(gen),
        "grounded_exact": int(sum(r.n_exact for r in results)),
        "grounded_nearest": int(sum(r.n_nearest for r in results)),
        "invalid_items": int(sum(r.n_invalid for r in results)),
        "invalid_item_rate": float(sum(r.n_invalid for r in results) / gen) if gen else 0.0,
        "history_items_skipped": int(sum(r.n_history for r in results)),
        "reasked": int(sum(r.attempts > 1 for r in results)),
    }
