"""Batched, KV-cached decoding for LLM recommenders: beam search to a ranked list.

:class:`CausalLM` wraps a (possibly PEFT-adapted) causal LM with its tokenizer and owns the
one forward pass every path uses, training included, so training and inference see the same
positions and attention masks. Prompts are left-padded; position ids are ``cumsum(mask) - 1``.

P-tuning v2 / prefix tuning: peft 0.21 + transformers 5.24 ``generate()`` silently *ignores*
the learned prefix (its first-step scores equal the base model's; verified), so prefix models
are decoded here by passing the prefix key/values as the initial cache explicitly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

# allowed(row, generated token ids so far) -> allowed next token ids (constrained decoding)
AllowedFn = Callable[[int, tuple[int, ...]], Sequence[int]]


@dataclass
class Hypothesis:
    tokens: tuple[int, ...]
    logprob: float
    finished: bool

    def score(self, length_penalty: float) -> float:
        return self.logprob / (max(1, len(self.tokens)) ** length_penalty)


class CausalLM:
    """Model + tokenizer + prompt formatting + the forward pass (prefix-aware)."""

    # whether the KV cache of a shared prompt prefix may be reused (False where later prompt
    # tokens change earlier ones' states, as in RecSysLLM's bidirectional Part A)
    prefix_cacheable = True

    def __init__(self, model, tokenizer, chat: bool = True, device: str | torch.device = "cpu"):
        self.model = model
        self.tok = tokenizer
        self.chat = bool(chat and getattr(tokenizer, "chat_template", None))
        self.device = torch.device(device)
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.eos_id = int(self.tok.eos_token_id)
        cfg = getattr(model, "peft_config", {}).get("default") if hasattr(model, "peft_config") else None
        self.n_virtual = int(cfg.num_virtual_tokens) if cfg is not None and str(cfg.peft_type).endswith("PREFIX_TUNING") else 0

    # ------------------------------------------------------------------ text <-> ids
    def prompt_ids(self, prompt: str, extra_turns: Sequence[tuple[str, str]] = ()) -> list[int]:
        """Token ids of a user prompt ready for the answer (chat template when the model has one)."""
        return self.tok(self.prompt_text(prompt, extra_turns), add_special_tokens=False)["input_ids"]

    def prompt_text(self, prompt: str, extra_turns: Sequence[tuple[str, str]] = ()) -> str:
        """The text :meth:`prompt_ids` tokenises: the chat template around the prompt, or the
        prompt followed by ``Answer:``."""
        if self.chat:
            msgs = [{"role": "user", "content": prompt}]
            for answer, followup in extra_turns:
                msgs += [{"role": "assistant", "content": answer}, {"role": "user", "content": followup}]
            text = self.tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        else:
            text = prompt
            for answer, followup in extra_turns:
                text += f"\n{answer}\n{followup}"
            text += "\nAnswer: "
        return text

    def target_ids(self, target: str) -> list[int]:
        return self.tok(target, add_special_tokens=False)["input_ids"] + [self.eos_id]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode([i for i in ids if i != self.eos_id], skip_special_tokens=False).strip()

    # ------------------------------------------------------------------ forward
    def left_pad(self, seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for r, s in enumerate(seqs):
            if len(s):
                ids[r, width - len(s) :] = torch.as_tensor(list(s), dtype=torch.long)
                mask[r, width - len(s) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def forward(
        self,
        input_ids: torch.Tensor,
        mask: torch.Tensor,
        cache=None,
        past_mask: torch.Tensor | None = None,
        logits_to_keep: int = 1,
    ):
        """Logits [B, T, V] and the updated cache.

        ``mask`` covers ``input_ids``; ``past_mask`` covers what the cache already holds (its
        prefix columns included). Without a cache a prefix model starts from its learned prefix.
        Only the last ``logits_to_keep`` positions get logits (0 = all): the LM head over a vocabulary
        grown by thousands of item tokens dominates the cost otherwise.
        """
        full_mask = mask if past_mask is None else torch.cat([past_mask, mask], dim=1)
        if cache is None and self.n_virtual:
            cache = self.model.get_prompt(batch_size=input_ids.shape[0])
            prefix = torch.ones((input_ids.shape[0], self.n_virtual), dtype=mask.dtype, device=mask.device)
            full_mask = torch.cat([prefix, full_mask], dim=1)
        # positions of real tokens only (left padding and the virtual prefix do not count)
        real = full_mask[:, self.n_virtual :] if self.n_virtual else full_mask
        pos = (real.cumsum(dim=1) - 1).clamp(min=0)[:, -input_ids.shape[1] :] + self.n_virtual
        net = self.model.base_model if self.n_virtual else self.model
        kwargs = {"cache": cache} if cache is not None else {}
        out = net(
            input_ids=input_ids, attention_mask=full_mask, position_ids=pos, use_cache=True,
            logits_to_keep=logits_to_keep, **kwargs,
        )
        cache_out = out["cache"] if "cache" in out else out.get("past_key_values")  # transformers 5 renamed it
        return out.logits, cache_out, full_mask

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def beam_search(
        self,
        prompts: Sequence[Sequence[int]],
        beam_width: int = 20,
        num_return: int = 20,
        max_new_tokens: int = 32,
        allowed: AllowedFn | None = None,
        length_penalty: float = 1.0,
        stop_ids: Sequence[int] = (),
    ) -> list[list[Hypothesis]]:
        """Beam search for a batch of prompts; per prompt up to ``num_return`` hypotheses, best first.

        With ``allowed`` (constrained decoding) only the returned next tokens are scored, and a
        hypothesis finishes when ``allowed`` offers the EOS id (a complete item) and it is chosen.
        """
        B, K = len(prompts), beam_width
        stops = {self.eos_id, *stop_ids}
        ids, mask = self.left_pad(prompts)
        logits, cache, full_mask = self.forward(ids, mask)
        logp = torch.log_softmax(logits[:, -1, :].float(), dim=-1)  # [B, V]
        V = logp.shape[-1]
        pools: list[list[Hypothesis]] = [[] for _ in range(B)]
        beams: list[list[Hypothesis]] = [[Hypothesis((), 0.0, False)] for _ in range(B)]
        rows_of_user = [[b] for b in range(B)]  # row index in logp of each live beam
        for step in range(max_new_tokens):
            next_beams: list[list[Hypothesis]] = []
            src_rows: list[int] = []
            for b in range(B):
                cands: list[tuple[float, int, int]] = []  # (logprob, beam j, token)
                for j, hyp in enumerate(beams[b]):
                    row = logp[rows_of_user[b][j]]
                    if allowed is not None:
                        toks = torch.as_tensor(list(allowed(b, hyp.tokens)), dtype=torch.long, device=row.device)
                        if toks.numel() == 0:
                            continue
                        vals = row.index_select(0, toks)
                        top = torch.topk(vals, min(2 * K, toks.numel()))
                        cands += [(hyp.logprob + v, j, int(toks[i])) for v, i in zip(top.values.tolist(), top.indices.tolist())]
                    else:
                        top = torch.topk(row, min(2 * K, V))
                        cands += [(hyp.logprob + v, j, t) for v, t in zip(top.values.tolist(), top.indices.tolist())]
                cands.sort(key=lambda c: -c[0])
                live: list[Hypothesis] = []
                for lp, j, t in cands:
                    hyp = beams[b][j]
                    if t in stops:
                        if len(pools[b]) < 4 * num_return:
                            pools[b].append(Hypothesis(hyp.tokens, lp, True))
                        continue
                    if len(live) < K:
                        live.append(Hypothesis(hyp.tokens + (t,), lp, False))
                        src_rows.append(rows_of_user[b][j])
                    if len(live) >= K:
                        break
                next_beams.append(live)
            done = [self._done(pools[b], next_beams[b], num_return, length_penalty, step + 1) for b in range(B)]
            if all(done) or not src_rows:
                beams = next_beams
                break
            # reorder the cache to the surviving beams, then feed their last tokens
            index = torch.as_tensor(src_rows, dtype=torch.long, device=self.device)
            cache.reorder_cache(index)
            full_mask = full_mask.index_select(0, index)
            last = torch.as_tensor([[h.tokens[-1]] for bs in next_beams for h in bs], dtype=torch.long, device=self.device)
            step_mask = torch.ones_like(last)
            logits, cache, full_mask = self.forward(last, step_mask, cache=cache, past_mask=full_mask)
            logp = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
            beams, rows_of_user, r = next_beams, [], 0
            for bs in beams:
                rows_of_user.append(list(range(r, r + len(bs))))
                r += len(bs)
        out = []
        for b in range(B):
            pool = list(pools[b])
            if allowed is None:  # free text: unfinished beams still carry a (truncated) answer
                pool += [h for h in beams[b] if h.tokens]
            pool.sort(key=lambda h: -h.score(length_penalty))
            out.append(pool)
        return out

    @staticmethod
    def _done(pool, live, num_return, length_penalty, cur_len) -> bool:
        if not live:
            return True
        if len(pool) < num_return:
            return False
        worst = sorted((h.score(length_penalty) for h in pool), reverse=True)[num_return - 1]
        best_live = max(h.logprob for h in live) / (cur_len**length_penalty)
        return best_live < worst

    @torch.no_grad()
    def generate_text(
        self,
        prompts: Sequence[Sequence[int]],
        max_new_tokens: int = 200,
        do_sample: bool = False,
        temperature: float = 0.7,
        seed: int = 0,
    ) -> list[str]:
        """Greedy (or seeded sampled) answers for a batch of prompts, KV-cached."""
        B = len(prompts)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        ids, mask = self.left_pad(prompts)
        logits, cache, full_mask = self.forward(ids, mask)
        outs: list[list[int]] = [[] for _ in range(B)]
        finished = [False] * B
        for _ in range(max_new_tokens):
            last = logits[:, -1, :].float()
            if do_sample:
                probs = torch.softmax(last / temperature, dim=-1).cpu()
                nxt = torch.multinomial(probs, 1, generator=gen).view(-1)
            else:
                nxt = last.argmax(dim=-1).cpu()
            for b in range(B):
                if not finished[b]:
                    if int(nxt[b]) == self.eos_id:
                        finished[b] = True
                    else:
                        outs[b].append(int(nxt[b]))
            if all(finished):
                break
            step = nxt.view(-1, 1).to(self.device)
            logits, cache, full_mask = self.forward(step, torch.ones_like(step), cache=cache, past_mask=full_mask)
        return [self.decode(o) for o in outs]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall time of the timed sections, CUDA-synchronised, for latency per sample."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds = 0.0

    def __enter__(self):
        synchronize(self.device)
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        synchronize(self.device)
        self.seconds += time.perf_counter() - self._t0
        return False


def item_token_sequences(lm: CausalLM, rendered: Sequence[str]) -> list[tuple[int, ...]]:
    """Token ids of every item's rendered token string (ID / semantic-ID representations)."""
    seqs = [tuple(lm.tok(r, add_special_tokens=False)["input_ids"]) for r in rendered]
    return seqs


def rank_array(lists: Sequence[Sequence[int]], length: int) -> np.ndarray:
    out = np.full((len(lists), length), -1, dtype=np.int64)
    for u, lst in enumerate(lists):
        lst = list(lst)[:length]
        out[u, : len(lst)] = lst
    return out
