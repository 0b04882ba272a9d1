"""LLM rows of the text-generation tasks (explanation, review): one greedy sentence per test pair.

Each test prompt record is answered greedily with up to ``text_max_new_tokens`` new tokens; the
answer reader (:func:`llmrecbench.llm.readers.read_sentence`) keeps the first line without a label
or quotes. Nothing is N/A: an answer with no text is an empty generation and scores zero, and the
cell counts them (``counters.empty_generations``). The metrics are the conventional rows' columns,
computed by the same function on the same references
(:func:`llmrecbench.pipelines.text.score_generations`), over the sampled pairs when
``llm.eval_users`` samples them (the cell's ``protocol.eval_users`` says how many).
``generations.parquet`` holds user_id, item_id, reference, generated (+ feature) and the raw
``answer``.
"""

from __future__ import annotations

import logging

import polars as pl

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.errors import InputError
from llmrecbench.llm.cells import llm_timing
from llmrecbench.llm.decoding import DecodeConfig
from llmrecbench.llm.generate import CausalLM, Stopwatch
from llmrecbench.llm.prompts import iter_batches
from llmrecbench.llm.readers import read_sentence
from llmrecbench.tables.cells import make_cell

log = logging.getLogger("llmrecbench")


def sampled_pairs(test: TextPairs, records: list[dict]) -> TextPairs:
    """The test pairs the records ask about (their ``row``), in the records' order; a record whose
    ids or reference differ from its row of the test part is refused in one line."""
    rows = [int(r["row"]) for r in records]
    bad = next((r for r in records if not 0 <= int(r["row"]) < test.n), None)
    if bad is not None:
        raise InputError(test.path, f"a prompt record points at row {bad['row']}, beyond the {test.n} test pairs")
    for r in records:
        k = int(r["row"])
        if (r["user_id"], r["item_id"], r["target"]) != (test.users[k], test.items[k], test.references[k]):
            raise InputError(test.path, f"row {k} does not match the prompt record of user {r['user_id']}, item {r['item_id']}")
    pick = lambda values: None if values is None else [values[k] for k in rows]  # noqa: E731
    return TextPairs(
        users=pick(test.users), items=pick(test.items), ratings=pick(test.ratings), sources=pick(test.sources),
        references=pick(test.references), features=pick(test.features), path=test.path,
    )


def text_llm_cell(
    lm: CausalLM,
    records: list[dict],
    task,
    test: TextPairs,
    *,
    identity: dict,
    spec: dict,
    decode: DecodeConfig,
    encode,
    encoder_rec: dict | None,
    model_rec: dict,
) -> tuple[dict, pl.DataFrame, dict]:
    """One explanation / review LLM cell (module docstring) from the test prompt records."""
    from llmrecbench.pipelines.text import generations_frame, score_generations, text_protocol

    pairs = sampled_pairs(test, records)
    lm.generate_text([lm.prompt_ids(records[0]["prompt"])], max_new_tokens=1)  # warm-up
    watch = Stopwatch(lm.device)
    answers: list[str] = []
    for batch in iter_batches(records, decode.batch_size):
        with watch:
            answers += lm.generate_text([lm.prompt_ids(r["prompt"]) for r in batch], decode.text_max_new_tokens)
        if len(answers) % (25 * decode.batch_size) < decode.batch_size:
            log.info("%s: %d/%d pairs, %.1f s", task.name, len(answers), len(records), watch.seconds)
    generated = [read_sentence(a) for a in answers]
    rows = generations_frame(pairs, generated).with_columns(pl.Series("answer", answers, dtype=pl.String))
    metrics = score_generations(rows, pairs, encode, where=str(test.path))
    decoding = f"greedy, {decode.text_max_new_tokens} new tokens; reader: first line, label and quotes removed"
    cell = make_cell(
        dataset=identity["dataset"], task=task.name, model=identity["model"], model_class="llm",
        item_repr=records[0]["item_repr"], setting=spec["setting"], seed=identity["seed"],
        protocol=text_protocol(task, encoder_rec, decoding), metrics=metrics, setting_key=identity["setting"],
        metrics_if_counted=metrics,
        n_pairs=pairs.n, n_users=len(set(pairs.users)),
        counters={"empty_generations": int(sum(not g for g in generated))},
        extra_columns={"na_rate": 0.0}, llm=model_rec, encoder=encoder_rec,
    )
    timing = llm_timing(watch.seconds, len(records), decode.batch_size, lm.device,
                        "wall time of greedy generation over all test pairs after a warm-up, divided by pairs")
    return cell, rows, timing
