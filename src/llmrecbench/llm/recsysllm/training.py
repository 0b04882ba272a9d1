"""Blank-infilling training data and loss (the ``blank_infilling`` fine-tuning objective).

Each training record (prompt, target) is one document: the prompt's content tokens (not the
chat template around them) may be blanked at the entity, sentence or document level, and the
target is always the last blank. The blanks of record ``i`` in epoch ``e`` depend only on
(seed, e, i), so a resumed run sees the same sequences as an uninterrupted one. The loss is
token cross-entropy over Part B (span tokens and each span's [END]):

    L = -(1/N) * sum_{spans i} sum_{t <= l_i + 1} log p(s_{i,t} | x_corrupt, s_1..s_{i-1}, s_{i,<t})
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from llmrecbench.llm.recsysllm.blanks import choose_blanks
from llmrecbench.llm.recsysllm.entities import EntityFinder, EntityPool, add_renderings, pool_from_texts
from llmrecbench.llm.recsysllm.layout import Example, build_example, collate
from llmrecbench.llm.recsysllm.model import RecSysLLMLM


@dataclass
class Source:
    """One record's prompt ids (chat template included, cut from the left), its maskable
    content tokens ``[lo, hi)``, each token's sentence index and the answer ids."""

    ids: list[int]
    lo: int
    hi: int
    sentence: list[int]
    answer: list[int]


def build_pool(tok, records: Sequence[dict], entity_strings: Sequence[str]) -> EntityPool:
    """Entity pool of a training run: entities as tokenised in the prompts and targets, plus
    every catalog rendering on its own (so items absent from training prompts are entities too)."""
    finder = EntityFinder(entity_strings)
    texts = [r["prompt"] for r in records] + [str(r["target"]) for r in records]
    return add_renderings(pool_from_texts(tok, finder, texts), tok, entity_strings)


def _sentences(text: str) -> list[int]:
    """Start characters of the sentences of ``text`` (pysbd, English, rule-based)."""
    import pysbd

    spans = pysbd.Segmenter(language="en", clean=False, char_span=True).segment(text)
    return sorted({0, *(int(s.start) for s in spans)})


def encode_sources(lm: RecSysLLMLM, records: Sequence[dict], max_length: int) -> list[Source]:
    """Sources of blank infilling; the prompt is cut from the left so prompt + answer fit
    ``max_length`` (Part B adds the blanked tokens again, plus two per span)."""
    out = []
    for rec in records:
        prompt = rec["prompt"]
        text = lm.prompt_text(prompt)
        enc = lm.tok(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offs = list(enc["input_ids"]), enc["offset_mapping"]
        c0 = max(text.find(prompt), 0)
        c1 = c0 + len(prompt)
        inside = [k for k, (a, b) in enumerate(offs) if a >= c0 and b <= c1 and b > a]
        lo, hi = (inside[0], inside[-1] + 1) if inside else (0, 0)
        starts = _sentences(prompt)
        sentence = [bisect_right(starts, max(a - c0, 0)) for a, _ in offs]
        answer = lm.tok(str(rec["target"]), add_special_tokens=False)["input_ids"]
        keep = max(1, max_length - len(answer) - 2)
        cut = max(0, len(ids) - keep)
        out.append(Source(ids[cut:], max(lo - cut, 0), max(hi - cut, 0), sentence[cut:], answer))
    return out


def make_example(src: Source, index: int, epoch: int, lm: RecSysLLMLM, *, seed: int, levels: Sequence[str],
                 ratio: float, entity_mask: bool) -> Example:
    """The blank-infilling sequence of record ``index`` in ``epoch``."""
    rng = np.random.default_rng([int(seed), int(epoch), int(index)])
    level = levels[int(rng.integers(len(levels)))]
    runs = lm.pool.segment(src.ids, src.lo, src.hi) if entity_mask else []
    sentence = [s for s in src.sentence]
    spans = choose_blanks(src.lo, src.hi, runs, level, rng, ratio=ratio, sentence_of_token=sentence)
    return build_example(src.ids, spans, src.answer, lm.specials, lm.pool, two_d=lm.two_d)


def blank_loss(lm: RecSysLLMLM, examples: Sequence[Example], device) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy over Part B of a batch, and its number of target tokens."""
    b = collate(examples, lm.tok.pad_token_id, device)
    logits, _ = lm.run(b["ids"], b["attention"], b["inter"], b["intra"], logits_to_keep=b["n_b"], use_cache=False)
    tgt = b["labels"][:, -b["n_b"] :]
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), tgt.reshape(-1), ignore_index=-100)
    return loss, int((tgt != -100).sum())
