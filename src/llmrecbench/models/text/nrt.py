"""NRT (Li, Wang, Ren, Bing, Lam; SIGIR 2017): neural rating regression with abstractive tips
generation, as PETER's authors re-implemented it for explanation generation.

From user and item embeddings u, i (``d_emb``):

    r_hat = w_r^T s_L + b_r,  s_1 = sigmoid(W_1 [u; i] + b_1),  s_l = sigmoid(W_l s_(l-1) + b_l)   rating
    h_0   = tanh(W_h [u; i; r_hat] + b_h)                                  initial GRU state (all layers)
    h_t   = GRU(e(w_t), h_(t-1)),  p_t = softmax(W_o h_t + b_o)             next word, t = 0..T (w_0 = <bos>)

    L = rating_weight * (r_hat - r)^2 + text_weight * (-1/(T+1) sum_t log p_t(w_(t+1)))   (w_(T+1) = <eos>)

``n_mlp`` sigmoid layers of width ``d_hidden`` (PETER's NRT: 4), a one-layer GRU of width
``d_hidden``; the words, vocabulary and greedy decoding are PETER's
(:mod:`llmrecbench.models.text.words`); <pad>, <bos> and <unk> are never emitted. NRT's original
also reconstructs the review's words from the user and item; PETER's version, followed here, keeps
the rating and the tip (here: the explanation).
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
from llmrecbench.models.text.words import BOS, EOS, PAD, UNK, WordVocabulary, decode_ids, encode_texts


@register("nrt")
class NRT(WordVocabulary, TextModel):
    """NRT; see the module docstring."""

    family = "explanation"
    trainable = True
    losses = ("nrt",)

    def __init__(
        self, n_users: int, n_items: int, vocab: list[str], *, vocab_size: int, d_emb: int, d_hidden: int, n_mlp: int,
        dropout: float, max_words: int, rating_weight: float, text_weight: float,
    ):
        super().__init__(
            n_users, n_items, vocab=list(vocab), vocab_size=vocab_size, d_emb=d_emb, d_hidden=d_hidden, n_mlp=n_mlp,
            dropout=dropout, max_words=max_words, rating_weight=rating_weight, text_weight=text_weight,
        )
        if n_mlp < 1:
            raise ConfigError(f"nrt: n_mlp must be at least 1, got {n_mlp}")
        self.set_vocabulary(vocab, max_words)
        self.user_emb = nn.Embedding(n_users, d_emb)
        self.item_emb = nn.Embedding(n_items, d_emb)
        self.word_emb = nn.Embedding(len(self.words), d_emb)
        widths = [2 * d_emb] + [d_hidden] * n_mlp
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.rating_out = nn.Linear(d_hidden, 1)
        self.init_state = nn.Linear(2 * d_emb + 1, d_hidden)
        self.gru = nn.GRU(d_emb, d_hidden, batch_first=True)
        self.hidden2token = nn.Linear(d_hidden, len(self.words))
        self.dropout = nn.Dropout(dropout)
        for emb in (self.user_emb, self.item_emb, self.word_emb):
            nn.init.uniform_(emb.weight, -0.1, 0.1)

    def training_examples(self, train: TextPairs) -> dict[str, torch.Tensor]:
        """``user``, ``item``, ``rating`` and ``text`` ``[N, max_words + 2]`` (<bos> w_1..w_T <eos>, padded)."""
        self.check_data(train)
        return {
            "user": torch.tensor(train.users, dtype=torch.long),
            "item": torch.tensor(train.items, dtype=torch.long),
            "rating": torch.tensor(train.ratings, dtype=torch.float32),
            "text": encode_texts(train.references, self.index, self.max_words),
        }

    def encode(self, user: torch.Tensor, item: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_hat ``[B]``, h_0 ``[1, B, d_hidden]``) of the module docstring."""
        ui = torch.cat([self.user_emb(user), self.item_emb(item)], dim=-1)
        s = ui
        for layer in self.mlp:
            s = torch.sigmoid(layer(s))
        rating = self.rating_out(s).squeeze(-1)
        h0 = torch.tanh(self.init_state(torch.cat([ui, rating.unsqueeze(-1)], dim=-1)))
        return rating, h0.unsqueeze(0)

    def training_loss(self, batch: dict[str, torch.Tensor], loss: str = "nrt", generator: torch.Generator | None = None) -> torch.Tensor:
        """L of the module docstring on one batch."""
        if loss not in self.losses:
            raise ConfigError(f"nrt: unknown loss {loss!r}; known: {', '.join(self.losses)}")
        text = batch["text"]
        inputs, targets = text[:, :-1], text[:, 1:]
        rating, h0 = self.encode(batch["user"], batch["item"])
        out, _ = self.gru(self.dropout(self.word_emb(inputs)), h0)
        logits = self.hidden2token(self.dropout(out))
        t_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD)
        r_loss = F.mse_loss(rating, batch["rating"])
        return self.hparams["rating_weight"] * r_loss + self.hparams["text_weight"] * t_loss

    @torch.no_grad()
    def generate(self, pairs: TextPairs, batch_size: int = 256) -> list[str]:
        """Greedy decoding, one explanation per pair."""
        was_training = self.training
        self.eval()
        try:
            users = torch.tensor(pairs.users, dtype=torch.long)
            items = torch.tensor(pairs.items, dtype=torch.long)
            out: list[str] = []
            for s in range(0, pairs.n, batch_size):
                _, h = self.encode(users[s : s + batch_size], items[s : s + batch_size])
                word = torch.full((h.shape[1], 1), BOS, dtype=torch.long)
                done = torch.zeros(h.shape[1], dtype=torch.bool)
                steps = []
                for _ in range(self.max_words):
                    o, h = self.gru(self.word_emb(word), h)
                    logits = self.hidden2token(o[:, -1])
                    logits[:, [PAD, BOS, UNK]] = -math.inf
                    nxt = logits.argmax(-1).masked_fill(done, PAD)
                    done |= nxt == EOS
                    steps.append(nxt)
                    word = nxt.unsqueeze(1)
                    if bool(done.all()):
                        break
                out += decode_ids(torch.stack(steps, dim=1), self.words)
            return out
        finally:
            self.train(was_training)
