"""PETER (Li, Zhang, Chen; ACL 2021): a small transformer that predicts a rating, the explanation's
words as a bag (context) and the explanation itself from a user and an item; PETER+ adds the
feature word as a hint.

Input sequence (one row per training explanation; ``s`` = 2 source positions, 3 with the hint):

    [u, i, (f), <bos>, w_1 .. w_T]           targets at the text positions: w_1 .. w_T, <eos>

with learned user, item and word embeddings scaled by sqrt(d), sinusoidal positions and the
*PETER mask*: left-to-right attention, except that position 0 (user) may also see position 1
(item). From the hidden states h:

    r_hat = MLP(h_0)   (Linear, sigmoid, Linear)                        rating
    p_ctx = softmax(W h_1)                                              context (bag of words)
    p_t   = softmax(W h_(s+t))                                          next word, t = 0..T

    L = rating_weight * (r_hat - r)^2 + context_weight * (-1/T sum_t log p_ctx(w_t))
        + text_weight * (-1/(T+1) sum_t log p_t(w_(t+1)))                  (w_(T+1) = <eos>)

(PETER's defaults 0.1 / 1 / 1; one output projection W shared by context and text, as in its
code). Words are whitespace tokens, case kept, the first ``max_words`` of each explanation (P5's
metrics split on spaces, so the model writes the tokens they count); the vocabulary is the
training features plus the ``vocab_size`` most frequent training tokens (ties alphabetical), the
rest map to <unk>. Decoding is greedy up to ``max_words`` words or <eos>; <pad>, <bos> and <unk>
are never emitted.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.errors import ConfigError
from llmrecbench.models.registry import register
from llmrecbench.models.text.base import TextModel
from llmrecbench.models.text.words import BOS, EOS, PAD, SPECIALS, UNK, WordVocabulary, build_vocabulary, decode_ids, encode_texts

__all__ = ["BOS", "EOS", "PAD", "PETER", "SPECIALS", "UNK", "build_vocabulary", "peter_mask", "sinusoid"]

def peter_mask(total: int) -> torch.Tensor:
    """``[total, total]`` bool attention mask (True = blocked): causal, but position 0 sees position 1."""
    mask = torch.triu(torch.ones(total, total, dtype=torch.bool), diagonal=1)
    mask[0, 1] = False
    return mask


def sinusoid(length: int, d: int) -> torch.Tensor:
    """PE[p, 2k] = sin(p / 10000^(2k/d)), PE[p, 2k+1] = cos(p / 10000^(2k/d))."""
    pos = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : pe[:, 1::2].shape[1]]
    return pe


@register("peter")
class PETER(WordVocabulary, TextModel):
    """PETER / PETER+ (``feature_hint``); see the module docstring."""

    family = "explanation"
    trainable = True
    losses = ("peter",)

    def __init__(
        self, n_users: int, n_items: int, vocab: list[str], *, vocab_size: int, d_model: int, n_heads: int, d_ff: int,
        n_layers: int, dropout: float, max_words: int, feature_hint: bool, rating_weight: float, context_weight: float,
        text_weight: float,
    ):
        super().__init__(
            n_users, n_items, vocab=list(vocab), vocab_size=vocab_size, d_model=d_model, n_heads=n_heads, d_ff=d_ff,
            n_layers=n_layers, dropout=dropout, max_words=max_words, feature_hint=feature_hint,
            rating_weight=rating_weight, context_weight=context_weight, text_weight=text_weight,
        )
        self.set_vocabulary(vocab, max_words)
        self.src_len = 3 if feature_hint else 2
        self.d_model = int(d_model)
        self.user_emb = nn.Embedding(n_users, d_model)
        self.item_emb = nn.Embedding(n_items, d_model)
        self.word_emb = nn.Embedding(len(self.words), d_model)
        self.register_buffer("pos", sinusoid(self.src_len + max_words + 1, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.hidden2token = nn.Linear(d_model, len(self.words))
        self.recommender = nn.Sequential(nn.Linear(d_model, d_model), nn.Sigmoid(), nn.Linear(d_model, 1))
        self.dropout = nn.Dropout(dropout)
        for emb in (self.user_emb, self.item_emb, self.word_emb):
            nn.init.uniform_(emb.weight, -0.1, 0.1)
        nn.init.uniform_(self.hidden2token.weight, -0.1, 0.1)
        nn.init.zeros_(self.hidden2token.bias)

    # --- data -----------------------------------------------------------------------------
    def feature_ids(self, pairs: TextPairs) -> torch.Tensor:
        if not self.hparams["feature_hint"]:
            return torch.zeros(pairs.n, dtype=torch.long)
        if pairs.features is None:
            raise ConfigError(f"peter with feature_hint needs feature words, and {pairs.path} has none")
        return torch.tensor([self.index.get(f, UNK) for f in pairs.features], dtype=torch.long)

    def training_examples(self, train: TextPairs) -> dict[str, torch.Tensor]:
        """``user``, ``item``, ``feature``, ``rating`` and ``text`` ``[N, max_words + 2]``:
        <bos> w_1..w_T <eos>, right-padded with <pad>."""
        self.check_data(train)
        text = encode_texts(train.references, self.index, self.max_words)
        return {
            "user": torch.tensor(train.users, dtype=torch.long),
            "item": torch.tensor(train.items, dtype=torch.long),
            "feature": self.feature_ids(train),
            "rating": torch.tensor(train.ratings, dtype=torch.float32),
            "text": text,
        }

    # --- model ----------------------------------------------------------------------------
    def hidden(self, user: torch.Tensor, item: torch.Tensor, feature: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[B, s + L, d]`` of [u, i, (f), text[:, :L]] under the PETER mask."""
        src = [self.user_emb(user).unsqueeze(1), self.item_emb(item).unsqueeze(1)]
        if self.hparams["feature_hint"]:
            src.append(self.word_emb(feature).unsqueeze(1))
        x = torch.cat([*src, self.word_emb(text)], dim=1) * math.sqrt(self.d_model)
        total = x.shape[1]
        x = self.dropout(x + self.pos[:total])
        pad = torch.cat([torch.zeros(text.shape[0], self.src_len, dtype=torch.bool), text == PAD], dim=1)
        return self.encoder(x, mask=peter_mask(total), src_key_padding_mask=pad)

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str = "peter", generator: torch.Generator | None = None) -> torch.Tensor:
        """L of the module docstring on one batch."""
        if loss not in self.losses:
            raise ConfigError(f"peter: unknown loss {loss!r}; known: {', '.join(self.losses)}")
        text = batch["text"]
        inputs, targets = text[:, :-1], text[:, 1:]
        h = self.hidden(batch["user"], batch["item"], batch["feature"], inputs)
        rating = self.recommender(h[:, 0]).squeeze(-1)
        r_loss = F.mse_loss(rating, batch["rating"])
        ctx = F.log_softmax(self.hidden2token(h[:, 1]), dim=-1)  # [B, V]
        words = targets.masked_fill(targets == EOS, PAD)  # the bag: w_1..w_T
        c_loss = F.nll_loss(ctx.unsqueeze(1).expand(-1, words.shape[1], -1).reshape(-1, ctx.shape[-1]), words.reshape(-1), ignore_index=PAD)
        logits = self.hidden2token(h[:, self.src_len :])
        t_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD)
        hp = self.hparams
        return hp["rating_weight"] * r_loss + hp["context_weight"] * c_loss + hp["text_weight"] * t_loss

    @torch.no_grad()
    def generate(self, pairs: TextPairs, batch_size: int = 256) -> list[str]:
        """Greedy decoding, one explanation per pair (module docstring)."""
        was_training = self.training
        self.eval()
        try:
            users = torch.tensor(pairs.users, dtype=torch.long)
            items = torch.tensor(pairs.items, dtype=torch.long)
            feats = self.feature_ids(pairs)
            out: list[str] = []
            for s in range(0, pairs.n, batch_size):
                u, i, f = users[s : s + batch_size], items[s : s + batch_size], feats[s : s + batch_size]
                seq = torch.full((u.shape[0], 1), BOS, dtype=torch.long)
                done = torch.zeros(u.shape[0], dtype=torch.bool)
                for _ in range(self.max_words):
                    logits = self.hidden2token(self.hidden(u, i, f, seq)[:, -1])
                    logits[:, [PAD, BOS, UNK]] = -math.inf
                    nxt = logits.argmax(-1).masked_fill(done, PAD)
                    done |= nxt == EOS
                    seq = torch.cat([seq, nxt.unsqueeze(1)], dim=1)
                    if bool(done.all()):
                        break
                out += decode_ids(seq[:, 1:], self.words)
            return out
        finally:
            self.train(was_training)
