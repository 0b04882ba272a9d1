"""Sequential recommenders over semantic item representations (RecBench groups C and H, TIGER).

* ``sasrec_sbert`` (item_repr = semantic_embedding): SASRec whose item vectors start as a learned
  linear projection of the items' SentenceBERT vectors (centred, unit mean norm) to the hidden
  size, plus a per-item ID embedding that starts at zero (``id_residual``), shared between input
  and output as in SASRec. At initialisation the item table *is* the projected text vectors.
* ``sid_sasrec`` (item_repr = semantic_id, RecBench's SID-SASRec): every item is its semantic ID
  ``(c_0, ..., c_{D-1})`` (the RQ-VAE levels plus the collision level). The input vector of an item
  is the sum of its D code embeddings (one table per level); the SASRec encoder turns the history
  into a user state ``h``; the next item's codes are predicted token by token,
  ``p(c_t | h, c_<t) = softmax(head_t(h + sum_{j<t} p_j[c_j]) . E_t^T)``, trained with the summed
  token cross-entropy of the true next item at every position (teacher forcing). Decoding is
  beam search over the code levels, with the trie constraint (RecBench "CBS") or without it (an
  output that is no item is a miss, and counted).
* ``tiger`` lives in :mod:`llmrecbench.models.tiger`.

Generative models share :class:`SemanticIDGenerator`: the codes (one row per item id), the
:class:`~llmrecbench.semantic_ids.trie.ItemTrie` over them, and ``recommend()``, which runs
:func:`~llmrecbench.semantic_ids.trie.constrained_beam_search` (the project's one beam search) on
the model's per-step code log-probabilities.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmrecbench.errors import ConfigError
from llmrecbench.evaluation import INVALID_ITEM, NO_ITEM
from llmrecbench.models.base import pad_histories, trim_left_padding
from llmrecbench.models.registry import register
from llmrecbench.models.sasrec import SASRec
from llmrecbench.semantic_ids.trie import ItemTrie, constrained_beam_search, index_state

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


class SemanticIDGenerator:
    """Mixin for models that recommend by generating an item's semantic ID.

    Subclasses call :meth:`_setup_codes` in ``__init__`` and implement
    ``_decoder(histories, beam_width) -> (init_state, step_fn)`` (``user_aware`` ones also take
    ``users=``) where ``step_fn(prefixes, state)``
    returns ``[rows, K_t]`` log-probabilities of the codes of level ``t = prefixes.shape[1]``.
    """

    generative = True
    requires = ("semantic_codes",)
    n_items: int
    training: bool

    def _setup_codes(self, semantic_codes: np.ndarray) -> None:
        codes = np.asarray(semantic_codes)
        if codes.ndim != 2 or codes.shape[0] != self.n_items or codes.shape[1] < 1:
            raise ConfigError(f"semantic_codes must be [n_items={self.n_items}, levels], got shape {codes.shape}")
        if not np.issubdtype(codes.dtype, np.integer) or (codes < 0).any():
            raise ConfigError("semantic_codes must be non-negative integers")
        self._codes_np = codes.astype(np.int64)
        self.depth = int(codes.shape[1])
        self.level_sizes = [int(k) + 1 for k in self._codes_np.max(axis=0)]
        self.trie = ItemTrie(self._codes_np)  # raises if two items share an ID
        shifted = np.zeros((self.n_items + 1, self.depth), dtype=np.int64)  # row 0: padding
        shifted[1:] = self._codes_np
        self.register_buffer("codes", torch.from_numpy(shifted), persistent=False)  # type: ignore[attr-defined]

    def required_inputs(self) -> dict[str, np.ndarray]:
        return {"semantic_codes": self._codes_np}

    def _decoder(self, histories: Sequence[np.ndarray], beam_width: int) -> tuple[Any, StepFn]:
        raise NotImplementedError

    def _reorder_state(self, state: Any, index: torch.Tensor) -> Any:
        """Re-index the decoder state after beams were reordered (default: every tensor by row)."""
        return index_state(state, index)

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[np.ndarray],
        beam_width: int = 20,
        constrained: bool = True,
        chunk_users: int | None = None,
        exclude: Sequence[np.ndarray] | None = None,
        users: np.ndarray | None = None,
    ) -> np.ndarray:
        """``[B, beam_width]`` item ids ranked by sequence log-probability, best first.

        ``users``: one user id per history; a ``user_aware`` model (TIGER with a user token) needs
        them, every other model ignores them.

        ``exclude``: per user, items never to return (the history under ``mask_history``); their
        trie paths are masked during the search, so the lists hold ``beam_width`` other items.

        ``constrained``: trie-constrained beam search (never an invalid item); otherwise plain beam
        search, whose code sequences that are no item come back as ``INVALID_ITEM``. Users are
        decoded in chunks of ``chunk_users`` (default: the model's ``decode_chunk``), grouped by
        history length so that little padding is computed.
        """
        user_aware = bool(getattr(self, "user_aware", False))
        if user_aware and users is None:
            raise ConfigError(f"model {getattr(self, 'name', type(self).__name__)!r} reads user ids: recommend(histories, users=...) needs them")
        if users is not None and len(users) != len(histories):
            raise ValueError("one user id per history is required")
        was_training = self.training
        self.eval()  # type: ignore[attr-defined]
        try:
            n = len(histories)
            out = np.full((n, beam_width), NO_ITEM, dtype=np.int64)
            order = np.argsort(np.fromiter((len(h) for h in histories), dtype=np.int64, count=n), kind="stable")
            chunk = int(chunk_users or getattr(self, "decode_chunk", 256))
            for start in range(0, n, chunk):
                rows = order[start : start + chunk]
                hist = [histories[i] for i in rows]
                if user_aware:
                    init_state, step = self._decoder(hist, beam_width, users=np.asarray(users, dtype=np.int64)[rows])
                else:
                    init_state, step = self._decoder(hist, beam_width)
                results = constrained_beam_search(
                    step,
                    self.trie,
                    beam_width,
                    batch_size=len(hist),
                    init_state=init_state,
                    constrained=constrained,
                    reorder_state=self._reorder_state,
                    exclude=None if exclude is None else [exclude[i].tolist() for i in rows],
                )
                for row, ranked in zip(rows, results):
                    out[row, : len(ranked)] = [INVALID_ITEM if item is None else item for item, _ in ranked]
            return out
        finally:
            self.train(was_training)  # type: ignore[attr-defined]


@register("sasrec_sbert")
class SASRecSBERT(SASRec):
    """SASRec with item vectors = Linear(SentenceBERT vector) (+ a zero-initialised ID embedding)."""

    requires = ("item_embeddings",)

    def __init__(
        self,
        n_items: int,
        item_embeddings: np.ndarray,
        max_len: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        attn_dropout: float = 0.5,
        id_residual: bool = True,
    ):
        super().__init__(n_items, max_len, hidden, n_layers, n_heads, inner, dropout, attn_dropout)
        vectors = np.asarray(item_embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != n_items:
            raise ConfigError(f"item_embeddings must be [n_items={n_items}, dim], got shape {vectors.shape}")
        self.hparams["id_residual"] = bool(id_residual)
        self.id_residual = bool(id_residual)
        self._vectors_np = vectors
        x = torch.from_numpy(vectors.copy())
        x = x - x.mean(0)
        x = x / x.norm(dim=1).mean().clamp_min(1e-12)
        self.register_buffer("text_vectors", x, persistent=False)
        self.text_proj = nn.Linear(vectors.shape[1], hidden, bias=False)
        nn.init.normal_(self.text_proj.weight, std=0.02)
        if self.id_residual:
            with torch.no_grad():
                self.item_emb.weight.zero_()
        else:
            del self.item_emb

    def required_inputs(self) -> dict[str, np.ndarray]:
        return {"item_embeddings": self._vectors_np}

    def item_table(self) -> torch.Tensor:
        """``[n_items + 1, d]``: row 0 padding (zeros), row i + 1 = item i."""
        table = self.text_proj(self.text_vectors)
        if self.id_residual:
            table = table + self.item_emb.weight[1:]
        return torch.cat([table.new_zeros(1, table.shape[1]), table])

    def embed_items(self, seq: torch.Tensor) -> torch.Tensor:
        return F.embedding(seq, self.item_table(), padding_idx=0)

    def output_table(self) -> torch.Tensor:
        return self.item_table()[1:]


@register("sid_sasrec")
class SIDSASRec(SemanticIDGenerator, SASRec):
    """SASRec over semantic-ID tokens (RecBench SID-SASRec); see the module docstring."""

    def __init__(
        self,
        n_items: int,
        semantic_codes: np.ndarray,
        max_len: int = 50,
        hidden: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner: int = 256,
        dropout: float = 0.5,
        attn_dropout: float = 0.5,
        valid_users: int = 0,
        decode_chunk: int = 1024,
        item_input: str = "sum",
        tie_output: bool = True,
    ):
        SASRec.__init__(self, n_items, max_len, hidden, n_layers, n_heads, inner, dropout, attn_dropout)
        del self.item_emb  # items are their codes
        if item_input not in ("sum", "concat"):
            raise ConfigError(f"sid_sasrec: item_input must be 'sum' or 'concat', got {item_input!r}")
        self._setup_codes(semantic_codes)
        self.valid_users = int(valid_users)  # validation users sampled for early stopping (0 = all)
        self.decode_chunk = int(decode_chunk)
        self.item_input, self.tie_output = item_input, bool(tie_output)
        self.hparams.update(
            valid_users=self.valid_users, decode_chunk=self.decode_chunk, item_input=item_input, tie_output=self.tie_output
        )
        self.code_emb = nn.ModuleList(nn.Embedding(k, hidden) for k in self.level_sizes)
        self.prefix_emb = nn.ModuleList(nn.Embedding(k, hidden) for k in self.level_sizes[:-1])
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden, eps=1e-8)) for _ in self.level_sizes
        )
        modules: list[nn.Module] = [self.code_emb, self.prefix_emb, self.heads]
        if item_input == "concat":
            self.input_proj = nn.Linear(self.depth * hidden, hidden)
            modules.append(self.input_proj)
        if not self.tie_output:
            self.out_emb = nn.ModuleList(nn.Embedding(k, hidden) for k in self.level_sizes)
            modules.append(self.out_emb)
        for module in modules:
            module.apply(self._init)

    def embed_items(self, seq: torch.Tensor) -> torch.Tensor:
        codes = self.codes[seq]  # [B, L, D]
        parts = [emb(codes[..., level]) for level, emb in enumerate(self.code_emb)]
        x = self.input_proj(torch.cat(parts, dim=-1)) if self.item_input == "concat" else sum(parts)
        return x * (seq != 0).unsqueeze(-1).to(x.dtype)

    def output_table(self) -> torch.Tensor:
        raise NotImplementedError("sid_sasrec has no item output table; it generates codes")

    def level_logits(self, z: torch.Tensor, level: int) -> torch.Tensor:
        """Logits ``[N, K_level]`` of the codes of ``level`` given the conditioned state ``z``."""
        table = self.code_emb[level] if self.tie_output else self.out_emb[level]
        return self.heads[level](z) @ table.weight.t()

    def code_nll(self, h: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``-log p(codes | h)`` per row: summed token cross-entropy, teacher forced."""
        z, total = h, h.new_zeros(h.shape[0])
        for level in range(self.depth):
            total = total + F.cross_entropy(self.level_logits(z, level), codes[:, level], reduction="none")
            if level + 1 < self.depth:
                z = z + self.prefix_emb[level](codes[:, level])
        return total

    def training_loss(self, batch, loss, generator):
        if loss != "ce":
            raise ConfigError(f"sid_sasrec trains with token cross-entropy (train.loss: ce), not {loss!r}")
        _, (inp, tgt) = trim_left_padding(batch["input"], batch["target"], ref=batch["target"])
        h = self.encode(inp)
        real = tgt != 0
        return self.code_nll(h[real], self.codes[tgt[real]]).mean()

    def forward_scores(self, histories):
        raise NotImplementedError("sid_sasrec is generative: use recommend()")

    def _decoder(self, histories, beam_width):
        h = self.encode(pad_histories(histories, self.max_len))[:, -1]

        def step(prefixes: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            t = prefixes.shape[1]
            z = state
            for level in range(t):
                z = z + self.prefix_emb[level](prefixes[:, level])
            return F.log_softmax(self.level_logits(z, t), dim=-1), state

        return h, step
