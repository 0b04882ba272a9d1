"""Conventional recommenders of every family: sequential (conventional, and over semantic IDs /
text embeddings), rating and direct; importing this package registers all of them."""

from llmrecbench.models import bert4rec, caser, ctr, direct, fdsa, gru4rec, hgn, index_leak, pop, rating, s3rec, sasrec, semantic, text, tiger  # noqa: F401  (registration)
from llmrecbench.models.base import SequentialRecommender, pad_histories
from llmrecbench.models.registry import available_models, create_model, get_model_class, register

__all__ = [
    "SequentialRecommender",
    "available_models",
    "create_model",
    "get_model_class",
    "pad_histories",
    "register",
]
