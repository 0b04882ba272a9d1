"""Semantic-ID layer: item text -> embeddings -> RQ-VAE codes -> trie + conditional beam search.

Submodules are imported lazily by callers (``from llmrecbench.semantic_ids.rqvae import ...``) so
that importing this package does not load sentence-transformers or faiss. The main entry points:

* :mod:`.embeddings`: ``resolve_encoder``, ``item_text``, ``encode_items``
* :mod:`.faiss_index`: ``build_index``, ``nearest``, ``knn_report``
* :mod:`.rqvae`: ``RQVAEConfig``, ``train_rqvae``, ``assign_codes``, ``resolve_collisions``
* :mod:`.trie`: ``ItemTrie``, ``constrained_beam_search``
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "resolve_encoder": "embeddings",
    "item_text": "embeddings",
    "encode_items": "embeddings",
    "load_encoder": "embeddings",
    "EMPTY_TEXT_PLACEHOLDER": "embeddings",
    "build_index": "faiss_index",
    "nearest": "faiss_index",
    "knn_report": "faiss_index",
    "RQVAE": "rqvae",
    "RQVAEConfig": "rqvae",
    "train_rqvae": "rqvae",
    "assign_codes": "rqvae",
    "resolve_collisions": "rqvae",
    "codes_report": "rqvae",
    "save_rqvae": "rqvae",
    "load_rqvae": "rqvae",
    "ItemTrie": "trie",
    "constrained_beam_search": "trie",
    "level_offset_tokens": "trie",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
