"""LLM rows of direct recommendation: every user's 100 cached candidates scored by an LLM, then
ranked exactly as the conventional rows are (``metrics.candidates``: seeded tie-break).

How a setting scores the candidates follows its evaluation template's answer kind:

* ``yes_no`` (P5's yes/no family): one question per candidate; score = log P(yes) - log P(no)
  of the first answer token (``readers.yes_logit_margin``). Every candidate gets a score.
* ``candidate_item`` with item IDs or semantic IDs: trie-constrained beam search (RecBench CBS)
  over a trie built from *that user's* candidates, so every output is a candidate; the beam's
  items get their sequence log-probability, the rest tie at -inf below them (seeded shuffle).
* ``candidate_list`` (LLMRec zero-shot): a greedy answer read as a python list of titles (with
  re-asks), each title grounded to the user's candidates only (exact, else nearest under the
  sentence encoder at ``min_similarity``); listed candidates rank in the answer's order, the rest
  tie below them. A user with no grounded candidate is N/A and counts as a miss in the metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import polars as pl
import torch

from llmrecbench.errors import ConfigError
from llmrecbench.llm.cells import llm_timing
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.generate import CausalLM, Stopwatch
from llmrecbench.llm.prompts import REASK, ItemCatalog, get_template, iter_batches
from llmrecbench.llm.readers import yes_logit_margin, yes_no_token_ids
from llmrecbench.llm.refine import Grounder, refine
from llmrecbench.llm.task_prompts import render_direct
from llmrecbench.metrics import ranking_metrics
from llmrecbench.metrics.candidates import candidate_order, candidate_ranks
from llmrecbench.provenance import file_digests
from llmrecbench.tables.cells import make_cell

log = logging.getLogger("llmrecbench")


def score_yes_no(lm: CausalLM, records: list[dict], catalog: ItemCatalog, decode: DecodeConfig, watch: Stopwatch) -> np.ndarray:
    """[U, C] yes-minus-no log-probability margins, one question per (user, candidate).

    A user's questions differ only after the history, so the longest common token prefix of
    them is run once and its KV cache is shared (copied per chunk of ``pair_batch_size``
    questions); each question then runs only its own suffix (right-padded), and the margin is
    read at its last real token. Equal, up to float rounding, to one full forward per question.
    """
    import copy

    template = get_template(records[0]["template"])
    yes_ids, no_ids = yes_no_token_ids(lm.tok)
    C = len(records[0]["candidates"])
    scores = np.full((len(records), C), -np.inf)
    size = max(1, decode.pair_batch_size)
    for u, r in enumerate(records):
        with watch, torch.no_grad():
            ids = [lm.prompt_ids(render_direct(template, catalog, r["user_id"], r["history"], item=c)) for c in r["candidates"]]
            p = shared_prefix_length(ids) if lm.prefix_cacheable else 0
            if p == 0:  # nothing shared: one left-padded forward per chunk
                for start in range(0, C, size):
                    logits, _, _ = lm.forward(*lm.left_pad(ids[start : start + size]))
                    scores[u, start : start + size] = yes_logit_margin(logits[:, -1, :], yes_ids, no_ids).cpu().numpy()
                continue
            prefix = torch.as_tensor([ids[0][:p]], device=lm.device)
            _, cache, prefix_mask = lm.forward(prefix, torch.ones_like(prefix))
            for start in range(0, C, size):
                tails = [x[p:] for x in ids[start : start + size]]
                width = max(len(t) for t in tails)
                tail_ids = torch.full((len(tails), width), lm.tok.pad_token_id, dtype=torch.long)
                tail_mask = torch.zeros((len(tails), width), dtype=torch.long)
                for b, t in enumerate(tails):
                    tail_ids[b, : len(t)] = torch.as_tensor(t)
                    tail_mask[b, : len(t)] = 1
                chunk_cache = copy.deepcopy(cache)
                chunk_cache.batch_repeat_interleave(len(tails))
                logits, _, _ = lm.forward(
                    tail_ids.to(lm.device), tail_mask.to(lm.device), cache=chunk_cache,
                    past_mask=prefix_mask.expand(len(tails), -1), logits_to_keep=0,
                )
                last = torch.as_tensor([len(t) - 1 for t in tails], device=logits.device)
                at_last = logits[torch.arange(len(tails), device=logits.device), last]
                scores[u, start : start + len(tails)] = yes_logit_margin(at_last, yes_ids, no_ids).cpu().numpy()
        if u % 50 == 0:
            log.info("yes/no: %d/%d users, %.1f s", u + 1, len(records), watch.seconds)
    return scores


def shared_prefix_length(seqs: list[list[int]]) -> int:
    """Length of the longest common prefix of token sequences, leaving every sequence >= 1 own token."""
    n = min(len(s) for s in seqs) - 1
    first = seqs[0]
    for i in range(n):
        if any(s[i] != first[i] for s in seqs[1:]):
            return i
    return max(n, 0)


def score_candidate_trie(lm: CausalLM, records: list[dict], catalog: ItemCatalog, decode: DecodeConfig, watch: Stopwatch) -> tuple[np.ndarray, dict]:
    """[U, C] beam log-probabilities of the items CBS returns over each user's candidate trie (-inf elsewhere)."""
    from llmrecbench.llm.item_decoding import ItemDecoder, item_beam_search

    if catalog.item_repr == "text":
        raise ConfigError("direct candidate_item templates decode item IDs or semantic IDs; for titles use a yes_no template")
    dec = ItemDecoder(lm, catalog)
    C = len(records[0]["candidates"])
    K = min(decode.beam_width, C)
    scores = np.full((len(records), C), -np.inf)
    counters = {"hypotheses": 0, "invalid_items": 0}
    for u, r in enumerate(records):
        cands = list(r["candidates"])
        with watch:
            user_dec = dec.restricted(cands)
            hyps = item_beam_search(lm, user_dec, [lm.prompt_ids(r["prompt"])], K, K, constrained=True)[0]
        col = {c: j for j, c in enumerate(cands)}
        for item_id, score in hyps:
            counters["hypotheses"] += 1
            if item_id is None or item_id not in col:
                counters["invalid_items"] += 1
                continue
            scores[u, col[item_id]] = max(scores[u, col[item_id]], float(score))
        if u % 100 == 0:
            log.info("candidate trie: %d/%d users, %.1f s", u + 1, len(records), watch.seconds)
    return scores, counters


def score_candidate_list(lm: CausalLM, records: list[dict], catalog: ItemCatalog, decode: DecodeConfig, watch: Stopwatch,
                         encoder, seed: int) -> tuple[np.ndarray, list[str], dict]:
    """[U, C] scores from a generated, grounded title list (L - position for listed candidates, -inf for the rest)."""
    encode, enc_name = encoder
    titles = catalog.titles
    emb = np.asarray(encode(list(titles)), dtype=np.float32)  # every catalogue title once
    C = len(records[0]["candidates"])
    n_req = decode.zero_shot_items
    scores = np.full((len(records), C), -np.inf)
    answers_out: list[str] = []
    counters = {"n_na": 0, "generated_titles": 0, "grounded_exact": 0, "grounded_nearest": 0, "invalid_items": 0, "reasked": 0,
                "encoder": enc_name}
    for start in range(0, len(records), decode.batch_size):
        batch = records[start : start + decode.batch_size]
        with watch:
            grounders = [Grounder([titles[c] for c in r["candidates"]], encode, min_similarity=decode.min_similarity,
                                  title_embeddings=emb[r["candidates"]]) for r in batch]
            answers = lm.generate_text([lm.prompt_ids(r["prompt"]) for r in batch], decode.zero_shot_max_new_tokens)
            refined = [refine(a, g, n_req) for a, g in zip(answers, grounders)]
            for attempt in range(1, decode.max_reasks + 1):
                todo = [j for j, rl in enumerate(refined) if rl.is_na]
                if not todo:
                    break
                follow = REASK.format(n=n_req)
                again = lm.generate_text(
                    [lm.prompt_ids(batch[j]["prompt"], [(answers[j], follow)]) for j in todo],
                    decode.zero_shot_max_new_tokens, do_sample=True, temperature=decode.reask_temperature,
                    seed=seed * 100 + attempt,
                )
                for j, a in zip(todo, again):
                    counters["reasked"] += attempt == 1
                    refined[j], answers[j] = refine(a, grounders[j], n_req), a
        for k, rl in enumerate(refined):
            u = start + k
            for pos, local in enumerate(rl.item_ids):  # grounded to positions in the user's candidate list
                scores[u, local] = n_req - pos
            counters["n_na"] += rl.is_na
            counters["generated_titles"] += rl.n_generated
            counters["grounded_exact"] += rl.n_exact
            counters["grounded_nearest"] += rl.n_nearest
            counters["invalid_items"] += rl.n_invalid
        answers_out += answers
        log.info("zero-shot direct: %d/%d users, %.1f s", len(answers_out), len(records), watch.seconds)
    counters["invalid_item_rate"] = counters["invalid_items"] / max(1, counters["generated_titles"])
    return scores, answers_out, counters


def direct_llm_cell(
    lm: CausalLM,
    records: list[dict],
    catalog: ItemCatalog,
    *,
    identity: dict,
    spec: dict,
    decode: DecodeConfig,
    options: dict,
    candidates_path: str | Path,
    model_rec: dict,
    encoder=None,
) -> tuple[dict, pl.DataFrame, dict]:
    """One direct-task LLM cell (module docstring) from the test prompt records."""
    answer = get_template(records[0]["template"]).answer
    warm = [lm.prompt_ids(records[0]["prompt"])]
    with torch.no_grad():
        lm.forward(*lm.left_pad(warm))  # warm-up
    watch = Stopwatch(lm.device)
    answers = None
    counters: dict = {}
    if answer == "yes_no":
        scores = score_yes_no(lm, records, catalog, decode, watch)
        how = "yes/no: log P(yes) - log P(no) of the first answer token, one prompt per candidate"
    elif answer == "candidate_item":
        scores, counters = score_candidate_trie(lm, records, catalog, decode, watch)
        how = f"beam{min(decode.beam_width, scores.shape[1])}+trie over the user's candidates (CBS)"
    elif answer == "candidate_list":
        scores, answers, counters = score_candidate_list(lm, records, catalog, decode, watch, encoder, identity["seed"])
        how = "greedy python list of titles grounded to the user's candidates (exact|faiss), re-asks"
    else:
        raise ConfigError(f"template {records[0]['template']!r} answers {answer!r}, which the direct task cannot read")
    cands = np.asarray([r["candidates"] for r in records], dtype=np.int64)
    targets = np.asarray([r["target_item_id"] for r in records], dtype=np.int64)
    tie_seed = int(options["tie_seed"])
    ranks = candidate_ranks(scores, cands, targets, tie_seed)
    na = np.isneginf(scores).all(axis=1)
    na_rate = float(na.mean()) if len(na) else 0.0
    metrics = ranking_metrics(ranks, options["ks"])
    status, note = "ok", ""
    if na_rate >= decode.na_status_threshold:
        status, note = "n/a", f"N/A: {na_rate:.0%} of users got no candidate from the answer (LLMRec convention)"
    protocol = {
        "split": "loo",
        "ranking": "sampled_candidates",
        "n_candidates": int(cands.shape[1]),
        "candidate_seed": int(options["candidate_seed"]),
        "tie_break": f"seeded shuffle (tie_seed={tie_seed}); unscored candidates tie below the scored ones",
        "scoring": how,
        "na_policy": "an N/A user (no candidate scored) counts as a miss",
    }
    cell = make_cell(
        dataset=identity["dataset"], task="direct", model=identity["model"], model_class="llm",
        item_repr=catalog.item_repr, setting=spec["setting"], seed=identity["seed"], protocol=protocol,
        metrics=metrics if status == "ok" else {}, status=status, note=note, setting_key=identity["setting"],
        metrics_if_counted=metrics, n_users=len(records), n_items=catalog.n_items,
        candidates={"path": str(candidates_path), "sha256": file_digests([candidates_path])[str(candidates_path)]},
        extra_columns={"na_rate": na_rate}, llm=model_rec, counters=counters,
    )
    order = candidate_order(scores, tie_seed)
    rows = pl.DataFrame(
        {
            "user_id": pl.Series([r["user_id"] for r in records], dtype=pl.Int32),
            "target_item_id": pl.Series(targets, dtype=pl.Int32),
            "rank": pl.Series(ranks.astype(np.int32), dtype=pl.Int32),
            "ranked_candidates": np.take_along_axis(cands, order, axis=1).astype(np.int32),
            "scores": np.take_along_axis(scores, order, axis=1).astype(np.float32),
            "na": pl.Series(na, dtype=pl.Boolean),
        },
        schema_overrides={"ranked_candidates": pl.Array(pl.Int32, cands.shape[1]), "scores": pl.Array(pl.Float32, cands.shape[1])},
    )
    if answers is not None:
        rows = rows.with_columns(pl.Series("answer", answers))
    timing = llm_timing(watch.seconds, len(records), decode.pair_batch_size if answer == "yes_no" else decode.batch_size,
                        lm.device, f"wall time of {how} over all test users after a warm-up, divided by users")
    return cell, rows, timing
