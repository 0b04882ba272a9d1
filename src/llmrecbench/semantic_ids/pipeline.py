"""The semantic stages of the DAG as single calls: item embeddings, kNN sanity report, semantic IDs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llmrecbench.errors import ConfigError, InputError


def embed_items(items: pl.DataFrame, encoder: dict[str, Any], cache_dir: str | Path) -> tuple[pl.DataFrame, dict]:
    """items.parquet -> (item_id, vector) frame and the encoder's provenance.

    The text of an item is ``encoder['text_template']`` formatted over its columns (e.g.
    ``"{title}"``), or with ``encoder['text_fields']`` every listed column the items have as
    ``name: value`` (:func:`~llmrecbench.semantic_ids.embeddings.item_text_fields`; the columns
    used go into the provenance); vectors are L2-normalised sentence embeddings.
    """
    from llmrecbench.semantic_ids.embeddings import encode_items, item_text, item_text_fields, resolve_encoder

    path, prov = resolve_encoder(encoder["model_id"], cache_dir)
    if encoder.get("text_fields"):
        texts, used = item_text_fields(items, encoder["text_fields"])
        text_record = {"text_fields": list(encoder["text_fields"]), "text_fields_used": used}
    else:
        texts = item_text(items, encoder.get("text_template", "{title}"))
        text_record = {"text_template": encoder.get("text_template", "{title}")}
    vectors = encode_items(texts, path, batch_size=encoder.get("batch_size", 128), normalize=True, show_progress=True)
    frame = pl.DataFrame(
        {"item_id": items["item_id"].cast(pl.Int32), "vector": vectors},
        schema={"item_id": pl.Int32, "vector": pl.Array(pl.Float32, vectors.shape[1])},
    )
    prov = {**prov, **text_record, "n_items": len(texts), "dim": int(vectors.shape[1])}
    prov.pop("path", None)  # machine-specific; the digest identifies the weights
    return frame, prov


def read_vectors(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids, vectors float32 [N, d]) from an embeddings parquet, rows sorted by item_id."""
    try:
        df = pl.read_parquet(path).sort("item_id")
    except Exception as exc:
        raise InputError(path, f"cannot read embeddings ({type(exc).__name__}: {exc})") from exc
    return df["item_id"].to_numpy(), np.ascontiguousarray(np.stack(df["vector"].to_numpy()), dtype=np.float32)


def knn_sanity(embeddings_path: str | Path, items: pl.DataFrame, sample: int, k: int, seed: int) -> list[dict]:
    """For a seeded sample of items, their k nearest items' titles (FAISS inner product)."""
    from llmrecbench.semantic_ids.faiss_index import knn_report

    ids, vectors = read_vectors(embeddings_path)
    titles = dict(zip(items["item_id"].to_list(), items["title"].to_list()))
    return knn_report(ids.tolist(), [titles.get(i) or "" for i in ids.tolist()], vectors, sample=sample, k=k, seed=seed)


def semantic_ids(embeddings_path: str | Path, levels: int, codebook_size: int, options: dict[str, Any]) -> tuple[pl.DataFrame, dict, Any]:
    """Train an RQ-VAE (levels x codebook_size) on the item embeddings and give every item a
    unique semantic ID: L RQ-VAE codes plus a TIGER-style disambiguation level.

    Returns (codes frame: item_id + code_0..code_L, report, model).
    """
    from llmrecbench.semantic_ids.rqvae import RQVAEConfig, assign_codes, resolve_collisions, train_rqvae

    if levels < 1 or codebook_size < 2:
        raise ConfigError(f"semantic IDs need levels >= 1 and codebook size >= 2, got {levels}x{codebook_size}")
    ids, vectors = read_vectors(embeddings_path)
    cfg = RQVAEConfig.from_dict({**options, "levels": levels, "codebook_size": codebook_size})
    model, train_report = train_rqvae(vectors, cfg, progress=True)
    codes = assign_codes(model, vectors)
    unique, collision_report = resolve_collisions(codes, codebook_size)
    if np.unique(unique, axis=0).shape[0] != unique.shape[0]:  # guaranteed by construction; checked anyway
        raise AssertionError("semantic IDs are not unique after collision resolution")
    frame = pl.DataFrame({"item_id": ids.astype(np.int32), **{f"code_{j}": unique[:, j].astype(np.int32) for j in range(unique.shape[1])}})
    train_report.pop("history", None)
    report = {"levels": levels, "codebook_size": codebook_size, "n_items": int(len(ids)), "before_resolution": collision_report, "training": train_report, "unique_ids": True}
    return frame, report, model
