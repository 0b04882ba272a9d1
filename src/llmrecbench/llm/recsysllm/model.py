"""The RecSysLLM forward pass on a Hugging Face causal LM, for training and decoding.

* :class:`IntraEmbedding` – the learned intra-position table, zero-initialised so the
  pretrained model is unchanged at step 0; its vector is added to the token embedding and the
  sum goes in as ``inputs_embeds``. The inter-position goes in as ``position_ids`` (RoPE).
* :class:`RecSysLLMLM` – a :class:`~llmrecbench.llm.generate.CausalLM` whose prompts end in
  ``[MASK] [START]`` (the answer is the blank of Part A) and whose answers end at [END]. Its
  prefill builds the 4-D mask and the 2-D positions from the token ids (Part A = up to the last
  [START]); each decoding step takes the inter-position of the answer's [MASK] and an intra-
  position from the row's :class:`~.entities.IntraTracker` (dynamic positions). Row states live
  in :class:`RowStates`, the cache object the decoders hold: reordering the KV cache to the
  surviving beams reorders the row states with it, so beam search, trie-constrained search and
  greedy generation all run unchanged.

4-D masks need the ``sdpa`` or ``eager`` attention implementation (flash-attention-2 takes no
4-D mask); :func:`check_attention` refuses any other.
"""

from __future__ import annotations

from typing import Sequence

import torch

from llmrecbench.errors import ConfigError
from llmrecbench.llm.generate import CausalLM
from llmrecbench.llm.recsysllm.entities import EntityPool, IntraTracker
from llmrecbench.llm.recsysllm.layout import SpecialIds, blank_mask

INTRA_FILE = "intra_position.pt"
POOL_FILE = "entity_pool.json"


class IntraEmbedding(torch.nn.Module):
    """e(intra) added to the token embedding; ids above ``max_intra`` share its row."""

    def __init__(self, hidden_size: int, max_intra: int):
        super().__init__()
        self.max_intra = int(max_intra)
        self.table = torch.nn.Embedding(self.max_intra + 1, hidden_size)
        torch.nn.init.zeros_(self.table.weight)

    def forward(self, intra: torch.Tensor) -> torch.Tensor:
        return self.table(intra.clamp(0, self.max_intra))


def check_attention(model) -> None:
    impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
    if impl not in (None, "sdpa", "eager"):
        raise ConfigError(f"blank infilling needs a 4-D attention mask: attention implementation {impl!r} takes none (use sdpa or eager)")


class RowStates:
    """The KV cache plus, per row, the answer's inter-position, its intra tracker and the intra
    ids fed so far; ``reorder_cache`` / ``batch_repeat_interleave`` move them with the cache."""

    def __init__(self, inner, inter: list[int], trackers: list[IntraTracker | None], fed: list[list[int]]):
        self.inner, self.inter, self.trackers, self.fed = inner, inter, trackers, fed

    def _take(self, rows: Sequence[int]) -> None:
        self.inter = [self.inter[i] for i in rows]
        self.trackers = [None if self.trackers[i] is None else self.trackers[i].copy() for i in rows]
        self.fed = [list(self.fed[i]) for i in rows]

    def reorder_cache(self, index: torch.Tensor) -> None:
        self.inner.reorder_cache(index)
        self._take(index.tolist())

    def batch_repeat_interleave(self, n: int) -> None:
        self.inner.batch_repeat_interleave(n)
        self._take([i for i in range(len(self.inter)) for _ in range(n)])


class RecSysLLMLM(CausalLM):
    """Blank-infilling decoding: prompt + [MASK] [START] -> answer [END]."""

    prefix_cacheable = False  # Part A is bidirectional: a shared prompt prefix has no reusable cache

    def __init__(self, model, tokenizer, specials: SpecialIds, pool: EntityPool, intra: IntraEmbedding | None,
                 *, two_d: bool = True, chat: bool = True, device: str | torch.device = "cpu"):
        super().__init__(model, tokenizer, chat=chat, device=device)
        check_attention(model)
        self.specials, self.pool, self.intra, self.two_d = specials, pool, intra, bool(two_d)
        self.eos_id = specials.end

    def prompt_ids(self, prompt: str, extra_turns=()) -> list[int]:
        return super().prompt_ids(prompt, extra_turns) + [self.specials.mask, self.specials.start]

    def base_prompt_ids(self, prompt: str) -> list[int]:
        return super().prompt_ids(prompt)

    # ------------------------------------------------------------------ the network
    def run(self, ids, attention, positions, intra, cache=None, logits_to_keep: int = 1, use_cache: bool = True):
        """Logits and cache of one pass with explicit mask, inter-positions and intra-positions."""
        emb = self.model.get_input_embeddings()(ids)
        if self.two_d and self.intra is not None:
            emb = emb + self.intra(intra).to(emb.dtype)
        kwargs = {"cache": cache} if cache is not None else {}
        out = self.model(inputs_embeds=emb, attention_mask=attention, position_ids=positions, use_cache=use_cache,
                         logits_to_keep=logits_to_keep, **kwargs)
        cache_out = out["cache"] if "cache" in out else out.get("past_key_values")
        return out.logits, cache_out

    def prefill_layout(self, ids: torch.Tensor, mask: torch.Tensor):
        """Per row: Part A = real tokens before the last [START] (all of them causal when there is
        none), inter / intra ids, the answer's inter-position and a tracker fed with Part B."""
        B, W = ids.shape
        inter = torch.zeros((B, W), dtype=torch.long)
        intra = torch.zeros((B, W), dtype=torch.long)
        n_a = torch.zeros(B, dtype=torch.long)
        lengths = mask.sum(dim=1).cpu()
        answer_inter, trackers, fed = [], [], []
        rows = ids.cpu().tolist()
        for r in range(B):
            s = W - int(lengths[r])
            row = rows[r][s:]
            starts = [k for k, t in enumerate(row) if t == self.specials.start]
            a = starts[-1] if starts else 0
            n_a[r] = a
            masks = [k for k, t in enumerate(row[:a]) if t == self.specials.mask]
            pos = masks[-1] if masks else max(a - 1, 0)
            inter[r, s : s + a] = torch.arange(a)
            inter[r, s + a :] = pos
            intra[r, s : s + a] = torch.as_tensor(self.pool.part_a_intra(row[:a]), dtype=torch.long)
            tracker = IntraTracker(self.pool) if starts else None
            b_ids = [1] if starts else []
            for t in row[a + 1 :]:
                b_ids.append(tracker.feed(t))
            if b_ids:
                intra[r, s + a :] = torch.as_tensor(b_ids)
            answer_inter.append(pos)
            trackers.append(tracker)
            fed.append(b_ids)
        if not self.two_d:
            inter = (mask.cpu().cumsum(dim=1) - 1).clamp(min=0)
        attention = blank_mask(n_a.to(ids.device), lengths.to(ids.device), W)
        return attention, inter.to(ids.device), intra.to(ids.device), RowStates(None, answer_inter, trackers, fed)

    def forward(self, input_ids, mask, cache=None, past_mask=None, logits_to_keep: int = 1):
        if cache is None:
            attention, inter, intra, states = self.prefill_layout(input_ids, mask)
            logits, states.inner = self.run(input_ids, attention, inter, intra, logits_to_keep=logits_to_keep)
            return logits, states, mask
        if input_ids.shape[1] != 1:
            raise ValueError("RecSysLLMLM decodes one token per step after the prefill")
        full_mask = torch.cat([past_mask, mask], dim=1)
        intra = []
        for r, t in enumerate(input_ids[:, 0].tolist()):
            tracker = cache.trackers[r]
            intra.append(tracker.feed(t) if tracker is not None else 0)
            cache.fed[r].append(intra[-1])
        intra_t = torch.as_tensor(intra, dtype=torch.long, device=input_ids.device).view(-1, 1)
        if self.two_d:
            pos = torch.as_tensor(cache.inter, dtype=torch.long, device=input_ids.device).view(-1, 1)
        else:
            pos = (full_mask.cumsum(dim=1) - 1)[:, -1:]
        logits, cache.inner = self.run(input_ids, full_mask, pos, intra_t, cache=cache.inner, logits_to_keep=logits_to_keep)
        return logits, cache, full_mask


# --------------------------------------------------------------------------- adapter files


def blank_lm(model, tok, pool: EntityPool, cfg, *, chat: bool, device) -> RecSysLLMLM:
    """The training-time model of a ``blank_infilling`` run (``cfg``: its FinetuneConfig)."""
    hidden = model.config.hidden_size
    intra = IntraEmbedding(hidden, cfg.max_intra_position).to(device) if cfg.two_d_positions else None
    return RecSysLLMLM(model, tok, SpecialIds.of(tok), pool, intra, two_d=cfg.two_d_positions, chat=chat, device=device)


def blank_files(lm: RecSysLLMLM) -> dict:
    """Files saved in the adapter folder beside the LoRA weights: the entity pool and the intra table."""
    import json

    def write_pool(path):
        path.write_text(json.dumps(lm.pool.to_json(), separators=(",", ":")) + "\n")

    files = {POOL_FILE: write_pool}
    if lm.intra is not None:
        files[INTRA_FILE] = lambda path: torch.save({k: v.detach().cpu() for k, v in lm.intra.state_dict().items()}, path)
    return files


def load_blank_lm(peft_model, tok, meta: dict, adapter_dir, device) -> RecSysLLMLM:
    """A saved ``blank_infilling`` adapter as a :class:`RecSysLLMLM` (pool and intra table reloaded)."""
    import json
    from pathlib import Path

    from llmrecbench.errors import InputError

    adapter_dir = Path(adapter_dir)
    cfg = meta["config"]
    pool_path = adapter_dir / POOL_FILE
    if not pool_path.exists():
        raise InputError(pool_path, "missing: a blank_infilling adapter stores its entity pool here")
    pool = EntityPool.from_json(json.loads(pool_path.read_text()))
    intra = None
    if cfg.get("two_d_positions", True):
        hidden = peft_model.config.hidden_size
        intra = IntraEmbedding(hidden, int(cfg["max_intra_position"]))
        intra.load_state_dict(torch.load(adapter_dir / INTRA_FILE, map_location="cpu", weights_only=True))
        intra.to(device).eval()
    return RecSysLLMLM(peft_model, tok, SpecialIds.of(tok), pool, intra, two_d=cfg.get("two_d_positions", True),
                       chat=meta.get("chat", True), device=device)
