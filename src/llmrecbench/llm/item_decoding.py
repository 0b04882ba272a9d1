"""Items as code tuples for (trie-constrained) beam search: ID and semantic-ID token tables (RecBench CBS)."""

from __future__ import annotations

import logging

import numpy as np
import torch

from llmrecbench.errors import InputError
from llmrecbench.llm.generate import CausalLM
from llmrecbench.llm.prompts import ItemCatalog

log = logging.getLogger("llmrecbench")


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
            tokens = [[catalog.render(i) for i in range(catalog.n_items)]]  # <item_n>, n = the item's number
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
        self.codes = codes
        self.trie = ItemTrie(codes)
        self.depth = codes.shape[1]

    def restricted(self, items) -> "ItemDecoder":
        """The same token table with a trie over ``items`` only (a user's candidate list): beam
        search then returns only those items, each scored as in the full trie."""
        from copy import copy

        from llmrecbench.semantic_ids.trie import ItemTrie

        items = [int(i) for i in items]
        out = copy(self)
        out.trie = ItemTrie(self.codes[items], item_ids=items)
        return out

    def code_logprobs(self, logits: torch.Tensor, level: int) -> torch.Tensor:
        logp = torch.log_softmax(logits.float(), dim=-1)
        idx = self.table[level].to(logp.device)
        out = logp.index_select(1, idx.clamp(min=0))
        return out.masked_fill((idx < 0).unsqueeze(0), float("-inf"))


def item_beam_search(lm: CausalLM, dec: ItemDecoder, prompts, beam_width: int, num_return: int, constrained: bool,
                     exclude=None):
    """Batched, KV-cached (conditional) beam search over item codes -> per prompt [(item|None, score)];
    ``exclude``: per prompt, items whose trie paths are masked (the user's history)."""
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
            constrained=constrained, reorder_state=reorder, device="cpu", exclude=exclude,
        )
