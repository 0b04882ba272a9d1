"""TIGER-style generative retrieval (Rajput et al., NeurIPS 2023), trained from scratch.

A small T5 encoder-decoder (``transformers.T5ForConditionalGeneration`` built from a
``T5Config``, no pretrained weights) reads a user's last ``max_items`` items as their semantic-ID
tokens and generates the next item's semantic ID, one code per decoding step.

Vocabulary (level-offset tokens, as in TIGER / RecBench): ``0`` = padding and decoder start,
``1`` = end of the input sequence, then for level ``l`` the ``K_l`` code tokens
``offset_l + c`` with ``offset_l = 2 + sum_{j<l} K_j`` (``K_l`` = codes used at level ``l``, the
collision level included). With ``user_buckets`` > 0 the model is ``user_aware`` and, as TIGER
does, puts one user token before the history: the user id hashed into ``user_buckets`` tokens
(``(u * 2654435761) mod 2^32 mod user_buckets``, Knuth's multiplicative hash; TIGER used 2,000),
which come after the code tokens in the vocabulary. Hashing needs no user table, so users unseen
in training get a token too. ``user_buckets: 0`` (the default) reads the history only.

Training examples are every (history prefix, next item) pair of each user's training sequence
(history = up to ``max_items`` preceding items), loss = token cross-entropy of the target's
codes (teacher forcing). Inference: the encoder runs once per user; the decoder runs one token
per step with a key/value cache (the cross-attention cache is computed on one row per user and
then expanded to the beams); :func:`~llmrecbench.semantic_ids.trie.constrained_beam_search`
restricts each step to codes that keep the prefix a valid item (or not, if asked).

Published TIGER on Beauty (4+4 layers, d_model 128, 6 heads, 1024-d MLP, 3 x 256 codes, user
tokens, 200k steps on GPU): NDCG@10 0.0384. The defaults here are sized for a CPU budget.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from llmrecbench.errors import ConfigError
from llmrecbench.models.base import SequentialRecommender, pad_histories, trim_left_padding
from llmrecbench.models.registry import register
from llmrecbench.models.semantic import SemanticIDGenerator

PAD, EOS = 0, 1


@register("tiger")
class TIGER(SemanticIDGenerator, SequentialRecommender):
    def __init__(
        self,
        n_items: int,
        semantic_codes: np.ndarray,
        max_items: int = 20,
        d_model: int = 128,
        d_ff: int = 512,
        n_layers: int = 2,
        n_decoder_layers: int = 2,
        n_heads: int = 4,
        d_kv: int = 32,
        dropout: float = 0.1,
        valid_users: int = 2048,
        decode_chunk: int = 256,
        user_buckets: int = 0,
    ):
        super().__init__(
            n_items,
            max_items=max_items,
            d_model=d_model,
            d_ff=d_ff,
            n_layers=n_layers,
            n_decoder_layers=n_decoder_layers,
            n_heads=n_heads,
            d_kv=d_kv,
            dropout=dropout,
            valid_users=valid_users,
            decode_chunk=decode_chunk,
            user_buckets=user_buckets,
        )
        from transformers import T5Config, T5ForConditionalGeneration

        if max_items < 1:
            raise ConfigError(f"tiger: max_items must be >= 1, got {max_items}")
        if user_buckets < 0:
            raise ConfigError(f"tiger: user_buckets must be >= 0, got {user_buckets}")
        self.user_buckets = int(user_buckets)
        self.user_aware = self.user_buckets > 0  # per instance: a hashed token, no user table
        self._setup_codes(semantic_codes)
        self.max_items = int(max_items)
        self.valid_users = int(valid_users)  # validation users sampled for early stopping (0 = all)
        self.decode_chunk = int(decode_chunk)
        self.offsets = [2 + int(sum(self.level_sizes[:level])) for level in range(self.depth)]
        tokens = self.codes + torch.tensor(self.offsets)
        tokens[0] = PAD  # padding item -> padding tokens
        self.register_buffer("item_tokens", tokens, persistent=False)  # [n_items + 1, D]
        self.user_offset = 2 + sum(self.level_sizes)  # user tokens follow the code tokens
        config = T5Config(
            vocab_size=self.user_offset + self.user_buckets,
            d_model=d_model,
            d_kv=d_kv,
            d_ff=d_ff,
            num_layers=n_layers,
            num_decoder_layers=n_decoder_layers,
            num_heads=n_heads,
            relative_attention_num_buckets=32,
            dropout_rate=dropout,
            feed_forward_proj="relu",
            pad_token_id=PAD,
            eos_token_id=EOS,
            decoder_start_token_id=PAD,
            use_cache=False,
        )
        self.t5 = T5ForConditionalGeneration(config)

    # --- inputs ---------------------------------------------------------------------------
    def user_tokens(self, users: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The user token of each id: ``user_offset + (u * 2654435761 mod 2^32) mod user_buckets``."""
        u = torch.as_tensor(np.asarray(users, dtype=np.int64))
        if u.numel() and int(u.min()) < 0:
            raise ConfigError(f"tiger: user ids must be >= 0, got {int(u.min())}")
        return self.user_offset + (u * 2654435761) % (2**32) % self.user_buckets

    def encoder_inputs(self, seq: torch.Tensor, users: torch.Tensor | np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids and attention mask ``[B, S]`` for left-padded shifted-id histories ``[B, n]``:
        the items' code tokens, then EOS; with a user token (``user_buckets`` > 0) it goes right
        before the first item token."""
        if self.user_aware and users is None:
            raise ConfigError("tiger with user_buckets > 0 reads user ids: pass users=")
        _, (seq,) = trim_left_padding(seq, ref=seq)
        b = seq.shape[0]
        tokens = self.item_tokens[seq].reshape(b, -1)
        tokens = torch.cat([tokens, torch.full((b, 1), EOS, dtype=tokens.dtype)], dim=1)
        if self.user_aware:
            tokens = torch.cat([torch.full((b, 1), PAD, dtype=tokens.dtype), tokens], dim=1)
            first = (tokens != PAD).to(torch.int8).argmax(dim=1)  # >= 1: column 0 is padding
            tokens[torch.arange(b), first - 1] = self.user_tokens(users).to(tokens.dtype)
        return tokens, tokens != PAD

    def training_examples(self, data) -> dict[str, torch.Tensor]:
        """Every (history prefix, next item) pair; ``data`` is the training sequences, or (user-aware)
        the :class:`~llmrecbench.data.sequences.LeaveOneOutSequences` whose ``train`` and
        ``user_ids`` they come from."""
        train, ids = (data.train, np.asarray(data.user_ids, dtype=np.int64)) if self.user_aware else (data, None)
        histories, targets, users = [], [], []
        for row, seq in enumerate(train):
            seq = np.asarray(seq, dtype=np.int64)
            for i in range(1, seq.size):
                histories.append(seq[max(0, i - self.max_items) : i])
                targets.append(seq[i])
                if ids is not None:
                    users.append(ids[row])
        history = pad_histories(histories, self.max_items)
        examples = {
            "history": history,
            "target": torch.tensor(targets, dtype=torch.int64),
            "length": (history != 0).sum(1),
        }
        if ids is not None:
            examples["user"] = torch.tensor(users, dtype=torch.int64)
        return examples

    def training_loss(self, batch, loss, generator):
        if loss != "ce":
            raise ConfigError(f"tiger trains with token cross-entropy (train.loss: ce), not {loss!r}")
        input_ids, mask = self.encoder_inputs(batch["history"], batch.get("user"))
        labels = self.item_tokens[batch["target"] + 1]
        return self.t5(input_ids=input_ids, attention_mask=mask, labels=labels).loss

    def forward_scores(self, histories):
        raise NotImplementedError("tiger is generative: use recommend()")

    # --- decoding -------------------------------------------------------------------------
    def _decoder(self, histories, beam_width, users=None):
        input_ids, mask = self.encoder_inputs(pad_histories(histories, self.max_items), users)
        enc = self.t5.encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
        n = enc.shape[0]
        expand = torch.arange(n).repeat_interleave(beam_width)
        enc_rows, mask_rows = enc[expand], mask[expand]

        def step(prefixes: torch.Tensor, cache):
            t = prefixes.shape[1]
            if t == 0:  # every beam of a user has the same (empty) prefix: run one row per user
                start = torch.full((n, 1), PAD, dtype=torch.long)
                out = self.t5(encoder_outputs=(enc,), attention_mask=mask, decoder_input_ids=start, use_cache=True)
                cache = out.cache
                cache.reorder_cache(expand)
                logits = out.logits[:, -1][expand]
            else:
                last = (prefixes[:, -1] + self.offsets[t - 1]).unsqueeze(1)
                out = self.t5(
                    encoder_outputs=(enc_rows,), attention_mask=mask_rows, decoder_input_ids=last, cache=cache, use_cache=True
                )
                cache, logits = out.cache, out.logits[:, -1]
            logprobs = F.log_softmax(logits.float(), dim=-1)
            return logprobs[:, self.offsets[t] : self.offsets[t] + self.level_sizes[t]], cache

        return None, step

    def _reorder_state(self, cache, index):
        """Beams are only ever reordered within a user, and a user's rows of the cross-attention
        cache are identical, so only the self-attention cache is re-indexed (saves a copy of the
        whole encoder cache per step)."""
        if cache is not None:
            cache.self_attention_cache.reorder_cache(index)
        return cache

    @torch.no_grad()
    def sequence_logprob(self, histories: Sequence[np.ndarray], items: np.ndarray, users: np.ndarray | None = None) -> torch.Tensor:
        """``log p(codes of items[b] | histories[b])`` by one teacher-forced pass (for tests)."""
        self.eval()
        input_ids, mask = self.encoder_inputs(pad_histories(histories, self.max_items), users)
        labels = self.item_tokens[torch.as_tensor(items, dtype=torch.long) + 1]
        logits = self.t5(input_ids=input_ids, attention_mask=mask, labels=labels).logits
        lp = F.log_softmax(logits.float(), dim=-1)
        return lp.gather(2, labels.unsqueeze(-1)).squeeze(-1).sum(1)
