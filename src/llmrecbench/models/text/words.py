"""Word-level text of the trained explanation generators (PETER, NRT): vocabulary, encoding, decoding.

Words are whitespace tokens with case kept (P5's metrics split on spaces, so the models write the
tokens they count). The vocabulary is the training features plus the ``vocab_size`` most frequent
training tokens (ties alphabetical), after four special tokens; other words map to <unk>.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from llmrecbench.data.text_pairs import TextPairs
from llmrecbench.errors import ConfigError

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)


def build_vocabulary(train: TextPairs, vocab_size: int) -> list[str]:
    """Training features (sorted), then the ``vocab_size`` most frequent whitespace tokens of the
    training references (count desc, then alphabetical), without repeats or special tokens."""
    counts = Counter(w for ref in train.references for w in ref.split())
    frequent = [w for w, _ in sorted(counts.items(), key=lambda wn: (-wn[1], wn[0]))[:vocab_size]]
    features = sorted(set(train.features or ()))
    out, seen = [], set(SPECIALS)
    for w in [*features, *frequent]:
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def encode_texts(texts: list[str], index: dict[str, int], max_words: int) -> torch.Tensor:
    """``[N, max_words + 2]`` ids: <bos> w_1..w_T <eos> (the first ``max_words`` words), right-padded with <pad>."""
    out = torch.full((len(texts), max_words + 2), PAD, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = [BOS, *(index.get(w, UNK) for w in text.split()[:max_words]), EOS]
        out[row, : len(ids)] = torch.tensor(ids)
    return out


def decode_ids(ids: torch.Tensor, words: list[str]) -> list[str]:
    """One text per row of generated ids, up to the first <eos> or <pad>."""
    out = []
    for row in ids.tolist():
        kept = []
        for k in row:
            if k in (EOS, PAD):
                break
            kept.append(words[k])
        out.append(" ".join(kept))
    return out


class WordVocabulary:
    """Mixin of the word-level generators: ``data_inputs`` builds the vocabulary from the training
    part, ``set_vocabulary`` checks it and sets ``words`` / ``index`` / ``max_words``."""

    @classmethod
    def data_inputs(cls, train: TextPairs, hparams: dict[str, Any]) -> dict[str, Any]:
        """Constructor inputs computed from the training part: the vocabulary."""
        return {"vocab": build_vocabulary(train, int(hparams["vocab_size"]))}

    def set_vocabulary(self, vocab: list[str], max_words: int) -> None:
        if len(set(vocab)) != len(vocab) or set(vocab) & set(SPECIALS) or max_words < 1:
            raise ConfigError(f"{self.name}: the vocabulary repeats a word or names a special token, or max_words < 1 ({max_words})")
        self.words = [*SPECIALS, *vocab]
        self.index = {w: k for k, w in enumerate(self.words)}
        self.max_words = int(max_words)
